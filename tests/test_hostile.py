"""Hostile and broken submissions: the grade stays right and the run always finishes.

Each submission starts from a correct ReLU (full marks) and adds one kind of trouble. The grader
runs it in a worker process (grader/run/supervisor.py); these tests drive the real command line.
The submissions that need nothing of their own from it are graded together, in one run of it
(the ``hostile`` fixture): each file in a process of its own, as when it is graded alone, so that
none of them can help or harm another, and one start of the grader instead of one per file.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

from grader.core import limits
from conftest import RELU, ROOT, grader, notebook

SIGMOID = '''
def sigmoid(input):
    x = input.float() if input.dtype in (torch.float16, torch.bfloat16) else input
    z = torch.exp(-torch.where(x >= 0, x, -x))
    return torch.where(x >= 0, 1 / (1 + z), z / (1 + z)).to(input.dtype)

class SigmoidFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = sigmoid(x); ctx.save_for_backward(y); return y
    @staticmethod
    def backward(ctx, g):
        y, = ctx.saved_tensors
        return g * y * (1 - y)

class Sigmoid(nn.Module):
    def forward(self, x):
        return sigmoid(x)
'''
WRONG_RELU = RELU.replace("torch.where(input <= 0, 0, input)", "torch.where(input <= 0, 0.1 * input, input)")


def run(tmp_path: Path, code: str, *extra: str, name: str = "sub.py") -> tuple[subprocess.CompletedProcess, dict]:
    sub = tmp_path / name
    sub.write_text(code)
    report = tmp_path / "report.json"
    r = grader(str(sub), "--device", "cpu", "--json", str(report), *extra)
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    return r, json.loads(report.read_text()) if report.exists() else {}


def breaks_sigmoid(when: str, how: str) -> str:
    """RELU and SIGMOID, with a sigmoid that does ``how`` when the check's input meets ``when``."""
    return RELU + SIGMOID + f"\n_ok = sigmoid\ndef sigmoid(input):\n    if {when}:\n        {how}\n    return _ok(input)\n"


CRASH = breaks_sigmoid("input.numel() == 1000", "import ctypes; ctypes.string_at(0)")
EXIT_CODE = breaks_sigmoid("input.dim() == 0", "import os; os._exit(3)")
EXITS = {"sys.exit(0)": "exit_0", "raise KeyboardInterrupt": "interrupt", "raise SystemExit(1)": "system_exit_1"}
HUGE = (RELU + "\nbig = None\ntry:\n    big = torch.empty(50 * 2**30, dtype=torch.uint8)\nexcept RuntimeError:\n    pass\n"
        "_ok = relu\ndef relu(input, inplace=False):\n    if input.dim() == 0:\n"
        "        torch.empty(50 * 2**30, dtype=torch.uint8)\n    return _ok(input, inplace)\n")
# a wrong relu, and torch's relu replaced by the same wrong function
PATCHES_REFERENCE = WRONG_RELU + "\nimport torch.nn.functional as F\nF.relu = relu\ntorch.relu = lambda x: relu(x)\n"
PATCHES_COMPARISON = WRONG_RELU + (
    "\nimport grader.checks.compare, grader.checks.torch_checks\n"
    "torch.isclose = lambda a, b, **k: torch.ones_like(a, dtype=torch.bool)\n"
    "torch.allclose = lambda *a, **k: True\n"
    "torch.Tensor.__eq__ = lambda self, other: torch.ones_like(self, dtype=torch.bool)\n"
    "grader.checks.compare.assert_close = lambda *a, **k: None\n"
    "grader.checks.torch_checks.assert_close = lambda *a, **k: None\n")
PATCHES_AT_CALL = WRONG_RELU.replace("    return input.copy_(out) if inplace else out",
                                     "    torch.isclose = lambda a, b, **k: torch.ones_like(a, dtype=torch.bool)\n"
                                     "    return input.copy_(out) if inplace else out")
# a worker that reports 'passed' without a record of the student's outputs that supports it (here:
# none, then garbage)
FORGES_RESULTS = RELU + """
import json, os, sys
_fd = int(sys.argv[sys.argv.index("--result-fd") + 1])
def relu(input, inplace=False):
    from grader.catalog import BY_NAME
    from grader.checks.torch_checks import checks_for
    for check, device in checks_for(BY_NAME["ReLU"], ["cpu"]):
        event = {"event": "result", "activation": "ReLU", "check": check.name, "device": device,
                 "status": "passed", "message": "", "notes": [], "tape": "bm90IGEgdGFwZQ=="}
        os.write(_fd, (json.dumps(event) + "\\n").encode())
    os.write(_fd, b'{"event": "done", "exit_code": 0, "restored": []}\\n')
    os._exit(0)
"""


