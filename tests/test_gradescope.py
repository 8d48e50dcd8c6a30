"""`python -m grader gradescope`: the autograder bundle, and its real run_autograder run against a
temporary /autograder, its results.json checked against Gradescope's specification."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest


from grader.commands import gradescope
from grader.catalog import ACTIVATIONS
from grader.spec.assignment import assignment
from grader.checks.torch_checks import checks_for
from conftest import (
    RELU, SLOW, autograder_root, build_bundle, check_spec, full_marks, kill_while_grading, slow_relu,
    solution_lines)
from grader.report.escape import markdown_text

ROOT = Path(__file__).resolve().parent.parent


def test_bundle_layout(bundle: Path) -> None:
    torch_pin = next(l for l in (ROOT / "requirements.txt").read_text().splitlines() if l.startswith("torch=="))
    with zipfile.ZipFile(bundle) as z:
        names = set(z.namelist())
        assert {"setup.sh", "run_autograder"} <= names  # at the root of the archive, not in a folder
        assert {f"grader/{p.relative_to(ROOT / 'grader').as_posix()}" for p in (ROOT / "grader").rglob("*.py")} <= names
        for name in ("setup.sh", "run_autograder"):
            assert stat.S_IMODE(z.getinfo(name).external_attr >> 16) & 0o111, f"{name} is not executable"
            assert z.read(name).startswith(b"#!/usr/bin/env bash\n")
        setup = z.read("setup.sh").decode()
        assert f"--index-url https://download.pytorch.org/whl/cpu {torch_pin}" in setup
        # no line of a solution in the bundle (short ones such as `return out` are also the grader's)
        secret = {line for line in solution_lines() if len(line) > 12}
        # grader/spec/references.py is the float64 reference of the activations torch lacks: like torch's own
        # source for the 28 others, a grader cannot judge them without it (book/guide_threat_model.md)
        assert not [n for n in names if n != "grader/spec/references.py"
                    and {l.strip() for l in z.read(n).decode().splitlines()} & secret]
    subprocess.run(["bash", "-n", "-c", setup], check=True)


def run_autograder(root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable)
    r = subprocess.run([str(root / "run_autograder")], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads((root / "results" / "results.json").read_text())


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
    full = full_marks()  # the MLX and 8-bit chapters' exercises are tests of their own, after the torch chapters'
    tests = {t["name"]: t for t in results["tests"]}
    assert list(tests) == list(full)
    assert {n: t["max_score"] for n, t in tests.items()} == full
    assert tests["MLX ReLU"]["number"] == "10.1" and tests["MLX ReLU"]["tags"] == ["10_mlx"]
    assert tests["ReLU"]["score"] == full["ReLU"] and tests["ReLU"]["status"] == "passed"
    assert tests["Sigmoid"]["score"] == 0 and "Not defined in the submission" in tests["Sigmoid"]["output"]
    assert results["score"] == full["ReLU"]
    assert f"**{full['ReLU']}/{sum(full.values())} points**" in results["output"]
    # run_autograder grades within the default budget, under Gradescope's default timeout of 600 s
    assert results["extra_data"]["time_budget"] == gradescope.TIME_BUDGET
    assert "provisional" not in results["extra_data"] and "Grading stopped" not in results["output"]
    # the student's file name and the reader's words, as Markdown text
    assert ("**Could not grade:** " + markdown_text("02_relu_variants.ipynb: not a notebook (invalid JSON at line 1)")
            in results["output"])


def test_run_autograder_with_nothing_submitted_still_writes_results(bundle: Path, tmp_path: Path) -> None:
    root = autograder_root(bundle, tmp_path)
    results = run_autograder(root)
    check_spec(results)
    assert results["score"] == 0 and len(results["tests"]) == len(full_marks())
    assert markdown_text("no .ipynb or .py file in the submission") in results["output"]


def test_default_time_budget_fits_gradescope_default_timeout() -> None:
    # 600 s is Gradescope's default timeout; the rest is for start-up and stopping the last worker
    assert gradescope.TIME_BUDGET <= 600 - 45


SLOW_SIGMOID = (RELU.replace("relu", "sigmoid").replace("ReLU", "Sigmoid")
                .replace("out = torch.where(input <= 0, 0, input)", "time.sleep(3)\n    out = torch.sigmoid(input)")
                .replace("return torch.where(x > 0, g, 0)", "s = torch.sigmoid(x)\n        return g * s * (1 - s)"))


def test_time_budget_keeps_what_was_graded_and_reports_the_rest_as_not_run(tmp_path: Path) -> None:
    """ReLU is graded at once; Sigmoid is correct but takes 3 s a call, so its checks outlast a
    budget of 30 s (3 s a call is under half the check limit: slow, not hung); b_tanh.py is never
    started."""
    budget = 30
    root = autograder_root(build_bundle(tmp_path / "out", "--time-budget", str(budget)), tmp_path)
    (root / "submission" / "a_slow.py").write_text("import time\n" + RELU + SLOW_SIGMOID)
    (root / "submission" / "b_tanh.py").write_text("import torch\ndef tanh(input):\n    return torch.tanh(input)\n")
    results = run_autograder(root)
    check_spec(results)
    assert results["extra_data"]["time_budget"] == budget
    assert results["execution_time"] < budget + 45  # stopping the last worker takes seconds, not minutes
    full = {a.name: len(checks_for(a, ["cpu"])) for a in ACTIVATIONS}
    tests = {t["name"]: t for t in results["tests"]}
    assert tests["ReLU"]["score"] == full["ReLU"] and tests["ReLU"]["status"] == "passed"
    ran_out = f"the grader's time budget of {budget} s ran out"
    sigmoid = tests["Sigmoid"]
    assert sigmoid["status"] == "failed" and sigmoid["score"] < full["Sigmoid"]
    assert sigmoid["output"].startswith(f"From {markdown_text('a_slow.py')}.")
    not_run = [l for l in sigmoid["output"].splitlines() if l.endswith(": " + markdown_text(f"not run: {ran_out}"))]
    assert not_run and len(not_run) + sigmoid["score"] <= full["Sigmoid"]
    assert tests["Tanh"]["score"] == 0
    assert tests["Tanh"]["output"] == f"not run: {ran_out} before {markdown_text('b_tanh.py')} was graded."
    assert tests["Swish"]["output"] == tests["Tanh"]["output"]  # it, too, could have been in b_tanh.py
    assert f"**Grading stopped:** {ran_out}." in results["output"]
    assert "**Could not grade:** " + markdown_text(f"b_tanh.py: not run: {ran_out}") in results["output"]
    assert results["score"] == full["ReLU"] + sigmoid["score"]
    assert [f["path"] for f in results["extra_data"]["files"]] == ["a_slow.py", "b_tanh.py"]
    assert all(len(f["sha256"]) == 64 for f in results["extra_data"]["files"])


def test_killed_autograder_leaves_provisional_results_that_a_run_replaces(bundle: Path, tmp_path: Path) -> None:
    root = autograder_root(bundle, tmp_path)
    (root / "submission" / "relu.py").write_text(slow_relu())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    kill_while_grading([sys.executable, "-m", "grader", "gradescope", "--run", str(root), "--time-budget", "300"],
                       cwd=root, env=dict(env, PYTHONPATH=str(root / "source"), **{SLOW: "1"}))
    results = json.loads((root / "results" / "results.json").read_text())
    check_spec(results)
    assert results["score"] == 0 and results["tests"] == []
    assert results["output"].startswith("grading did not finish: ")
    assert "the grader's own time budget is 300 s" in results["output"]
    assert results["visibility"] == "after_due_date" and results["extra_data"]["provisional"] is True

    results = run_autograder(root)  # without ACTIVATIONS_TEST_SLOW: relu returns
    check_spec(results)
    full = len(checks_for(next(a for a in ACTIVATIONS if a.name == "ReLU"), ["cpu"]))
    assert results["score"] == full and "provisional" not in results["extra_data"]
    assert sorted(p.name for p in (root / "results").iterdir()) == ["results.json"]  # replaced, no temporary file


def test_time_budget_must_be_positive(tmp_path: Path, cli) -> None:
    r = cli("gradescope", str(tmp_path), "--time-budget", "0", cwd=ROOT)  # in this process
    assert r.returncode == 2 and r.stderr.strip() == "error: --time-budget 0: give a positive number of seconds"
    assert not (tmp_path / "autograder.zip").exists()


# --- setup.sh, run against stand-ins for apt-get and Python that record what they are asked ---------

STUB_PYTHON = """#!/bin/bash
echo "${{0##*/}} $*" >> "$LOG"
if [ "$1" = -c ]; then
    case "$2" in
        *version_info*) echo {version}; exit 0 ;;
        *ensurepip*) [ -e "$STUBS/venv-{version}" ]; exit $? ;;
    esac
