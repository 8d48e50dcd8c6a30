"""A class's grades as the grade-import CSV of Canvas and of Moodle: one assignment, one row per
student of an LMS roster, the assignment's points.

The gradebook names a student by their GitHub user name (a repository owner); an LMS knows them by
its own identifiers. The roster is a CSV whose header has a ``GitHub`` column and the LMS's columns,
named as the LMS's own export names them, so that an instructor can start from that export:

- **Canvas**: ``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section``. Its gradebook
  import reads these columns, then one column per assignment (an existing assignment as the export
  heads it, ``Title (ID)``; any other name is a new assignment), and its export's second row
  ``Points Possible`` (Course#gradebook_to_csv in instructure/canvas-lms, app/models/course.rb;
  "How do I import grades in the Gradebook?", Canvas Instructor Guide,
  https://community.canvaslms.com/t5/Instructor-Guide/How-do-I-import-grades-in-the-Gradebook/ta-p/807).
  A student is matched by ``ID``, ``SIS User ID`` or ``SIS Login ID``: the roster needs one of them.
- **Moodle**: ``First name``, ``Last name``, ``ID number``, ``Email address`` (its grade export's
  user columns) and ``Username``. "Import grades from CSV" maps one column to the user (``Map
  from`` a column, ``Map to`` useridnumber, useremail or username; gradeimport_csv's load_data.php
  in moodle/moodle) and each other column to a grade item, new or existing
  (https://docs.moodle.org/en/Grade_import): the roster needs one of ``ID number``, ``Email
  address`` or ``Username``.

A roster student the gradebook does not hold gets an empty grade (both LMSs leave an empty cell
alone); a graded student the roster lacks is left out, and named, since neither LMS could place them.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from grader.core.files import write_atomic
from grader.report.gradebook import csv_cell

GITHUB = "github"
CANVAS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_KEYS = ("ID", "SIS User ID", "SIS Login ID")
MOODLE = ("First name", "Last name", "ID number", "Email address", "Username")
MOODLE_KEYS = ("ID number", "Email address", "Username")
POINTS_POSSIBLE = "Points Possible"


class RosterError(ValueError):
    """A roster that cannot serve, in one line."""


@dataclass
class Roster:
    path: Path
    columns: dict[str, str]  # a known column's name, as LMS exports write it -> its header in the file
    rows: list[dict[str, str]] = field(default_factory=list)  # header in the file -> value

    def has(self, column: str) -> bool:
        return column in self.columns

    def value(self, row: dict[str, str], column: str) -> str:
        return row.get(self.columns[column], "") if column in self.columns else ""


def read_roster(path: Path) -> Roster:
    """The roster's rows; :class:`RosterError` when it has no ``GitHub`` column or names a GitHub
    user twice (the same repository owner cannot be two students of the LMS)."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # spreadsheets save a byte-order mark
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError(f"{path}: cannot read it ({type(exc).__name__})") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    known = {name.casefold(): name for name in (*CANVAS, *MOODLE)}
    columns = {known[h.casefold()]: raw for h, raw in zip(header, reader.fieldnames or []) if h.casefold() in known}
    github = next((raw for h, raw in zip(header, reader.fieldnames or []) if h.casefold() == GITHUB), None)
    if github is None:
        raise RosterError(f"{path}: no GitHub column (the students' GitHub user names, as the gradebook names them)")
    roster = Roster(path, {**columns, GITHUB: github})
    seen: dict[str, int] = {}
    for number, row in enumerate(reader, 2):
        user = (row.get(github) or "").strip()
        if not user:
            continue
        if user.casefold() in seen:
            raise RosterError(f"{path} line {number}: GitHub user {user!r} is on line {seen[user.casefold()]} already")
        seen[user.casefold()] = number
        roster.rows.append(row)
    return roster


def usable(roster: Roster, lms: str) -> str | None:
    """Why ``roster`` cannot place students in ``lms`` ("canvas" or "moodle"), or None."""
    keys = CANVAS_KEYS if lms == "canvas" else MOODLE_KEYS
    if not any(roster.has(k) for k in keys):
        return (f"{roster.path} has none of the columns {', '.join(keys)} that {lms.capitalize()} "
                "finds a student by")
    return None


def default_column(chapters: list[str], whole: bool) -> str:
    return "Activation functions" + ("" if whole else f" ({', '.join(chapters)})")


def _grades(records: list[dict], roster: Roster) -> tuple[list[tuple[dict, int | None]], list[str]]:
    """Each roster row with its student's points (None: not in the gradebook), and the graded
    students the roster does not name."""
    by_user = {r["student"].casefold(): r for r in records}
    rows = [(row, by_user[u]["score"] if (u := roster.value(row, GITHUB).strip().casefold()) in by_user else None)
            for row in roster.rows]
    named = {roster.value(row, GITHUB).strip().casefold() for row in roster.rows}
    return rows, sorted(r["student"] for r in records if r["student"].casefold() not in named)


def canvas_rows(records: list[dict], roster: Roster, column: str, max_score: int) -> tuple[list[list], list[str]]:
    """Canvas's gradebook CSV: its five student columns, the assignment's, then a Points Possible row."""
    grades, missing = _grades(records, roster)
    rows: list[list] = [[*CANVAS, column], [POINTS_POSSIBLE, *[""] * (len(CANVAS) - 1), max_score]]
    rows += [[csv_cell(roster.value(row, c)) for c in CANVAS] + ["" if points is None else points]
             for row, points in grades]
    return rows, missing


def moodle_rows(records: list[dict], roster: Roster, column: str) -> tuple[list[list], list[str]]:
    """Moodle's grade import CSV: the user columns the roster has, then the assignment's."""
    grades, missing = _grades(records, roster)
    user = [c for c in MOODLE if roster.has(c)]
    rows: list[list] = [[*user, column]]
    rows += [[csv_cell(roster.value(row, c)) for c in user] + ["" if points is None else points]
             for row, points in grades]
    return rows, missing


def write_rows(rows: list[list], path: str | Path) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    write_atomic(path, buffer.getvalue(), shared=True)