def forges_report(report: Path) -> str:
    return WRONG_RELU + (f"\nimport json\njson.dump({{'submissions': [{{'score': 999, 'max_score': 999}}]}}, "
                         f"open({str(report)!r}, 'w'))\nopen('written_by_student.txt', 'w').write('x')\n")


class Graded(NamedTuple):
    """One run of ``python -m grader`` on several files: the run, its JSON report, and each file's
    record in that report by the file's name."""

    run: subprocess.CompletedProcess
    report: dict
    records: dict[str, dict]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Graded:
    """The submissions below, each in a file of its own, graded in one run."""
    folder = tmp_path_factory.mktemp("hostile")
    report = folder / "report.json"
    files = {"segfault": CRASH, "os_exit": EXIT_CODE, "huge": HUGE,
             "patches_reference": PATCHES_REFERENCE, "patches_comparison": PATCHES_COMPARISON,
             "patches_at_call": PATCHES_AT_CALL, "forges_report": forges_report(report),
             "forges_results": FORGES_RESULTS, "honest": RELU}
    for raise_, name in EXITS.items():
        files[name] = breaks_sigmoid("input.dim() == 0", f"import sys; {raise_}")
    paths = []
    for name, code in files.items():
        paths.append(folder / f"{name}.py")
        paths[-1].write_text(code)
    r = grader(*map(str, paths), "--device", "cpu", "--json", str(report))
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    assert r.returncode == 1, r.stdout + r.stderr  # files with failed checks, and none that cannot be graded
    data = json.loads(report.read_text())
    records = {Path(s["path"]).stem: s for s in data["submissions"]}
    assert sorted(records) == sorted(files)
    return Graded(r, data, records)


def scores(record: dict) -> dict[str, tuple[int, int]]:
    return {e["name"]: (e["score"], e["max_score"]) for e in record["exercises"]}


def test_segfault_costs_only_its_exercise(hostile: Graded) -> None:
    record = hostile.records["segfault"]
    s = scores(record)
    assert s["ReLU"][0] == s["ReLU"][1] > 0
    assert 0 < s["Sigmoid"][0] < s["Sigmoid"][1]
    checks = {c["name"]: c for c in record["exercises"][1]["checks"]}
    assert "crashed (segmentation fault)" in checks["vectorised"]["message"]


def test_os_exit_in_student_code(hostile: Graded) -> None:
    record = hostile.records["os_exit"]
    s = scores(record)
    assert s["ReLU"][0] == s["ReLU"][1]
    assert s["Sigmoid"][0] < s["Sigmoid"][1]
    assert "exited with status 3" in json.dumps(record)


@pytest.mark.parametrize("raise_", list(EXITS))
def test_exit_and_interrupt_are_check_failures(hostile: Graded, raise_: str) -> None:
    record = hostile.records[EXITS[raise_]]
    s = scores(record)
    assert s["ReLU"][0] == s["ReLU"][1] and 0 < s["Sigmoid"][0] < s["Sigmoid"][1]
    kind = "KeyboardInterrupt" if "Keyboard" in raise_ else "SystemExit"
    text = json.dumps(record)
    assert f"raised {kind}" in text and "crashed" not in text and "exited" not in text


def test_infinite_loop_in_a_cell_and_in_a_check(tmp_path: Path) -> None:
    nb = notebook(tmp_path / "sub.ipynb", "while True:\n    pass",
                  RELU.replace("    out = torch.where", "    while input.dim() == 0:\n        pass\n    out = torch.where"))
    r = grader(str(nb), "--device", "cpu", "-v")  # the default time limit
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"code cell 1: CellTimeout: took longer than {limits.CHECK_TIMEOUT:g} s" in r.stdout
    assert f"`relu` did not return within {limits.CHECK_TIMEOUT:g} s (an infinite loop?)" in r.stdout


def test_huge_allocation_fails_cleanly(hostile: Graded) -> None:
    record = hostile.records["huge"]
    s = scores(record)
    assert 0 < s["ReLU"][0] < s["ReLU"][1]
    assert "allocate" in json.dumps(record)


