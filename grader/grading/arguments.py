"""The options every grading command shares (``--device``, ``--check-timeout``, ``--memory``,
``--chapter``, ``--hide``): declared and checked in one place, so ``python -m grader`` and ``batch`` cannot drift.
Also ``batch``'s whole command line (:func:`batch_parser`), which ``grading-workflow`` checks the
options it passes on to ``batch`` with. Below the commands, which import it and never each other
(pyproject.toml's independence contract)."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from grader.core import limits
from grader.grading.options import GradingOptions
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


def grading(args: argparse.Namespace) -> GradingOptions:
    """How each file is graded, from the shared options (checked by :func:`problem`)."""
    return GradingOptions(args.device, args.check_timeout, memory_bytes(args),
                          tuple(str(Path(h).resolve()) for h in args.hide), chosen(args))


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


def batch_parser(description: str | None = None) -> argparse.ArgumentParser:
    """``python -m grader batch``'s command line."""
    p = argparse.ArgumentParser(prog="python -m grader batch", description=description)
    p.add_argument("submissions", metavar="SUBMISSIONS_DIR", help="one subfolder or file per student")
    p.add_argument("--csv", required=True, metavar="GRADEBOOK", help="write the gradebook (CSV) here")
    p.add_argument("--json", metavar="REPORT",
                   help="write the full report here; a re-run with it grades only the students whose files changed")
    p.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count() or 1, metavar="N", help="students graded at once (default: the number of CPUs)")
    p.add_argument("--force", action="store_true", help="regrade every student, even unchanged ones")
    p.add_argument("--strip-prefix", default="", metavar="PREFIX",
                   help="remove PREFIX from folder names, e.g. 'CLASSROOM-ASSIGNMENT-' of Classroom 50's 'CLASSROOM-ASSIGNMENT-user'")
    p.add_argument("--shard", metavar="K/N",
                   help="grade only the K-th of N disjoint slices of the students (by the SHA-256 of their name), "
                        "one per machine; `python -m grader merge` joins the N JSON reports into one gradebook")
    p.add_argument("--fetched", type=Path, metavar="RECORD",
                   help="the record of `grading-workflow --fetch`: each folder's repository and commit go into the "
                        "gradebook, and a repository that could not be fetched is its student's error")
    add(p)
    add_lms(p)
    return p
