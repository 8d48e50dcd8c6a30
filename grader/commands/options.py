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
