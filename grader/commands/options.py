"""The options every grading command shares (``--device``, ``--check-timeout``, ``--memory``,
``--chapter``, ``--hide``): declared and checked in one place, so ``python -m grader`` and ``batch`` cannot drift."""
from __future__ import annotations

import argparse
from pathlib import Path

from grader.core import limits
from grader.spec.assignment import CHAPTER_STEMS, Assignment, AssignmentError, assignment


def add(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="all",
                   help="where to run the checks (default: all; CUDA checks are skipped without CUDA)")
    p.add_argument("--check-timeout", type=float, default=limits.CHECK_TIMEOUT, metavar="SECONDS",
                   help=f"seconds one check or cell may take (default {limits.CHECK_TIMEOUT:g}); a function "
                        "that used them up fails every later check at once")
    p.add_argument("--memory", type=float, default=limits.MEMORY / 2**30, metavar="GIB",
                   help=f"address-space limit of the worker that runs a submission (default {limits.MEMORY / 2**30:g})")
    p.add_argument("--chapter", action="append", default=[], metavar="NAME",
                   help="grade this chapter's exercises only, out of its maximum (repeatable; NAME is the exercise "
                        f"notebook's stem: {CHAPTER_STEMS[0]} ... {CHAPTER_STEMS[-1]}); default: the whole course")
    p.add_argument("--hide", action="append", default=[], metavar="DIR",
                   help="a folder the submissions' code must not read (repeatable; the course's solutions/ "
                        "always is), where the system allows mount namespaces")


def problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the shared options, as one line, or None."""
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            return "--device cuda: CUDA is not available on this machine (use --device all or cpu)"
    for folder in args.hide:
        if not Path(folder).is_dir():
            return f"--hide {folder}: not a folder"
    try:
        assignment(args.chapter)
    except AssignmentError as exc:
        return str(exc)
    return None


def chosen(args: argparse.Namespace) -> Assignment:
    """The assignment of ``--chapter`` (checked by :func:`problem`)."""
    return assignment(args.chapter)


def memory_bytes(args: argparse.Namespace) -> int:
    return int(args.memory * 2**30)


def add_lms(p: argparse.ArgumentParser) -> None:
    """The options that also write the class's grades as an LMS's grade import (batch, merge)."""
    p.add_argument("--roster", type=Path, metavar="FILE",
                   help="a CSV with a GitHub column (the gradebook's student names) and the LMS's own columns "
                        "(Canvas: Student, ID, SIS User ID, SIS Login ID, Section; Moodle: First name, Last name, "
                        "ID number, Email address, Username): who is who in the LMS")
    p.add_argument("--canvas", metavar="FILE", help="also write Canvas's gradebook import CSV here (needs --roster)")
    p.add_argument("--moodle", metavar="FILE", help="also write Moodle's grade import CSV here (needs --roster)")
    p.add_argument("--lms-column", metavar="NAME",
                   help="the assignment's column in the LMS (Canvas: an existing assignment as its export heads it, "
                        "'Title (ID)'; another name makes a new one); default: 'Activation functions (CHAPTERS)'")


def lms_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the LMS options, as one line, or None (the roster is read here)."""
    from grader.report import lms

    wanted = [kind for kind in ("canvas", "moodle") if getattr(args, kind)]
    if not wanted:
        return "--roster is for --canvas and --moodle: give one of them too" if args.roster else None
    if args.roster is None:
        return f"--{wanted[0]} needs --roster FILE (the students' GitHub names and LMS identifiers)"
    try:
        args.lms_roster = lms.read_roster(args.roster)
    except lms.RosterError as exc:
        return f"--roster {exc}"
    for kind in wanted:
        why = lms.usable(args.lms_roster, kind)
        if why:
            return f"--roster {why}"
    return None


def write_lms(args: argparse.Namespace, records: list[dict], max_score: int, assignment: Assignment) -> list[str]:
    """Write the LMS imports asked for; returns what to tell the instructor (one line each)."""
    from grader.report import lms

    column = args.lms_column or lms.default_column(assignment.as_list(), assignment.whole)
    said = []
    for kind in ("canvas", "moodle"):
        path = getattr(args, kind)
        if not path:
            continue
        rows, missing = (lms.canvas_rows(records, args.lms_roster, column, max_score) if kind == "canvas"
                         else lms.moodle_rows(records, args.lms_roster, column))
        lms.write_rows(rows, path)
        said.append(f"wrote {path}: {kind.capitalize()}'s grade import, column {column!r}, "
                    f"{len(args.lms_roster.rows)} students of {args.roster}")
        if missing:
            said.append(f"warning: {path}: {len(missing)} graded students are not in {args.roster} and are left "
                        f"out: {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}")
    return said
