"""Resuming a batch from its last report (``batch --json``): the students whose files (SHA-256) are
unchanged since it was written by the same grader, torch, device and assignment keep their records,
the others are graded; a student not graded yet has a provisional record meanwhile."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from grader import __version__
from grader.grading.discovery import Student
from grader.grading.hashing import file_entries
from grader.report import gradebook
from grader.report.model import NOT_FINISHED
from grader.spec.assignment import WHOLE_COURSE, Assignment

# a student left to grade: who, their files' gradebook entries, and the repository they were
# fetched from (None: not fetched)
ToGrade = tuple[Student, list[dict], dict | None]


def previous_records(path: Path, device: str, maxima: dict[str, int],
                     assignment: Assignment = WHOLE_COURSE) -> dict[str, dict]:
    """The students of an earlier report that can be reused: same grader, torch, device and assignment."""
    import torch

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        print(f"warning: {path}: cannot reuse it ({exc}); grading everyone", file=sys.stderr)
        return {}
    same = (isinstance(data, dict) and data.get("grader_version") == __version__
            and data.get("torch_version") == torch.__version__ and data.get("device") == device
            and data.get("cuda_available") == torch.cuda.is_available() and data.get("max_scores") == maxima
            and data.get("assignment", list(WHOLE_COURSE.chapters)) == assignment.as_list())
    if not same:
        print(f"note: {path} was written by another grader, torch, device or assignment: grading everyone",
              file=sys.stderr)
        return {}
    return {r["student"]: r for r in data.get("students", []) if isinstance(r, dict) and "student" in r}


def reusable_record(old: dict | None, files: list[dict], fetched: dict | None = None) -> bool:
    # "grader error" is the batch's own failure (a killed process) and NOT_FINISHED a student the
    # batch never got to: worth another try, unlike a corrupt notebook, which stays corrupt until its
    # SHA-256 changes. A repository that could not be fetched is tried again on every run.
    fetched = fetched or {}
    return (old is not None and old.get("files") == files and not fetched.get("error")
            and all(old.get(key) == fetched.get(key) for key in gradebook.FETCHED)
            and not str(old.get("error") or "").startswith(("grader error", NOT_FINISHED)))


def not_finished(student: Student, files: list[dict], maxima: dict[str, int]) -> dict:
    """The provisional record of a student not graded yet: what the gradebook says if the batch is
    stopped before it gets there."""
    return gradebook.student_record(student.name, files, [], maxima,
                                    f"{NOT_FINISHED}: the batch was stopped before this student was graded")


def plan(students: list[Student], root: Path, previous: dict[str, dict],
         fetched: dict[str, dict] | None = None) -> tuple[dict[str, dict], list[ToGrade]]:
    """The records that can be kept from the last report (same files, same grader, same commit) and
    the students left to grade, each with its files' paths and hashes and where they were fetched
    from (``fetched``: a folder's record, :func:`grader.grading.fetch.read_record`)."""
    records: dict[str, dict] = {}
    todo: list[ToGrade] = []
    for s in students:
        files = file_entries(s.files, root)
        source = (fetched or {}).get(s.folder) if s.folder else None
        if reusable_record(previous.get(s.name), files, source):
            records[s.name] = previous[s.name]
        else:
            todo.append((s, files, source))
    return records, todo