def test_monkeypatching_the_reference_does_not_help(hostile: Graded) -> None:
    record = hostile.records["patches_reference"]
    s = scores(record)
    assert s["ReLU"][0] < s["ReLU"][1] - 5
    assert any("the grader restored the originals" in n for n in record["notes"]), record["notes"]
    assert "the grader restored the originals" in hostile.run.stdout


def test_monkeypatching_the_comparison_does_not_help(hostile: Graded) -> None:
    s = scores(hostile.records["patches_comparison"])
    assert s["ReLU"][0] < s["ReLU"][1] - 5


def test_patching_at_call_time_is_undone(hostile: Graded) -> None:
    s = scores(hostile.records["patches_at_call"])
    assert s["ReLU"][0] < s["ReLU"][1] - 5


def test_forged_report_is_overwritten(hostile: Graded) -> None:
    record = hostile.records["forges_report"]
    assert record["score"] < record["max_score"] and record["max_score"] != 999
    assert not (ROOT / "written_by_student.txt").exists()  # the worker ran in a scratch folder


def test_report_integrity_fields(hostile: Graded) -> None:
    assert {"grader_version", "torch_version", "device", "python_version"} <= set(hostile.report)
    assert len(hostile.records["honest"]["sha256"]) == 64
    assert hostile.records["honest"]["score"] == hostile.records["honest"]["max_score"] > 0


@pytest.mark.parametrize("cells, expected", [
    (["def relu(:\n    pass", RELU], "SyntaxError"),
    (["%matplotlib inline\n!pip install torch\n" + RELU], "magics and shell commands do not run"),
    (["%%bash\necho hi", RELU], "skipped '%%bash'"),
])
def test_broken_cells_are_notes_and_the_rest_is_graded(tmp_path: Path, cells, expected) -> None:
    nb = notebook(tmp_path / "sub.ipynb", *cells)
    r = grader(str(nb), "--device", "cpu")
    assert r.returncode == 0, r.stdout + r.stderr
    assert expected in r.stdout


def test_huge_notebook_is_refused_in_one_line(tmp_path: Path, cli) -> None:
    nb = tmp_path / "big.ipynb"
    nb.write_text('{"nbformat": 4, "cells": [], "x": "' + "a" * (51 * 2**20) + '"}')
    r = cli(str(nb))  # in this process: refused before any worker starts
    assert r.returncode == 2 and "too large" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_crash_while_loading_is_one_line_exit_2(tmp_path: Path) -> None:
    r, report = run(tmp_path, "def relu(input):\n    return input\nimport os\nos._exit(7)\n")
    assert r.returncode == 2
    assert "exited with status 7 while its cells were running" in r.stderr


def test_forged_results_on_the_worker_pipe_do_not_count(hostile: Graded) -> None:
    """The verdict is the parent's: a worker that reports 'passed' without a record of the student's
    outputs that supports it gets no marks for it."""
    (ex,) = hostile.records["forges_results"]["exercises"]
    assert ex["score"] == 0 and ex["max_score"] > 10, ex
    assert "no readable record" in json.dumps(ex)
    assert "the worker reported passed; the grader's own verdict is failed" in json.dumps(ex)


def test_submission_cannot_write_into_the_course_or_other_submissions(tmp_path: Path) -> None:
    """Where the machine allows mount namespaces (root in CI), the worker sees the course, the
    submissions' folder and the report's folder read-only."""
    import os

    from grader.run.supervisor import COURSE_ROOT

    target = COURSE_ROOT / "grader" / "written_by_student.py"
    neighbour = tmp_path / "other_student.ipynb"
    neighbour.write_text("original")
    vandal = (f"\ntry:\n    open({str(target)!r}, 'w').write('x')\nexcept OSError:\n    pass\n"
              f"try:\n    open({str(neighbour)!r}, 'w').write('overwritten')\nexcept OSError:\n    pass\n")
    if os.geteuid() != 0:
        pytest.skip("mount namespaces need root; not root here")
    r, report = run(tmp_path, RELU + vandal)
    assert not target.exists(), "the submission wrote into the course"
    assert neighbour.read_text() == "original", "the submission changed another submission"
    s = scores(report["submissions"][0])
    assert s["ReLU"][0] == s["ReLU"][1]