fi
if [ "$1 $2" = "-m venv" ]; then
    /bin/mkdir -p "$3/bin"
    printf '#!/bin/bash\\necho "venv-python{version} $*" >> "$LOG"\\n' > "$3/bin/python"
    /bin/chmod +x "$3/bin/python"
fi
"""

# installing python3.X puts a python3.X on PATH; python3.X-venv makes that version's ensurepip work
STUB_APT = """#!/bin/bash
echo "apt-get $*" >> "$LOG"
[ "$1" = install ] && [ -e "$STUBS/apt-broken" ] && exit 100
for package in "$@"; do
    case "$package" in
        python3.1?-venv) package="${package%-venv}"; : > "$STUBS/venv-${package#python}" ;&
        python3.1?) [ -e "$STUBS/$package" ] || /bin/cp "$TEMPLATES/$package" "$STUBS/$package" ;;
    esac
done
"""


def run_setup(bundle: Path, tmp_path: Path, pythons: dict[str, str], ensurepip: set[str] = frozenset(),
              apt_broken: bool = False) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run the bundle's setup.sh with only stand-ins on PATH: ``pythons`` maps a command (python3) to
    the version it reports; ``ensurepip``: the versions whose venv module works before any install."""
    stubs, templates, log, root = tmp_path / "stubs", tmp_path / "templates", tmp_path / "log", tmp_path / "autograder"
    stubs.mkdir()
    templates.mkdir()
    for version in ("3.11", "3.12", "3.13"):
        (templates / f"python{version}").write_text(STUB_PYTHON.format(version=version))
        (templates / f"python{version}").chmod(0o755)
    for name, version in pythons.items():
        (stubs / name).write_text(STUB_PYTHON.format(version=version))
    for version in ensurepip:
        (stubs / f"venv-{version}").touch()
    (stubs / "apt-get").write_text(STUB_APT)
    (stubs / "id").write_text('#!/bin/bash\necho "id $*" >> "$LOG"\nexit 1\n')  # no such user yet
    (stubs / "useradd").write_text('#!/bin/bash\necho "useradd $*" >> "$LOG"\n')
    if apt_broken:
        (stubs / "apt-broken").touch()
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    with zipfile.ZipFile(bundle) as z:
        (tmp_path / "setup.sh").write_bytes(z.read("setup.sh"))
    env = {"PATH": str(stubs), "LOG": str(log), "STUBS": str(stubs), "TEMPLATES": str(templates),
           "AUTOGRADER_ROOT": str(root)}
    r = subprocess.run([shutil.which("bash"), str(tmp_path / "setup.sh")], capture_output=True, text=True, env=env,
                       timeout=60)
    return r, log.read_text().splitlines() if log.exists() else []


