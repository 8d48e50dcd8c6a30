"""The class's grades as Canvas's and Moodle's grade imports (`batch` and `merge` with `--canvas`,
`--moodle`, `--roster`), checked against what each LMS documents: Canvas's gradebook CSV (its
export's header, `Student, ID, SIS User ID, SIS Login ID, Section`, then one column per assignment,
its second row `Points Possible`), Moodle's "Import grades from CSV" (a user column it maps to
useridnumber, useremail or username, then a column per grade item). See grader/report/lms.py for
the sources."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from grader.commands import batch
from grader.report import lms

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = "01_standard"
ROSTER = ("GitHub,Student,ID,SIS User ID,SIS Login ID,Section,First name,Last name,Email address\n"
          "alice,\"Liddell, Alice\",101,S1,alice@uni.edu,A,Alice,Liddell,alice@uni.edu\n"
          "BOB,\"Builder, Bob\",102,S2,bob@uni.edu,A,Bob,Builder,bob@uni.edu\n"
          "carol,\"Danvers, Carol\",103,S3,carol@uni.edu,B,Carol,Danvers,carol@uni.edu\n")


def rows(path: Path) -> list[list[str]]:
    return list(csv.reader(path.open(encoding="utf-8")))


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    """A class of two, graded once with both imports: alice solved chapter 1, bob left it blank,
    zed is not in the roster; carol is in the roster but handed nothing in."""
    tmp = tmp_path_factory.mktemp("lms")
    cls = tmp / "class"
    for user, notebook in (("alice", "solutions"), ("bob", "exercises"), ("zed", "exercises")):
        (cls / user).mkdir(parents=True)
        shutil.copy(ROOT / notebook / f"{CHAPTER}.ipynb", cls / user / f"{CHAPTER}.ipynb")
    (tmp / "roster.csv").write_text(ROSTER)
    out = {"canvas": tmp / "canvas.csv", "moodle": tmp / "moodle.csv", "gradebook": tmp / "gradebook.csv"}
    code = batch.main([str(cls), "--csv", str(out["gradebook"]), "--chapter", CHAPTER, "--device", "cpu",
                       "--roster", str(tmp / "roster.csv"), "--canvas", str(out["canvas"]),
                       "--moodle", str(out["moodle"])])
    assert code == 0
    return out


def test_canvas_import_has_canvas_s_columns_a_points_row_and_a_row_per_student(graded: dict) -> None:
    book = {r["student"]: r for r in csv.DictReader(graded["gradebook"].open())}
    table = rows(graded["canvas"])
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", f"Activation functions ({CHAPTER})"]
    assert table[1] == ["Points Possible", "", "", "", "", book["alice"]["max"]]
    assert table[2:] == [["Liddell, Alice", "101", "S1", "alice@uni.edu", "A", book["alice"]["total"]],
                         ["Builder, Bob", "102", "S2", "bob@uni.edu", "A", "0"],  # GitHub names ignore case
                         ["Danvers, Carol", "103", "S3", "carol@uni.edu", "B", ""]]  # nothing handed in: untouched
    assert int(book["alice"]["total"]) == int(book["alice"]["max"]) > 0


def test_moodle_import_has_a_user_column_and_the_assignment_s(graded: dict) -> None:
    table = rows(graded["moodle"])
    assert table[0] == ["First name", "Last name", "Email address", f"Activation functions ({CHAPTER})"]
    assert [r[2] for r in table[1:]] == ["alice@uni.edu", "bob@uni.edu", "carol@uni.edu"]
    assert [r[3] for r in table[1:]] == [rows(graded["canvas"])[2][5], "0", ""]


def test_a_student_the_roster_lacks_is_named_and_left_out(tmp_path: Path, capsys) -> None:
    (tmp_path / "roster.csv").write_text(ROSTER)
    roster = lms.read_roster(tmp_path / "roster.csv")
    records = [{"student": "alice", "score": 3}, {"student": "zed", "score": 5}]
    table, missing = lms.canvas_rows(records, roster, "HW1 (77)", 9)
    assert missing == ["zed"] and [r[5] for r in table[2:]] == [3, "", ""] and table[0][5] == "HW1 (77)"


@pytest.mark.parametrize("roster, args, expected", [
    (None, ["--canvas", "c.csv"], "--canvas needs --roster FILE"),
    (ROSTER, ["--roster", "roster.csv"], "--roster is for --canvas and --moodle"),
    ("Student,ID\nAlice,1\n", ["--roster", "roster.csv", "--canvas", "c.csv"], "no GitHub column"),
    ("GitHub,Section\nalice,A\n", ["--roster", "roster.csv", "--canvas", "c.csv"],
     "none of the columns ID, SIS User ID, SIS Login ID that Canvas finds a student by"),
    ("GitHub,ID\nalice,1\n", ["--roster", "roster.csv", "--moodle", "m.csv"],
     "none of the columns ID number, Email address, Username that Moodle finds a student by"),
    ("GitHub,ID\nalice,1\nAlice,2\n", ["--roster", "roster.csv", "--canvas", "c.csv"], "line 3: GitHub user 'Alice'"),
    (ROSTER, ["--roster", "roster.csv", "--canvas", "c.csv", "--shard", "1/2"], "need the whole class")])
def test_wrong_lms_options_are_one_line_errors(tmp_path: Path, capsys, roster: str | None, args: list[str],
                                               expected: str) -> None:
    (tmp_path / "class").mkdir()
    if roster is not None:
        (tmp_path / "roster.csv").write_text(roster)
    args = [str(tmp_path / a) if a.endswith(".csv") else a for a in args]
    assert batch.main([str(tmp_path / "class"), "--csv", str(tmp_path / "g.csv"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "g.csv").exists() and not (tmp_path / "c.csv").exists()
