"""``python -m grader batch SUBMISSIONS_DIR --csv GRADEBOOK [--json REPORT] [--jobs N] [--force] [--shard K/N]``.

Grades a class into a gradebook (:mod:`grader.report.gradebook`). Who the students are, and which
files are theirs, is :mod:`grader.grading.discovery`'s: a subfolder or a loose file per student;
hidden files, virtual environments and symbolic links are never graded.

Each student's files are graded one after the other by one worker (grader/run/supervisor.py), which
imports torch once and runs each file in a process of its own forked from it, with the sandbox and
limits of a single grading: a file that crashes or hangs costs that file's exercise alone, and no
file can change another's grade. This process judges every result (torch's references computed once
for the class) in a thread per student, ``--jobs`` students at once; a failure of its own while
judging one student is that student's "grader error" line. A file identical to one already graded
in the batch (same SHA-256, name and options: an untouched exercise, a copy) is not graded again.
With ``--json``, a re-run reuses the students whose files (SHA-256) are unchanged since that report
was written by the same grader version, torch and device; ``--force`` regrades everyone.

``--shard K/N`` grades the K-th of N disjoint slices of the class, one per machine: a student's slice
is the SHA-256 of their name modulo N, so it depends on nothing else (not on who else is in the
class, nor on the order of the folders). ``python -m grader merge`` (grader/commands/merge.py) joins
the N JSON reports into the gradebook that one batch of the whole class writes.

``--fetched RECORD`` (written by ``grading-workflow --fetch``) adds each student's repository and
the commit graded to the gradebook; a repository that could not be fetched is its student's error.
``--canvas``, ``--moodle`` and ``--roster`` also write the grades as Canvas's and Moodle's grade
imports (:mod:`grader.report.lms`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grader.grading import arguments as grading_options
from grader.grading import fetch as fetching
from grader.grading.class_batch import ClassBatch
from grader.grading.discovery import discover
from grader.grading.options import BatchOptions
from grader.grading.sharding import parse_shard


def parser() -> argparse.ArgumentParser:
    return grading_options.batch_parser(__doc__.splitlines()[0].strip("`"))


def _wrong_arguments(args: argparse.Namespace, root: Path) -> str | None:
    """What is wrong with the command line, as one line, or None."""
    if not root.is_dir():
        return f"{root}: not a folder of submissions"
    if args.jobs < 1:
        return "--jobs must be at least 1"
    if args.shard is not None and parse_shard(args.shard) is None:
        return f"--shard {args.shard}: expected K/N, the K-th of N slices (1 <= K <= N), e.g. 2/4"
    if args.shard is not None and (args.canvas or args.moodle):
        return "--canvas and --moodle need the whole class: give them to `python -m grader merge` of the shards"
    if args.fetched is not None:
        try:
            args.fetched_record = fetching.read_record(args.fetched)
        except ValueError as exc:
            return f"--fetched {exc}"
    return grading_options.problem(args) or grading_options.lms_problem(args)


def batch_options(args: argparse.Namespace) -> BatchOptions:
    """The run the command line asks for (checked by :func:`_wrong_arguments`)."""
    return BatchOptions(Path(args.submissions).resolve(), args.csv, args.json, args.jobs, args.force,
                        args.strip_prefix, parse_shard(args.shard) if args.shard else None,
                        getattr(args, "fetched_record", None), grading_options.grading(args))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    wrong = _wrong_arguments(args, Path(args.submissions))
    if wrong:
        print(f"error: {wrong}", file=sys.stderr)
        return 2
    options = batch_options(args)
    students = discover(options.submissions, options.strip_prefix)
    if not students:
        print(f"error: {options.submissions}: no student (no subfolder, no .ipynb or .py file)", file=sys.stderr)
        return 2
    batch = ClassBatch.plan(options, students)
    try:
        batch.save()  # before any student code runs: what stands if the batch is killed
    except OSError as exc:
        print(f"error: cannot write the gradebook: {exc}", file=sys.stderr)
        return 2
    records = batch.records
    if not batch.grade():
        print(f"interrupted: {len(records)} of {len(batch.students)} students graded, saved in {args.csv}"
              + (f" and {args.json} (run again to go on)" if args.json else ""), file=sys.stderr)
        return 130
    batch.save()
    errors = sum(1 for r in records.values() if r["error"])
    print(f"wrote {args.csv}" + (f" and {args.json}" if args.json else "")
          + f": {len(records)} students, {errors} with an error", file=sys.stderr)
    try:
        for line in grading_options.write_lms(args, list(records.values()), sum(batch.maxima.values()),
                                              batch.assignment):
            print(line, file=sys.stderr)
    except OSError as exc:
        print(f"error: cannot write the LMS import: {exc}", file=sys.stderr)
        return 2
    if records and errors == len(records):  # a shard may hold no student
        return 2
    return 1 if errors else 0
