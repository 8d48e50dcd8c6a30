"""Assignments (``--chapter``) and a gradebook per exercise: the MLX chapter's exercises have columns
of their own, and a class given some chapters is graded on them alone, out of their maximum."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader.catalog import ACTIVATIONS, CHAPTERS
from grader.spec.assignment import CHAPTER_STEMS, AssignmentError, assignment, parse_chapter
from grader.spec.mlx_catalog import available

from conftest import EIGHT_BIT_KEYS, MLX_KEYS

ROOT = Path(__file__).resolve().parent.parent
TORCH_KEYS = [a.name for a in ACTIVATIONS]
CHAPTER_1 = [a.name for a in ACTIVATIONS if a.chapter == "standard"]


def grader(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=900)


def test_chapters_are_the_exercise_notebooks() -> None:
    assert list(CHAPTER_STEMS) == sorted(p.stem for p in (ROOT / "exercises").glob("*.ipynb"))
    assert [c[3:] for c in CHAPTER_STEMS[:-2]] == list(CHAPTERS) and CHAPTER_STEMS[-2:] == ("10_mlx", "11_quantized")
    # what an instructor may type: the stem, the notebook's name or its path; repeats are one chapter
    assert parse_chapter("exercises/02_relu_variants.ipynb") == parse_chapter("02_relu_variants.ipynb") == "02_relu_variants"
    chosen = assignment(["10_mlx", "01_standard", "10_mlx"])
    assert chosen.chapters == ("01_standard", "10_mlx") and not chosen.whole
    assert chosen.keys == (*CHAPTER_1, *MLX_KEYS)
    assert assignment([]).whole and assignment(None).keys == (*TORCH_KEYS, *MLX_KEYS, *EIGHT_BIT_KEYS)
    for wrong in ("3", "relu_variants", "11_quantum", ""):
        with pytest.raises(AssignmentError, match="the chapters are 01_standard, "):
            assignment([wrong])


@pytest.mark.parametrize("command", [[], ["batch", "--csv", "gb.csv"], ["gradescope"], ["classroom"],
                                     ["classroom50", "--classroom", "fall26", "--assignment", "hw-1"],
                                     ["grading-workflow", "--shards", "2", "--"]])
def test_an_unknown_chapter_is_one_line(tmp_path: Path, command: list[str], cli) -> None:
    target = {"": ["x.py"], "batch": [str(tmp_path)], "gradescope": [str(tmp_path / "gs")],
              "classroom": [str(tmp_path / "cr")], "classroom50": [str(tmp_path / "c50")],
              "grading-workflow": [str(tmp_path / "gw")]}[command[0] if command else ""]
    (tmp_path / "x.py").write_text("")
    r = cli(*command[:1], *target, *command[1:], "--chapter", "02_relu", cwd=tmp_path)  # in this process
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: --chapter '02_relu': not a chapter of the course; the chapters are " + ", ".join(CHAPTER_STEMS)]


@pytest.fixture(scope="module")
def klass(tmp_path_factory) -> Path:
    """ana: chapter 1 solved, chapter 2 untouched; mo: the MLX chapter solved and nothing else."""
    root = tmp_path_factory.mktemp("class")
    (root / "ana").mkdir()
    shutil.copyfile(ROOT / "solutions" / "01_standard.ipynb", root / "ana" / "01_standard.ipynb")
    shutil.copyfile(ROOT / "exercises" / "02_relu_variants.ipynb", root / "ana" / "02_relu_variants.ipynb")
    (root / "mo").mkdir()
    shutil.copyfile(ROOT / "solutions" / "10_mlx.ipynb", root / "mo" / "10_mlx.ipynb")
    return root


def gradebook(path: Path) -> dict[str, dict[str, str]]:
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    return {r["student"]: r for r in rows}


@pytest.mark.skipif(not available(), reason="MLX is not installed here: its exercises score 0 of 0")
def test_mlx_exercises_have_columns_of_their_own(klass: Path, tmp_path: Path) -> None:
    r = grader("batch", str(klass), "--csv", str(tmp_path / "gb.csv"), "--json", str(tmp_path / "r.json"))
    assert r.returncode in (0, 1), r.stderr
    header = next(csv.reader((tmp_path / "gb.csv").open()))
    assert header == ["student", *TORCH_KEYS, *MLX_KEYS, *EIGHT_BIT_KEYS, "total", "max", "error"]
    book = gradebook(tmp_path / "gb.csv")
    data = json.loads((tmp_path / "r.json").read_text())
    maxima = data["max_scores"]
    mo = book["mo"]
    # the student who did only the MLX notebook: 0 in every torch column, full marks in the MLX ones
    assert all(mo[k] == "0" for k in TORCH_KEYS), {k: mo[k] for k in TORCH_KEYS if mo[k] != "0"}
    assert {k: int(mo[k]) for k in MLX_KEYS} == {k: maxima[k] for k in MLX_KEYS}
    assert all(maxima[k] > 0 for k in MLX_KEYS)
    assert int(mo["total"]) == sum(maxima[k] for k in MLX_KEYS) and mo["error"] == ""
    ana = book["ana"]
    assert all(ana[k] == "0" for k in MLX_KEYS)
    assert {k: int(ana[k]) for k in CHAPTER_1} == {k: maxima[k] for k in CHAPTER_1}
    assert int(ana["max"]) == int(mo["max"]) == sum(maxima.values())
    # the same keys in the JSON report
    (relu,) = [e for s in data["students"] if s["student"] == "mo" for e in s["exercises"] if e["activation"] == "ReLU"]
    assert (relu["name"], relu["chapter"]) == ("MLX ReLU", "10_mlx")

    # and in the class report: an MLX row of the MLX chapter, no torch ReLU row (no one attempted it)
    page, items = tmp_path / "class.html", tmp_path / "items.csv"
    r = grader("class-report", str(tmp_path / "r.json"), "--html", str(page), "--csv", str(items))
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(items.open(encoding="utf-8")))
    by_exercise = {(row["exercise"], row["check"]): row for row in rows}
    mlx_relu = [row for (e, _), row in by_exercise.items() if e == "MLX ReLU"]
    assert mlx_relu and {row["chapter"] for row in mlx_relu} == {"10. MLX"}
    assert all(row["passed"] == "1" for row in mlx_relu)
    assert {row["chapter"] for row in rows if row["exercise"] == "ReLU"} == {"1. Standard activations"}


def test_a_chapter_assignment_grades_that_chapter_alone(klass: Path, tmp_path: Path) -> None:
    gb, report = tmp_path / "gb.csv", tmp_path / "r.json"
    r = grader("batch", str(klass), "--chapter", "01_standard", "--csv", str(gb), "--json", str(report))
    assert r.returncode == 1, r.stderr  # mo has an error line: nothing of this assignment
    assert "(chapter 01_standard; jobs:" in r.stderr
    header = next(csv.reader(gb.open()))
    assert header == ["student", *CHAPTER_1, "total", "max", "error"]
    data = json.loads(report.read_text())
    assert data["assignment"] == ["01_standard"] and list(data["max_scores"]) == CHAPTER_1
    book = gradebook(gb)
    ana, mo = book["ana"], book["mo"]
    # full marks for a complete chapter 1, out of that chapter's maximum
    assert int(ana["total"]) == int(ana["max"]) == sum(data["max_scores"].values()) > 0
    assert ana["error"] == ""
    assert int(mo["total"]) == 0 and int(mo["max"]) == int(ana["max"])
    assert mo["error"] == "graded 0 exercises: the files hold exercises of 10_mlx only, not of this assignment"
    # the file of another chapter is ignored, with a note saying so
    notes = {s["student"]: s["notes"] for s in data["students"]}
    assert any(n.startswith("ana/02_relu_variants.ipynb: not graded: ") and
               n.endswith(" of 02_relu_variants, outside this assignment (chapter 01_standard)")
               for n in notes["ana"]), notes["ana"]
    assert any(n.startswith("mo/10_mlx.ipynb: not graded: MLX ReLU, ") for n in notes["mo"]), notes["mo"]
    # the ignored file's exercises are in no column, and none of its checks ran
    ana_record = next(s for s in data["students"] if s["student"] == "ana")
    assert [e["name"] for e in ana_record["exercises"]] == CHAPTER_1

    # a re-run with another assignment reuses nothing: the maximum changed
    again = grader("batch", str(klass), "--chapter", "02_relu_variants", "--csv", str(gb), "--json", str(report))
    assert "2 to grade, 0 unchanged" in again.stderr
    book = gradebook(gb)
    assert int(book["ana"]["total"]) == 0 and book["ana"]["error"] == ""  # the untouched stubs: 0, no error


def test_the_single_file_report_records_its_assignment(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    r = grader(str(ROOT / "solutions" / "01_standard.ipynb"), "--chapter", "02_relu_variants", "--json", str(report))
    assert r.returncode == 1, r.stdout + r.stderr  # nothing graded is not full marks
    assert "nothing graded: the file holds exercises of 01_standard only" in r.stdout
    data = json.loads(report.read_text())
    assert data["assignment"] == ["02_relu_variants"]
    (sub,) = data["submissions"]
    assert sub["exercises"] == [] and sub["other_chapters"] == ["01_standard"]
