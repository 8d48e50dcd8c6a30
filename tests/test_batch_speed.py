"""What makes `python -m grader batch` fast keeps every grade what grading each file alone gives: one
worker per student (a fresh process forked per file), the judging in the batch's own process, and
identical files graded once per class. No timing here: bench/class_throughput.py measures."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from grader.commands import batch
from grader.grading import submissions
from grader.grading.dedup import FileReportCache
from grader.grading.discovery import discover
from grader.grading.hashing import file_entries
from grader.grading.options import GradingOptions
from grader.grading.student import grade_student
from grader.report import gradebook
from grader.report.model import SubmissionResult

from conftest import RELU, STUB_RELU, run_batch, write

ROOT = Path(__file__).resolve().parent.parent
# a correct ReLU whose relu, called by the grader, kills the process it runs in
KILLS_ITS_PROCESS = RELU.replace("    out = torch.where(input <= 0, 0, input)",
                                 "    import os\n    os._exit(3)")
# (asleep, not spinning: it is graded twice, and a spinning loop takes a core from the other tests for
# each of its time limits; tests/test_hostile.py has the spinning one)
HANGS = RELU.replace("    out = torch.where(input <= 0, 0, input)", "    import time\n    while True:\n        time.sleep(0.01)")
# file A of a student: stashes a correct relu where file B, graded after it, looks for it, and
# replaces torch's relu and a builtin, as a submission can at import
STASH = '''
import builtins, torch
def _relu(input, inplace=False):
    out = torch.where(input <= 0, 0, input)
    return input.copy_(out) if inplace else out
builtins._stashed_relu = _relu
torch.relu = torch.nn.functional.relu = lambda input, inplace=False: input
builtins.abs = lambda x: 0
'''
USES_STASH = RELU.replace("    out = torch.where(input <= 0, 0, input)",
                          "    import builtins\n    out = builtins._stashed_relu(input)")
# file A of a student: writes, on its own pipe, what the worker writes at the end of a file, then a
# forged result, so that the parent would take the rest as the next file's
FORGES_END = '''
def relu(input):  # something to grade: a file that defines nothing is not run
    return input
import os, sys
_fd = int(sys.argv[sys.argv.index("--result-fd") + 1])
os.write(_fd, b'\\nZ {"event": "job-exit", "returncode": 0}\\n')
os.write(_fd, b'Z {"event": "loaded", "sha256": "", "notes": [], "graded": []}\\n')
os._exit(0)
'''


def graded_alone(paths: list[Path], root: Path, tmp_path: Path) -> dict[str, dict]:
    """Each file's report from `python -m grader` (the reference), by its path under ``root``."""
    report = tmp_path / "alone.json"
    r = subprocess.run([sys.executable, "-m", "grader", *map(str, paths), "--json", str(report)],
                       capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                       timeout=900)
    assert "Traceback" not in r.stderr, r.stderr
    return {Path(s["path"]).relative_to(root).as_posix(): s for s in json.loads(report.read_text())["submissions"]}


def essentials(record: dict) -> tuple:
    return (record["score"], record["error"],
            [(e["name"], e["score"], [(c["name"], c["status"], c["message"]) for c in e["checks"]])
             for e in record["exercises"]])


def test_a_class_graded_in_one_batch_gets_the_grades_of_each_file_graded_alone(tmp_path: Path) -> None:
    sub = tmp_path / "class"
    files = {
        "alice/relu.py": RELU,  # complete
        "alice/stub.py": STUB_RELU,  # and an untouched exercise, as bob's and dave's
        "bob/stub.py": STUB_RELU,
        "dave/stub.py": STUB_RELU,
        "carol/01_standard.ipynb": '{"cells": [',  # broken JSON
        "mallory/relu.py": KILLS_ITS_PROCESS,  # os._exit in a check: a new process for the rest
        "mallory/zz_after.py": RELU + "\n# mallory's\n",  # the file after it, in the same worker
        "henry/relu.py": HANGS,  # a hanging relu: the check's time limit, then the hang memo
        "eve/a_stash.py": STASH,  # tampers with the interpreter at import
        "eve/b_relu.py": USES_STASH,  # and relies on it in the next file
        "frank/relu.py": RELU + "\n# frank's\n",  # graded next to eve's tampering
        "oscar/a_forge.py": FORGES_END,  # tries to end its own file early and speak for the next
        "oscar/b_relu.py": RELU + "\n# oscar's\n",
    }
    for name, text in files.items():
        write(sub / name, text)
    gb, report = tmp_path / "gradebook.csv", tmp_path / "report.json"
    r = run_batch(str(sub), "--csv", str(gb), "--json", str(report), "--jobs", "2")
    assert "Traceback" not in r.stderr, r.stderr
    # the untouched exercise is graded once for alice, bob and dave (who may be graded at once)
    assert re.search(r"files: 11 graded, 2 the same as one graded before", r.stderr), r.stderr
    records = {s["student"]: s for s in json.loads(report.read_text())["students"]}

    alone = graded_alone([sub / name for name in files], sub, tmp_path)
    maxima = gradebook.max_scores("all")
    for student in ("alice", "bob", "carol", "dave", "eve", "frank", "henry", "mallory", "oscar"):
        mine = sorted(name for name in files if name.startswith(student + "/"))
        for a in [alone[m] for m in mine]:
            a["path"] = Path(a["path"]).relative_to(sub).as_posix()
        expected = gradebook.student_record(student, records[student]["files"],
                                            [SubmissionResult.from_json(alone[m]) for m in mine], maxima)
        assert essentials(records[student]) == essentials(expected), student
        assert [f["path"] for f in records[student]["files"]] == mine
    relu_max = maxima["ReLU"]
    assert records["alice"]["score"] == records["frank"]["score"] == relu_max > 0
    assert records["bob"]["score"] == records["dave"]["score"] == 0
    assert "not implemented" in records["dave"]["exercises"][0]["checks"][0]["message"]
    assert records["carol"]["error"] == "carol/01_standard.ipynb: not a notebook (invalid JSON at line 1)"
    # mallory's process died in relu's first check: ReLU is lost in that file, not in the next one
    assert records["mallory"]["score"] == relu_max
    assert records["henry"]["score"] == 0 and "did not return within" in json.dumps(records["henry"]["exercises"])
    # eve's second file earns what it earns alone: nothing, although her first file left a correct
    # relu where it looks (and torch's relu and abs replaced)
    assert records["eve"]["score"] == 0 and alone["eve/b_relu.py"]["score"] == 0
    assert "_stashed_relu" in json.dumps(records["eve"]["exercises"])
    # oscar's forged end of file is his first file's own output: his second file is graded whole
    assert records["oscar"]["score"] == relu_max
    assert records["oscar"]["error"] == ("oscar/a_forge.py: the submission exited with status 0 while its cells "
                                         "were running")


