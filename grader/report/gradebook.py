"""A class's gradebook: one record per student, written as CSV (a spreadsheet) and JSON (everything).

The columns are the same for every student: ``student``, one per exercise of the assignment in the
course's order (:mod:`grader.spec.assignment`: ``ReLU`` is the torch chapter's, ``MLX ReLU`` the MLX
chapter's; points earned, 0 when the student submitted nothing for it), ``total``, ``max`` and
``error`` (empty, or one line saying why some or all of the work could not be graded). The maximum
is the assignment's, not what a student happened to submit, so a missing exercise costs its points
instead of shrinking the denominator. A class fetched from its repositories (``batch --fetched``)
has two more columns before ``error``: each student's ``repository`` and the ``commit`` graded.

A student's work may be several files (a student's folder): each file is a submission of
:mod:`grader.report.model`'s JSON shape; the exercises of all of them are merged, and an exercise
defined in two files counts once, with the better score (a note says so).
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from grader.spec.assignment import WHOLE_COURSE, Assignment
from grader.spec.catalog import BY_NAME
from grader.spec.frameworks import MLX, framework
from grader.spec.mlx_catalog import available as mlx_available
from grader.checks.registry import checks_for
from grader.core.results import DEVICES
from grader.report.model import ExerciseResult, SubmissionResult, environment, write_json
from grader.core.files import write_atomic

NOTHING_DEFINED = ("graded 0 activations: no activation defined (expected the exercises' names, "
                   "e.g. relu, ReLU, ReLUFunction)")
NOTHING_OF_THE_ASSIGNMENT = "graded 0 exercises"


def nothing_graded(error: str) -> bool:
    """An error that says the files were read and held nothing to grade: unfinished, not broken."""
    return error == NOTHING_DEFINED or error.startswith(NOTHING_OF_THE_ASSIGNMENT + ":")


FETCHED = ("repository", "commit")  # what a record of a fetched class adds


def columns(maxima: dict[str, int], fetched: bool = False) -> list[str]:
    """The CSV's header: ``student``, the assignment's exercises, ``total``, ``max``, (``repository``,
    ``commit``,) ``error``."""
    return ["student", *maxima, "total", "max", *(FETCHED if fetched else ()), "error"]


def max_scores(device: str, assignment: Assignment = WHOLE_COURSE, mlx: bool | None = None) -> dict[str, int]:
    """Points of a full-marks submission per exercise of the assignment, in the course's order: one
    per check that runs on this machine. Without CUDA the CUDA checks are skipped and count in no
    one's maximum, as in a report; so do the MLX checks without MLX. ``mlx``: whether MLX runs where
    the grading will (a bundle built here for another machine), instead of here."""
    cuda, mlx = torch.cuda.is_available(), mlx_available() if mlx is None else mlx
    return {e.key: 0 if framework(e.framework) is MLX and not mlx else
            sum(1 for _, dev in checks_for(BY_NAME[e.activation], DEVICES[device], e.framework) if dev != "cuda" or cuda)
            for e in assignment.exercises}


@dataclass
class Merged:
    """The exercises of several files of one student: the best of each activation and the file it
    came from, with the files' notes and one-line errors."""
    order: list[str]  # the assignment's exercises
    best: dict[str, tuple[ExerciseResult, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    graded_files: int = 0
    other_chapters: set[str] = field(default_factory=set)  # what the files hold outside the assignment

    def exercises(self) -> list[ExerciseResult]:
        return [self.best[key][0] for key in self.order if key in self.best]


def merge(submissions: list[SubmissionResult], maxima: dict[str, int]) -> Merged:
    """``submissions``: the graded files of one student."""
    m = Merged(list(maxima))
    for sub in submissions:
        path = sub.path
        if sub.error:
            m.errors.append(_file_error(sub.error, path))
            continue
        m.graded_files += 1
        m.other_chapters.update(sub.other_chapters)
        m.notes.extend(f"{path}: {n}" for n in sub.notes)
        for ex in sub.exercises:
            name = ex.name
            if name not in maxima:
                continue
            if ex.max_score != maxima[name]:
                m.notes.append(f"{path}: {name} was graded out of {ex.max_score}, the gradebook's maximum "
                               f"is {maxima[name]}")
            if name not in m.best:
                m.best[name] = (ex, path)
                continue
            kept, kept_path = m.best[name]
            if ex.score > kept.score:
                m.best[name] = (ex, path)
            m.notes.append(f"{name} is defined in {kept_path} ({kept.score} points) and in {path} "
                           f"({ex.score} points): the better score counts, from {m.best[name][1]}")
    if m.graded_files and not m.best:
        m.errors.append(f"{NOTHING_OF_THE_ASSIGNMENT}: the files hold exercises of {', '.join(sorted(m.other_chapters))}"
                        " only, not of this assignment" if m.other_chapters else NOTHING_DEFINED)
    return m


def score(exercise: ExerciseResult, maxima: dict[str, int]) -> int:
    """An exercise's points in the gradebook: never more than the assignment's maximum."""
    return min(exercise.score, maxima[exercise.name])


def student_record(student: str, files: list[dict], submissions: list[SubmissionResult], maxima: dict[str, int],
                   problem: str = "") -> dict:
    """One student's record in the batch report (its JSON). ``files``: ``{"path", "sha256"}``
    relative to the submissions folder; ``submissions``: their graded files, paths relative the same
    way; ``problem``: why there was nothing to grade (an empty folder), found before grading."""
    m = merge(submissions, maxima)
    exercises = m.exercises()
    errors = ([problem] if problem else []) + m.errors
    return {
        "student": student,
        "files": files,
        "score": sum(score(e, maxima) for e in exercises),
        "max_score": sum(maxima.values()),
        "error": "; ".join(errors) or None,
        "notes": m.notes,
        "exercises": [e.to_json() for e in exercises],
    }


def _file_error(error: str, path: str) -> str:
    """The grader's error for one file, naming the file by its path in the submissions folder."""
    first = error.strip().splitlines()[0] if error.strip() else "cannot be graded"
    head, sep, rest = first.partition(": ")
    if sep and (head == path or head.endswith(os.sep + path) or head.endswith("/" + path)):
        first = rest
    return f"{path}: {first}"


def sort_key(record: dict) -> tuple[str, str]:
    return record["student"].casefold(), record["student"]


def batch_json(records: list[dict], device: str, maxima: dict[str, int],
               assignment: Assignment = WHOLE_COURSE) -> dict:
    return {
        **environment(device),
        "assignment": assignment.as_list(),
        "max_scores": dict(maxima),
        "students": sorted(records, key=sort_key),
    }


def csv_cell(value: str) -> str:
    """A text cell that a spreadsheet will not run: names and errors quote files the students named,
    and a cell starting with = + - @ would be a formula (OWASP's CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def csv_rows(records: list[dict], maxima: dict[str, int]) -> list[list[str | int]]:
    fetched = any("repository" in r for r in records)
    rows: list[list[str | int]] = [columns(maxima, fetched)]
    for r in sorted(records, key=sort_key):
        scores = {e["name"]: min(e["score"], maxima[e["name"]]) for e in r["exercises"]}
        where = [csv_cell(r.get(key) or "") for key in FETCHED] if fetched else []
        rows.append([csv_cell(r["student"]), *(scores.get(key, 0) for key in maxima), r["score"],
                     r["max_score"], *where, csv_cell(r["error"] or "")])
    return rows


def write_csv(records: list[dict], maxima: dict[str, int], path: str | Path) -> None:
    """Write atomically, like the JSON report."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(csv_rows(records, maxima))
    write_atomic(path, buffer.getvalue())


def write_batch_json(records: list[dict], device: str, maxima: dict[str, int], path: str | Path,
                     assignment: Assignment = WHOLE_COURSE) -> None:
    write_json(batch_json(records, device, maxima, assignment), path)