def test_setup_on_ubuntu_22_04_installs_python_3_11(bundle: Path, tmp_path: Path) -> None:
    # Gradescope's default base image: python3 is 3.10, python3.11 comes from Ubuntu's universe
    r, log = run_setup(bundle, tmp_path, {"python3": "3.10"})
    assert r.returncode == 0, r.stderr
    apt = [l for l in log if l.startswith("apt-get")]
    assert apt == ["apt-get update", "apt-get install -y python3.11 python3.11-venv"]
    assert f"python3.11 -m venv {tmp_path / 'autograder' / 'venv'}" in log
    assert not [l for l in log if l.startswith("python3 -m")]  # 3.10 never makes the environment
    pip = [l for l in log if l.startswith("venv-")]
    assert pip and all(l.startswith("venv-python3.11 -m pip install") for l in pip)
    assert any("--index-url https://download.pytorch.org/whl/cpu torch==" in l for l in pip)
    # the rest from the bundle's requirements.txt: numpy (torch does not bring it; the checks need it)
    # and MLX's CPU build, which pip installs on Linux x86_64 alone (its marker)
    assert any(l.endswith(f"-m pip install -r {tmp_path / 'autograder' / 'source' / 'requirements.txt'}")
               for l in pip), pip
    with zipfile.ZipFile(bundle) as z:
        bundled = z.read("requirements.txt").decode().splitlines()
    course = (ROOT / "requirements.txt").read_text().splitlines()
    assert next(l for l in course if l.startswith("numpy==")) in bundled
    assert 'mlx[cpu]==0.32.4; sys_platform == "linux" and platform_machine == "x86_64"' in bundled
    assert not any(l.startswith("torch") for l in bundled)  # from PyTorch's CPU index, before
    # submissions run as this user, who owns nothing (grader/run/containment.py)
    assert log[-1] == ("useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "
                       "activations-grader"), log