def test_a_failure_of_the_grader_while_grading_one_student_is_that_students_line(tmp_path: Path, monkeypatch,
                                                                                  capsys) -> None:
    sub = tmp_path / "class"
    write(sub / "alice" / "relu.py", RELU)
    write(sub / "victim" / "relu.py", RELU + "\n# the victim's\n")
    real = submissions.grade_many

    def fails_for_the_victim(paths, *args, **kwargs):
        if any("victim" in p for p in paths):
            raise MemoryError("while judging")
        return real(paths, *args, **kwargs)

    monkeypatch.setattr(submissions, "grade_many", fails_for_the_victim)
    gb = tmp_path / "gradebook.csv"
    assert batch.main([str(sub), "--csv", str(gb), "--jobs", "2", "--device", "cpu"]) == 1
    rows = {row.split(",")[0]: row for row in gb.read_text().splitlines()[1:]}
    assert rows["victim"].endswith("grader error: MemoryError: while judging")
    alice = rows["alice"].split(",")
    assert alice[-1] == "" and int(alice[-3]) == gradebook.max_scores("cpu")["ReLU"]
    assert "victim: 0/" in capsys.readouterr().err


def test_a_worker_killed_by_its_student_costs_that_student_alone(tmp_path: Path) -> None:
    """A file that kills the worker itself (its parent, not only its own process): the next file of
    that student is graded by a new worker, and the other students see nothing of it."""
    kills_worker = RELU.replace("    out = torch.where(input <= 0, 0, input)",
                                "    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n"
                                "    out = torch.where(input <= 0, 0, input)")
    sub = tmp_path / "class"
    write(sub / "alice" / "relu.py", RELU)
    write(sub / "zed" / "a_relu.py", kills_worker)
    write(sub / "zed" / "b_relu.py", RELU + "\n# zed's\n")
    gb, report = tmp_path / "gradebook.csv", tmp_path / "report.json"
    r = run_batch(str(sub), "--csv", str(gb), "--json", str(report), "--jobs", "2", "--device", "cpu")
    assert "Traceback" not in r.stderr, r.stderr
    records = {s["student"]: s for s in json.loads(report.read_text())["students"]}
    relu_max = gradebook.max_scores("cpu")["ReLU"]
    assert records["alice"]["score"] == relu_max and records["alice"]["error"] is None
    assert records["zed"]["score"] == relu_max and records["zed"]["error"] is None  # b_relu.py, in a new worker


def test_identical_files_are_graded_once_and_each_student_keeps_his_path(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    sub = tmp_path / "class"
    for student in ("ann", "ben", "cid"):
        write(sub / student / "exercises" / "relu.py", STUB_RELU)
    write(sub / "dan" / "exercises" / "other_name.py", STUB_RELU)  # the same bytes under another name
    students = discover(sub)
    options, maxima, cache = GradingOptions(device="cpu"), gradebook.max_scores("cpu"), FileReportCache()
    with ThreadPoolExecutor(3) as pool:  # three at once: two of them wait for the one grading
        records = list(pool.map(lambda s: grade_student(s, sub, file_entries(s.files, sub), options, maxima, cache),
                                students))
    assert (cache.files_graded, cache.files_reused) == (2, 2)
    for student, record in zip(students, records):
        (ex,) = record["exercises"]
        assert ex["score"] == 0 and "not implemented" in ex["checks"][0]["message"]
        assert record["files"][0]["path"] == f"{student.name}/exercises/{student.files[0].name}"
    assert records[0]["exercises"] == records[1]["exercises"] == records[2]["exercises"]
