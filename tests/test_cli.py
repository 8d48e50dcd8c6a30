"""The command line: exit codes, one-line errors for bad files, the JSON report, pytest mode."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.core import limits

from conftest import RELU, SLOW, grader, kill_while_grading, notebook, slow_relu

ROOT = Path(__file__).resolve().parent.parent


def test_py_submission_full_marks_with_json(tmp_path: Path) -> None:
    sub = tmp_path / "relu.py"
    sub.write_text(RELU)
    report = tmp_path / "out" / "report.json"
    r = grader(str(sub), "--json", str(report), "--device", "cpu")
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(report.read_text())
    assert set(data) >= {"grader_version", "torch_version", "device", "submissions"}
    (s,) = data["submissions"]
    assert s["sha256"] == hashlib.sha256(sub.read_bytes()).hexdigest()
    assert s["score"] == s["max_score"] > 0
    (e,) = s["exercises"]
    assert e["name"] == "ReLU" and e["score"] == e["max_score"]
    assert all(set(c) >= {"name", "passed", "message"} and c["passed"] for c in e["checks"])
    assert "ReLU" in r.stdout and "all checks passed" in r.stdout


def test_cuda_checks_are_skipped_without_cuda(tmp_path: Path) -> None:
    import torch

    sub = tmp_path / "relu.py"
    sub.write_text(RELU)
    r = grader(str(sub), "--json", str(tmp_path / "r.json"), "--device", "all")
    checks = json.loads((tmp_path / "r.json").read_text())["submissions"][0]["exercises"][0]["checks"]
    cuda = [c for c in checks if c["name"].endswith("@cuda")]
    assert cuda, "CUDA checks are always listed"
    if not torch.cuda.is_available():
        assert r.returncode == 0 and "skipped" in r.stdout
        assert all(c["passed"] is None and c["status"] == "skipped" for c in cuda)


def test_notebook_later_cells_override_earlier_and_errors_are_notes(tmp_path: Path) -> None:
    nb = notebook(tmp_path / "sub.ipynb",
                  RELU.replace("torch.where(input <= 0, 0, input)", "input * 2"),  # wrong first
                  "!pip install nothing\n%time x = 1",
                  "def broken(:\n    pass",
                  RELU,  # a later cell fixes it, as re-running a kernel cell would
                  "raise ValueError('demo cell')")
    r = grader(str(nb), "--device", "cpu")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "skipped '!pip install nothing'" in r.stdout
    assert "code cell 3: SyntaxError" in r.stdout
    assert "code cell 5: ValueError: demo cell" in r.stdout


def test_wrong_implementation_exit_1_with_precise_message(tmp_path: Path) -> None:
    sub = tmp_path / "relu.py"
    sub.write_text(RELU.replace("torch.where(input <= 0, 0, input)", "torch.where(input > 0, input, 0)"))
    r = grader(str(sub), "--device", "cpu")
    assert r.returncode == 1
    assert "edges: relu() float32: value is 0.0 at x=nan, torch gives nan" in r.stdout


@pytest.mark.parametrize("content, expected", [
    (None, "no such file"),
    (b"{not json", "not a notebook (invalid JSON"),
    (b'{"nbformat": 3, "cells": []}', "nbformat 3 is not supported"),
    (b'{"metadata": {}}', "not a notebook (no list of cells)"),
    (b"\xff\xfe\x00bad", "not UTF-8"),
])
def test_unreadable_submission_exit_2_one_line(tmp_path: Path, content: bytes | None, expected: str, cli) -> None:
    path = tmp_path / "sub.ipynb"
    if content is not None:
        path.write_bytes(content)
    r = cli(str(path))  # in this process: refused before any worker starts
    assert r.returncode == 2
    assert expected in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_wrong_suffix_and_empty_notebook(tmp_path: Path, cli) -> None:
    txt = tmp_path / "sub.txt"
    txt.write_text("x = 1")
    r = cli(str(txt))
    assert r.returncode == 2 and "expected an .ipynb or .py file" in r.stderr
    empty = notebook(tmp_path / "empty.ipynb")
    r = grader(str(empty))
    assert r.returncode == 1 and "no activation defined" in r.stdout


def test_one_bad_file_among_good_ones_is_exit_1(tmp_path: Path) -> None:
    good = tmp_path / "relu.py"
    good.write_text(RELU)
    r = grader(str(good), str(tmp_path / "missing.ipynb"), "--device", "cpu")
    assert r.returncode == 1
    assert "missing.ipynb: no such file" in r.stderr and "all checks passed" in r.stdout


def test_the_user_s_pytest_options_do_not_reach_the_grader_s_suite(tmp_path: Path) -> None:
    """A shell (or a CI job) that sets pytest's environment variables for its own tests: the grading
    is the same, not "the checks could not run (pytest exit status 4)"."""
    sub = tmp_path / "relu.py"
    sub.write_text(RELU)
    env = dict(os.environ, PYTEST_ADDOPTS="-p no_such_plugin -x --no-such-option",
               PYTEST_PLUGINS="no_such_module")
    r = subprocess.run([sys.executable, "-m", "grader", str(sub), "--device", "cpu"], capture_output=True, text=True,
                       cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0 and "all checks passed" in r.stdout, r.stdout + r.stderr


def test_infinite_loop_costs_the_check_not_the_run(tmp_path: Path) -> None:
    sub = tmp_path / "relu.py"
    sub.write_text(RELU.replace("    out = torch.where(input <= 0, 0, input)",
                                "    import time\n    while input.numel() == 1000:\n        time.sleep(0.01)\n"
                                "    out = torch.where(input <= 0, 0, input)"))
    # the default time limit; asleep, not spinning (tests/test_hostile.py has loops that spin)
    r = grader(str(sub), "--device", "cpu", "-v")
    assert r.returncode == 1
    assert f"vectorised: ReLU vectorised: `relu` did not return within {limits.CHECK_TIMEOUT:g} s" in r.stdout
    assert "ok   values[float32]" in r.stdout


def test_pytest_submission_option(tmp_path: Path) -> None:
    sub = tmp_path / "relu.py"
    sub.write_text(RELU)
    r = subprocess.run([sys.executable, "-m", "pytest", "--submission", str(sub), "--device", "cpu", "-q",
                        "-p", "no:xdist"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "passed" in r.stdout and "ReLU" not in r.stderr


def test_device_cuda_without_cuda_is_a_one_line_error(tmp_path: Path, cli) -> None:
    import torch

    sub = tmp_path / "relu.py"
    sub.write_text(RELU)
    r = (grader if torch.cuda.is_available() else cli)(str(sub), "--device", "cuda")  # with CUDA it grades
    if torch.cuda.is_available():
        assert r.returncode == 0, r.stdout + r.stderr
    else:
        assert r.returncode == 2 and "CUDA is not available" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_grades_without_the_package_installed(tmp_path: Path) -> None:
    """After only `pip install -r requirements.txt` (no `make setup`, so no editable install),
    `python -m grader` from the repository root imports the grader from the current folder; its
    worker, which starts in a scratch folder, must find that same grader. Reproduced with the base
    interpreter and the venv's site-packages on PYTHONPATH: PYTHONPATH does not process the editable
    install's .pth file, so `grader` is importable only from the copy in the working folder."""
    import shutil
    import sysconfig

    base_python = Path(sys._base_executable)
    site_packages = sysconfig.get_paths()["purelib"]
    shutil.copytree(ROOT / "grader", tmp_path / "grader", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "relu.py").write_text(RELU)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PYTHONPATH"] = site_packages
    probe = subprocess.run([str(base_python), "-c", "import grader"], capture_output=True, text=True,
                           cwd=tmp_path.parent, env=env)
    assert probe.returncode != 0, "the grader must not be importable outside the working folder for this test"
    r = subprocess.run([str(base_python), "-m", "grader", "relu.py", "--device", "cpu"], capture_output=True,
                       text=True, cwd=tmp_path, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ReLU" in r.stdout and "all checks passed" in r.stdout


def test_killed_grader_leaves_a_provisional_report_that_a_run_replaces(tmp_path: Path) -> None:
    sub = tmp_path / "relu.py"
    sub.write_text(slow_relu())
    report = tmp_path / "out" / "report.json"
    kill_while_grading([sys.executable, "-m", "grader", str(sub), "--json", str(report)], cwd=ROOT,
                       env=dict(os.environ, **{SLOW: "1"}))
    data = json.loads(report.read_text())
    assert data["torch_version"] and data["device"] == "all"
    (s,) = data["submissions"]
    assert s["path"] == str(sub) and s["score"] == 0 and s["exercises"] == []
    assert s["error"] == "grading did not finish: the grader was stopped before it finished"

    r = grader(str(sub), "--json", str(report), "--device", "cpu")  # without ACTIVATIONS_TEST_SLOW: relu returns
    assert r.returncode == 0, r.stdout + r.stderr
    (s,) = json.loads(report.read_text())["submissions"]
    assert s["error"] is None and s["score"] == s["max_score"] > 0
    assert [p.name for p in report.parent.iterdir()] == ["report.json"]  # written in place, atomically


def test_json_report_that_cannot_be_written_is_a_one_line_error_before_grading(tmp_path: Path, cli) -> None:
    sub = tmp_path / "relu.py"
    sub.write_text("raise SystemExit('student code ran')")
    (tmp_path / "out").mkdir()
    r = cli(str(sub), "--json", str(tmp_path / "out"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stdout == ""
    assert r.stderr.startswith(f"error: --json {tmp_path / 'out'}: cannot write it")
    assert len(r.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "relu.py"]  # no temporary file left


def test_time_budget_keeps_what_was_graded_and_says_what_was_not_run(tmp_path: Path, cli) -> None:
    """`--time-budget` (the Classroom 50 autograder's, within the grade job's 15 minutes): a file
    whose grading outlasts it keeps the checks it passed, the others fail with "not run"; a file
    never started is an error that says so. A budget that is not a positive number is one line."""
    (tmp_path / "a_slow.py").write_text(slow_relu())  # with ACTIVATIONS_TEST_SLOW: this relu never returns
    (tmp_path / "b_relu.py").write_text(RELU)
    report = tmp_path / "report.json"
    r = subprocess.run([sys.executable, "-m", "grader", str(tmp_path / "a_slow.py"), str(tmp_path / "b_relu.py"),
                        "--device", "cpu", "--jobs", "1", "--time-budget", "8", "--json", str(report)],
                       capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, **{SLOW: "1"}), timeout=600)
    assert r.returncode == 1, r.stdout + r.stderr  # graded short of full marks (exit status 2: nothing graded)
    slow, never = json.loads(report.read_text())["submissions"]
    ran_out = "the grader's time budget of 8 s ran out"
    assert ran_out in json.dumps(slow) and slow["score"] == 0
    assert never["error"] == f"not run: {ran_out}"
    for wrong in ("0", "-3", "inf"):
        r = cli(str(tmp_path / "b_relu.py"), "--time-budget", wrong)
        assert r.returncode == 2 and r.stderr.strip().splitlines() == [
            f"error: --time-budget {float(wrong):g}: give a positive number of seconds"], r.stderr
