"""`python -m grader batch`: a class graded into one gradebook, the submission layouts instructors
download, resuming, and the maximum every student is graded out of."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat

from grader.commands import batch
from grader.grading.discovery import discover, nothing_to_grade
from grader.grading.progress import Progress
from grader.report import gradebook
from grader.report.model import ExerciseResult, SubmissionResult
from grader.core.results import CheckResult
from grader.spec.assignment import assignment
from grader.catalog import ACTIVATIONS, CHAPTERS
from grader.spec.mlx_catalog import PORTS
from grader.checks.torch_checks import checks_for

from conftest import (
    MLX_KEYS, RELU, SLOW, STUB_RELU, full_marks, kill_while_grading, run_batch, slow_relu, write)

ROOT = Path(__file__).resolve().parent.parent
WRONG_RELU = RELU.replace("torch.where(input <= 0, 0, input)", "torch.where(input > 0, input, 0)")  # nan -> 0


def test_class_end_to_end_and_resume(tmp_path: Path, capsys) -> None:
    sub = tmp_path / "submitted"  # nbgrader's submitted/<student>/<assignment>/ for most of them
    write(sub / "alice" / "hw1" / "relu.py", RELU)
    write(sub / "alice" / "hw1" / "drafts" / "old.py", WRONG_RELU)  # ReLU twice: the better one counts
    write(sub / "alice" / "hw1" / ".ipynb_checkpoints" / "relu-checkpoint.py", "")  # never graded
    write(sub / "alice" / "hw1" / "notes.txt", "not a submission")
    write(sub / "bob" / "hw1" / "relu.py", WRONG_RELU)  # partial: fails the nan edge case
    write(sub / "carol.py", STUB_RELU)  # a loose file: the student is its stem
    write(sub / "dave" / "hw1" / "01_standard.ipynb", '{"cells": [')  # corrupt JSON
    (sub / "erin").mkdir()  # empty folder
    write(sub / "mallory" / "relu.py", "import os\nos._exit(3)\n" + RELU)  # kills its worker while loading
    gb, report = tmp_path / "out" / "gradebook.csv", tmp_path / "out" / "report.json"

    r = run_batch(str(sub), "--csv", str(gb), "--json", str(report), "--jobs", "2")
    assert r.returncode == 1, r.stdout + r.stderr  # some students have an error line
    assert "Traceback" not in r.stderr
    assert "6 students: 6 to grade, 0 unchanged" in r.stderr
    assert len([l for l in r.stderr.splitlines() if l.startswith("[")]) == 6  # one line per student off a TTY

    rows = list(csv.reader(gb.open()))
    # one column per exercise: the torch chapters', then the MLX chapter's apart
    assert rows[0] == ["student", *full_marks(), "total", "max", "error"]
    assert all(len(row) == len(rows[0]) for row in rows)
    body = {row[0]: dict(zip(rows[0], row)) for row in rows[1:]}
    assert [row[0] for row in rows[1:]] == ["alice", "bob", "carol", "dave", "erin", "mallory"]
    total = {s: int(v["total"]) for s, v in body.items()}
    relu_max = int(body["alice"]["ReLU"])
    assert total["alice"] == relu_max > total["bob"] > total["carol"] == 0
    assert total["dave"] == total["erin"] == total["mallory"] == 0
    assert len({v["max"] for v in body.values()}) == 1  # everyone is graded out of the same maximum
    assert all(v["Sigmoid"] == "0" for v in body.values())  # submitted by no one, still a column
    assert body["alice"]["error"] == body["bob"]["error"] == body["carol"]["error"] == ""
    assert body["dave"]["error"] == "dave/hw1/01_standard.ipynb: not a notebook (invalid JSON at line 1)"
    assert body["erin"]["error"] == "no .ipynb or .py file in erin/"
    assert body["mallory"]["error"] == ("mallory/relu.py: the submission exited with status 3 while its cells "
                                        "were running")

    data = json.loads(report.read_text())
    assert set(data) == {"grader_version", "torch_version", "python_version", "device", "cuda_available",
                         "assignment", "max_scores", "students"}
    assert data["assignment"] == [f"{i:02d}_{c}" for i, c in enumerate(CHAPTERS, 1)] + ["10_mlx", "11_quantized"]
    assert list(data["max_scores"]) == rows[0][1:-3]
    assert int(body["alice"]["max"]) == sum(data["max_scores"].values())
    alice = next(s for s in data["students"] if s["student"] == "alice")
    assert [f["path"] for f in alice["files"]] == ["alice/hw1/drafts/old.py", "alice/hw1/relu.py"]
    (relu,) = alice["exercises"]
    # the maximum comes from the catalogue; the grader's own report of a real grading must agree
    assert relu["max_score"] == data["max_scores"]["ReLU"] == relu["score"]
    assert (relu["name"], relu["activation"], relu["chapter"]) == ("ReLU", "ReLU", "01_standard")
    assert set(relu["checks"][0]) == {"name", "passed", "status", "message", "notes"}
    assert any("ReLU is defined in alice/hw1/drafts/old.py" in n and "the better score counts, from "
               "alice/hw1/relu.py" in n for n in alice["notes"])
    carol = next(s for s in data["students"] if s["student"] == "carol")
    assert carol["files"][0]["path"] == "carol.py" and carol["error"] is None
    assert "not implemented" in carol["exercises"][0]["checks"][0]["message"]

    # a re-run grades no one; after a late change to one file, only that student
    assert batch.main([str(sub), "--csv", str(gb), "--json", str(report), "--jobs", "2"]) == 1
    assert "6 students: 0 to grade, 6 unchanged" in capsys.readouterr().err
    assert list(csv.reader(gb.open())) == rows
    write(sub / "bob" / "hw1" / "relu.py", RELU)
    late = run_batch(str(sub), "--csv", str(gb), "--json", str(report), "--jobs", "2")
    assert "6 students: 1 to grade, 5 unchanged" in late.stderr, late.stderr
    assert "[1/1] bob: " in late.stderr
    assert {row[0]: row[-3] for row in csv.reader(gb.open())}["bob"] == str(relu_max)
    # --force regrades even what is unchanged (here an empty folder: nothing to run)
    solo, solo_report = tmp_path / "solo", tmp_path / "solo.json"
    (solo / "erin").mkdir(parents=True)
    for extra, expected in [((), "1 student: 1 to grade, 0 unchanged"), ((), "1 student: 0 to grade, 1 unchanged"),
                            (("--force",), "1 student: 1 to grade, 0 unchanged")]:
        batch.main([str(solo), "--csv", str(gb), "--json", str(solo_report), *extra])
        assert expected in capsys.readouterr().err


def test_bad_arguments_are_one_line_errors(tmp_path: Path, capsys) -> None:
    for args, expected in [((str(tmp_path / "missing"), "--csv", "g.csv"), "not a folder of submissions"),
                           ((str(tmp_path), "--csv", "g.csv"), "no student"),
                           ((str(tmp_path), "--csv", "g.csv", "--jobs", "0"), "--jobs must be at least 1")]:
        assert batch.main(list(args)) == 2
        err = capsys.readouterr().err
        assert expected in err and len(err.strip().splitlines()) == 1, err


def test_a_submission_named_like_a_command_is_still_graded(tmp_path: Path) -> None:
    """`python -m grader batch.ipynb` is a submission, not the batch command."""
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "batch.ipynb")
    r = subprocess.run([sys.executable, "-m", "grader", "batch.ipynb", "--device", "cpu"], capture_output=True,
                       text=True, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=600)
    assert r.returncode == 1 and "batch.ipynb" in r.stdout and "no activation defined" in r.stdout, r.stdout


# --- layouts: who the students are and which files are theirs (no grading needed) ---------------

def names_and_files(root: Path, **kw) -> dict[str, list[str]]:
    return {s.name: [p.relative_to(root).as_posix() for p in s.files] for s in discover(root, **kw)}


def test_github_classroom_assistant_layout(tmp_path: Path) -> None:
    for user in ("alice", "bob-smith"):
        repo = tmp_path / f"activations-{user}"
        write(repo / "exercises" / "01_standard.ipynb", "{}")
        write(repo / "exercises" / "02_relu_variants.ipynb", "{}")
        write(repo / "README.md", "")
        write(repo / ".github" / "workflows" / "grade.yml", "")
        write(repo / ".git" / "hooks" / "pre-commit.py", "")  # hidden: never graded
        write(repo / "exercises" / ".ipynb_checkpoints" / "01_standard-checkpoint.ipynb", "{}")
    expected = ["exercises/01_standard.ipynb", "exercises/02_relu_variants.ipynb"]
    assert names_and_files(tmp_path) == {
        "activations-alice": [f"activations-alice/{e}" for e in expected],
        "activations-bob-smith": [f"activations-bob-smith/{e}" for e in expected]}
    assert list(names_and_files(tmp_path, strip_prefix="activations-")) == ["alice", "bob-smith"]


def test_gradescope_export_layout_names_students_from_the_metadata(tmp_path: Path) -> None:
    # the shape of Gradescope's "Export Submissions": submission_<id>/ and submission_metadata.yml
    write(tmp_path / "submission_metadata.yml", """\