@pytest.mark.parametrize("ensurepip", [True, False])
def test_setup_keeps_a_supported_python3(bundle: Path, tmp_path: Path, ensurepip: bool) -> None:
    r, log = run_setup(bundle, tmp_path, {"python3": "3.12"}, {"3.12"} if ensurepip else set())
    assert r.returncode == 0, r.stderr
    apt = [l for l in log if l.startswith("apt-get")]
    assert apt == ["apt-get update"] + ([] if ensurepip else ["apt-get install -y python3.12-venv"])
    assert f"python3 -m venv {tmp_path / 'autograder' / 'venv'}" in log
    assert all(l.startswith("venv-python3.12 ") for l in log if l.startswith("venv-"))


def test_setup_stops_when_no_supported_python_can_be_installed(bundle: Path, tmp_path: Path) -> None:
    r, log = run_setup(bundle, tmp_path, {"python3": "3.10"}, apt_broken=True)
    assert r.returncode != 0
    # set -e: nothing after the failed install
    assert [l for l in log if l.startswith("apt-get")] == ["apt-get update", "apt-get install -y python3.11 python3.11-venv"]
    assert not [l for l in log if " -m " in l]
    assert not (tmp_path / "autograder" / "venv").exists()


def test_a_bundle_of_one_chapter_totals_that_chapter(tmp_path: Path) -> None:
    bundle = build_bundle(tmp_path / "bundle", "--chapter", "01_standard")
    with zipfile.ZipFile(bundle) as z:
        assert json.loads(z.read("grader.json"))["chapters"] == ["01_standard"]
    root = autograder_root(bundle, tmp_path)
    shutil.copy(ROOT / "solutions" / "01_standard.ipynb", root / "submission" / "01_standard.ipynb")
    # handed in too, but not this assignment's: graded by nothing, counted in nothing
    shutil.copy(ROOT / "exercises" / "02_relu_variants.ipynb", root / "submission" / "02_relu_variants.ipynb")
    results = run_autograder(root)
    check_spec(results)
    chapter = {a.name: len(checks_for(a, ["cpu"])) for a in ACTIVATIONS if a.chapter == "standard"}
    assert {t["name"]: t["max_score"] for t in results["tests"]} == chapter
    assert results["score"] == sum(chapter.values())  # a complete chapter 1: full marks of that chapter
    assert f"**{sum(chapter.values())}/{sum(chapter.values())} points**" in results["output"]
    assert markdown_text("outside this assignment (chapter 01_standard)") in results["output"]


