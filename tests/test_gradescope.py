"""`python -m grader gradescope`: the autograder bundle, and its real run_autograder run against a
temporary /autograder, its results.json checked against Gradescope's specification."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.catalog import ACTIVATIONS
from grader.checks import checks_for
from test_classroom import solution_lines
from test_cli import RELU

ROOT = Path(__file__).resolve().parent.parent
# Gradescope's autograder specification, "Output format"
TOP_FIELDS = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
              "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
TEST_FIELDS = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format", "tags",
               "visibility", "extra_data"}
FORMATS = {"text", "html", "simple_format", "md", "ansi"}
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gradescope")
    r = subprocess.run([sys.executable, "-m", "grader", "gradescope", str(out), "--visibility", "after_due_date"],
                       capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return out / "autograder.zip"


def test_bundle_layout(bundle: Path) -> None:
    torch_pin = next(l for l in (ROOT / "requirements.txt").read_text().splitlines() if l.startswith("torch=="))
    with zipfile.ZipFile(bundle) as z:
        names = set(z.namelist())
        assert {"setup.sh", "run_autograder"} <= names  # at the root of the archive, not in a folder
        assert {f"grader/{p.name}" for p in (ROOT / "grader").glob("*.py")} <= names
        for name in ("setup.sh", "run_autograder"):
            assert stat.S_IMODE(z.getinfo(name).external_attr >> 16) & 0o111, f"{name} is not executable"
            assert z.read(name).startswith(b"#!/usr/bin/env bash\n")
        setup = z.read("setup.sh").decode()
        assert f"--index-url https://download.pytorch.org/whl/cpu {torch_pin}" in setup
        # no line of a solution in the bundle (short ones such as `return out` are also the grader's)
        secret = {line for line in solution_lines() if len(line) > 12}
        # grader/references.py is the float64 reference of the activations torch lacks: like torch's own
        # source for the 28 others, a grader cannot judge them without it (the README's threat model)
        assert not [n for n in names if n != "grader/references.py"
                    and {l.strip() for l in z.read(n).decode().splitlines()} & secret]
    subprocess.run(["bash", "-n", "-c", setup], check=True)


def autograder_root(bundle: Path, tmp_path: Path) -> Path:
    """/autograder as Gradescope lays it out: the zip in source/, run_autograder copied beside it."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
    for name in ("setup.sh", "run_autograder"):
        (root / "source" / name).chmod(0o755)
    (root / "run_autograder").write_bytes((root / "source" / "run_autograder").read_bytes())
    (root / "run_autograder").chmod(0o755)
    (root / "submission").mkdir()
    # marks the bundle's copy of the grader, to tell it from the one this checkout has
    init = root / "source" / "grader" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', '__version__ = "bundled-'))
    return root


def run_autograder(root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable)
    r = subprocess.run([str(root / "run_autograder")], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads((root / "results" / "results.json").read_text())


def check_spec(results: dict) -> None:
    assert set(results) <= TOP_FIELDS, set(results) - TOP_FIELDS
    assert results["output_format"] in FORMATS and results["test_output_format"] in FORMATS
    assert results["visibility"] in VISIBILITY and results["stdout_visibility"] in VISIBILITY
    assert isinstance(results["output"], str) and isinstance(results["execution_time"], (int, float))
    for t in results["tests"]:
        assert set(t) <= TEST_FIELDS, set(t) - TEST_FIELDS
        assert isinstance(t["name"], str) and isinstance(t["output"], str)
        assert isinstance(t["score"], (int, float)) and isinstance(t["max_score"], (int, float))
        assert 0 <= t["score"] <= t["max_score"] and t["status"] in {"passed", "failed"}
        assert t["visibility"] in VISIBILITY and t["output_format"] in FORMATS
    assert results["score"] == sum(t["score"] for t in results["tests"])


def test_run_autograder_grades_the_submission(bundle: Path, tmp_path: Path) -> None:
    root = autograder_root(bundle, tmp_path)
    (root / "submission" / "relu.py").write_text(RELU)
    (root / "submission" / "02_relu_variants.ipynb").write_text('{"cells": [')
    (root / "submission" / ".hidden.py").write_text("raise SystemExit(3)")
    results = run_autograder(root)
    check_spec(results)
    assert results["output_format"] == "md" and results["visibility"] == "after_due_date"
    assert results["extra_data"]["grader_version"].startswith("bundled-")  # the bundle's own grader ran
    assert [f["path"] for f in results["extra_data"]["files"]] == ["02_relu_variants.ipynb", "relu.py"]
    full = {a.name: len(checks_for(a, ["cpu"])) for a in ACTIVATIONS}
    tests = {t["name"]: t for t in results["tests"]}
    assert list(tests) == [a.name for a in ACTIVATIONS]
    assert {n: t["max_score"] for n, t in tests.items()} == full
    assert tests["ReLU"]["score"] == full["ReLU"] and tests["ReLU"]["status"] == "passed"
    assert tests["Sigmoid"]["score"] == 0 and "Not defined in the submission" in tests["Sigmoid"]["output"]
    assert results["score"] == full["ReLU"]
    assert f"**{full['ReLU']}/{sum(full.values())} points**" in results["output"]
    assert "**Could not grade:** 02_relu_variants.ipynb: not a notebook (invalid JSON at line 1)" in results["output"]


def test_run_autograder_with_nothing_submitted_still_writes_results(bundle: Path, tmp_path: Path) -> None:
    root = autograder_root(bundle, tmp_path)
    results = run_autograder(root)
    check_spec(results)
    assert results["score"] == 0 and len(results["tests"]) == len(ACTIVATIONS)
    assert "no .ipynb or .py file in the submission" in results["output"]