submission_101:
  :submitters:
  - :name: Solo Student
    :sid: '100'
    :email: solo@example.edu
  :created_at: 2026-11-30 10:00:00.000000000 -08:00
  :score: 0.0
submission_102:
  :submitters:
  - :name: Pair One
    :sid: '200'
    :email: one@example.edu
  - :name: Pair Two
    :sid: '201'
    :email: two@example.edu
""")
    write(tmp_path / "submission_101" / "01_standard.ipynb", "{}")
    write(tmp_path / "submission_102" / "relu.py", "")
    write(tmp_path / "submission_103" / "relu.py", "")  # not in the metadata: named by its folder
    write(tmp_path / "__MACOSX" / "submission_101" / "._01_standard.ipynb", "")
    assert names_and_files(tmp_path) == {
        "Pair One <one@example.edu>; Pair Two <two@example.edu>": ["submission_102/relu.py"],
        "Solo Student <solo@example.edu>": ["submission_101/01_standard.ipynb"],
        "submission_103": ["submission_103/relu.py"]}


def test_loose_files_symlinks_and_environments(tmp_path: Path) -> None:
    write(tmp_path / "zoe.ipynb", "{}")
    write(tmp_path / "zoe" / "extra.py", "")  # a folder and a loose file of one name: one student
    write(tmp_path / "yann.py", "")
    write(tmp_path / "readme.md", "")
    write(tmp_path / ".hidden.py", "")
    outside = write(tmp_path.parent / f"{tmp_path.name}-solutions" / "01_standard.ipynb", "{}")
    (tmp_path / "xavier").mkdir()
    # a link in a cloned repository could point at the instructor's solutions: never followed
    (tmp_path / "xavier" / "01_standard.ipynb").symlink_to(outside)
    (tmp_path / "xavier" / "linked").symlink_to(outside.parent, target_is_directory=True)
    write(tmp_path / "wendy" / "venv" / "pyvenv.cfg", "")
    write(tmp_path / "wendy" / "venv" / "lib" / "site.py", "")
    write(tmp_path / "wendy" / "relu.py", "")
    students = {s.name: s for s in discover(tmp_path)}
    assert {n: [p.relative_to(tmp_path).as_posix() for p in s.files] for n, s in students.items()} == {
        "wendy": ["wendy/relu.py"], "xavier": [], "yann": ["yann.py"], "zoe": ["zoe.ipynb", "zoe/extra.py"]}
    assert nothing_to_grade(students["xavier"]) == ("no .ipynb or .py file in xavier/ (symbolic links are not "
                                                  "graded: xavier/01_standard.ipynb, xavier/linked)")


def test_maximum_is_the_catalogue_checks_that_run_here() -> None:
    # one column per exercise: the torch chapters' activations, then the MLX chapter's and the 8-bit
    # chapter's apart; CUDA checks without CUDA are skipped, and count in no one's maximum
    cpu = full_marks(("cpu",))
    assert gradebook.max_scores("cpu") == cpu
    assert gradebook.max_scores("all") == full_marks(("cpu", "cuda"))
    first = assignment(["01_standard"])
    assert gradebook.max_scores("cpu", first) == {a.name: cpu[a.name] for a in ACTIVATIONS if a.chapter == "standard"}
    assert gradebook.max_scores("cpu", assignment(["10_mlx"])) == {k: cpu[k] for k in MLX_KEYS}


def test_merging_files_keeps_the_better_exercise_and_one_line_errors() -> None:
    maxima = {a.name: 10 for a in ACTIVATIONS}
    def ex(name: str, score: int) -> ExerciseResult:  # ten checks, ``score`` of them passed
        return ExerciseResult(name, [CheckResult(name, f"c{i}", "cpu", "passed" if i < score else "failed")
                                     for i in range(10)])

    subs = [SubmissionResult("a/x.py", notes=["cell 2: NameError"], exercises=[ex("ReLU", 4), ex("GELU", 10)]),
            SubmissionResult("a/y.py", exercises=[ex("ReLU", 9)]),
            SubmissionResult("a/z.ipynb", error="/tmp/abs/a/z.ipynb: not a notebook (invalid JSON at line 3)\nmore")]
    record = gradebook.student_record("a", [], subs, maxima)
    assert [(e["name"], e["score"]) for e in record["exercises"]] == [("ReLU", 9), ("GELU", 10)]
    assert record["score"] == 19 and record["max_score"] == 10 * len(ACTIVATIONS)
    assert record["error"] == "a/z.ipynb: not a notebook (invalid JSON at line 3)"
    assert "a/x.py: cell 2: NameError" in record["notes"]
    nothing = gradebook.student_record("b", [], [SubmissionResult("b/e.py")], maxima)
    assert nothing["error"].startswith("graded 0 activations")
    # a file name chosen by a student must not become a spreadsheet formula
    evil = gradebook.student_record("=HYPERLINK(\"x\")", [], [], maxima, "-1+1 cannot be graded")
    row = gradebook.csv_rows([evil], maxima)[1]
    assert row[0] == "'=HYPERLINK(\"x\")" and row[-1] == "'-1+1 cannot be graded"


def test_progress_bar_on_a_terminal_plain_lines_elsewhere(monkeypatch) -> None:
    import io

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    record = {"student": "alice", "score": 3, "max_score": 9, "error": None}
    for stream, expected in [(Terminal(), "2/2"), (io.StringIO(), "[2/2] alice: 3/9\n")]:
        monkeypatch.setattr(sys, "stderr", stream)
        progress = Progress(2)
        progress.update(record)
        progress.update(record)
        progress.close()
        assert expected in stream.getvalue()
        assert ("[1/2]" in stream.getvalue()) == (not isinstance(stream, Terminal))  # a bar, not lines


def test_killed_batch_leaves_provisional_gradebooks_and_the_next_run_grades_those_students(tmp_path: Path) -> None:
    sub = tmp_path / "submissions"
    write(sub / "alice" / "relu.py", slow_relu())
    gb, report = tmp_path / "gradebook.csv", tmp_path / "report.json"
    args = [str(sub), "--csv", str(gb), "--json", str(report), "--jobs", "1"]
    kill_while_grading([sys.executable, "-m", "grader", "batch", *args], cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT), **{SLOW: "1"}))
    unfinished = "grading did not finish: the batch was stopped before this student was graded"
    (row,) = csv.DictReader(gb.open())
    assert row["student"] == "alice" and row["total"] == "0" and row["ReLU"] == "0" and row["error"] == unfinished
    (alice,) = json.loads(report.read_text())["students"]
    assert alice["error"] == unfinished and alice["score"] == 0 and alice["files"][0]["path"] == "alice/relu.py"

    r = run_batch(*args)  # the same file, the same SHA-256 (now fast): a provisional record is never reused
    assert "1 student: 1 to grade, 0 unchanged" in r.stderr, r.stderr
    (row,) = csv.DictReader(gb.open())
    (alice,) = json.loads(report.read_text())["students"]
    (relu,) = alice["exercises"]
    assert row["error"] == "" and alice["error"] is None
    assert row["total"] == row["ReLU"] == str(relu["score"]) and relu["score"] == relu["max_score"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gradebook.csv", "report.json", "submissions"]