def test_a_bundle_of_the_mlx_chapter_grades_its_solutions_to_full_marks(tmp_path: Path) -> None:
    """MLX is installed here, as setup.sh installs it on Gradescope's Linux x86_64."""
    bundle = build_bundle(tmp_path / "bundle", "--chapter", "10_mlx")
    with zipfile.ZipFile(bundle) as z:
        built = json.loads(z.read("grader.json"))["max_scores"]
    mlx = {k: v for k, v in full_marks().items() if k.startswith("MLX ")}
    assert built == mlx and all(mlx.values())  # every MLX exercise has checks: no test of 0 points
    root = autograder_root(bundle, tmp_path)
    shutil.copy(ROOT / "solutions" / "10_mlx.ipynb", root / "submission" / "10_mlx.ipynb")
    results = run_autograder(root)
    check_spec(results)
    assert results["score"] == sum(mlx.values()) == sum(t["max_score"] for t in results["tests"])
    assert {t["name"]: t["score"] for t in results["tests"]} == mlx
    assert all(t["status"] == "passed" for t in results["tests"])


def test_a_chapter_gradescope_cannot_grade_is_refused_when_the_bundle_is_built(tmp_path: Path) -> None:
    """A course that pins no MLX for Linux x86_64: its MLX chapter would be 0 of 0 points, every
    test "passed"; the bundle is refused, in one line, and nothing is written."""
    course = tmp_path / "course"
    course.mkdir()
    (course / "requirements.txt").write_text("".join(
        l + "\n" for l in (ROOT / "requirements.txt").read_text().splitlines() if not l.startswith("mlx[cpu]")))
    with pytest.raises(SystemExit) as refused:
        gradescope.build(tmp_path / "out", root=course, assignment=assignment(["01_standard", "10_mlx"]))
    message = str(refused.value)
    assert message.startswith("error: Gradescope cannot grade chapter 10_mlx: none of its checks runs on linux x86_64")
    assert len(message.splitlines()) == 1 and not (tmp_path / "out").exists()
    assert gradescope.build(tmp_path / "ok", root=course, assignment=assignment(["01_standard"])).is_file()


def test_an_exercise_whose_checks_cannot_run_in_the_autograder_is_no_pass() -> None:
    """Where MLX failed to install, the bundle's maximum stands and the test says why: never a pass
    with 0 of 0 checks."""
    maxima = {"MLX ReLU": 12, "ReLU": 18}
    results = gradescope.results([], [], maxima, "visible", 1.0, runnable={"MLX ReLU": 0, "ReLU": 18})
    check_spec(results)
    mlx = next(t for t in results["tests"] if t["name"] == "MLX ReLU")
    assert mlx["status"] == "failed" and mlx["max_score"] == 12 and mlx["score"] == 0
    assert mlx["output"].startswith("Only 0 of its 12 checks can run in this autograder (MLX is not installed).")
    zero = gradescope.results([], [], {"ReLU": 0}, "visible", 1.0)
    assert zero["tests"][0]["status"] == "failed"


def test_a_bundle_whose_chapters_this_grader_lacks_scores_nothing_and_says_why(tmp_path: Path) -> None:
    bundle = build_bundle(tmp_path / "bundle", "--chapter", "01_standard")
    root = autograder_root(bundle, tmp_path)
    (root / "source" / "grader.json").write_text(json.dumps({"chapters": ["99_unknown"]}))
    shutil.copy(ROOT / "solutions" / "01_standard.ipynb", root / "submission" / "01_standard.ipynb")
    results = run_autograder(root)
    assert results["score"] == 0 and results["tests"] == []
    assert "the autograder's configuration is wrong (--chapter '99_unknown': not a chapter" in results["output"]
