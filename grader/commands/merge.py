"""``python -m grader merge REPORT... --csv GRADEBOOK [--json REPORT]``: a class graded on N machines.

Each REPORT is the JSON report of ``python -m grader batch ... --shard K/N`` (grader/commands/batch.py),
one slice of the class. The gradebook and report written are those one batch of the whole class
writes: the same columns, the same order, the same records. Reports that cannot be one class graded
one way are refused with a one-line error (exit status 2) and nothing is written: a different
grader, torch, Python, device, maximum or assignment; a shard missing, given twice, or from another
split into N; a student in two reports or in a slice their name does not belong to. ``--canvas``,
``--moodle`` and ``--roster`` also write the class's grades as Canvas's and Moodle's grade imports
(:mod:`grader.report.lms`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grader.grading import arguments as grading_options
from grader.grading.sharding import parse_shard, shard_of
from grader.report import gradebook
from grader.report.model import write_json
from grader.spec.assignment import AssignmentError, assignment

# What every shard must agree on, with how to say that they do not. The merged report keeps the
# shards' own values: it says what graded the students, not what merged the reports.
SAME = (("grader_version", "grader versions"), ("torch_version", "torch versions"),
        ("python_version", "Python versions"), ("device", "devices"), ("cuda_available", "CUDA availabilities"),
        ("max_scores", "maximum scores (max_scores)"), ("assignment", "assignments"))


class Refused(Exception):
    """Why the reports cannot be merged, as one line."""


def _record(r: object, maxima: dict) -> bool:
    """A student's record with what the gradebook's columns read."""
    return (isinstance(r, dict) and isinstance(r.get("student"), str) and isinstance(r.get("score"), int)
            and isinstance(r.get("max_score"), int) and isinstance(r.get("error"), (str, type(None)))
            and isinstance(r.get("exercises"), list)
            and all(isinstance(e, dict) and e.get("name") in maxima and isinstance(e.get("score"), int)
                    for e in r["exercises"]))


def load(path: Path) -> tuple[dict, tuple[int, int]]:
    """A shard's report and its (K, N)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise Refused(f"{path}: cannot read it ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    if not (isinstance(data, dict) and isinstance(data.get("students"), list)
            and isinstance(data.get("max_scores"), dict)
            and all(_record(r, data["max_scores"]) for r in data["students"])):
        raise Refused(f"{path}: not a report of `python -m grader batch`")
    shard = parse_shard(data["shard"]) if isinstance(data.get("shard"), str) else None
    if shard is None:
        raise Refused(f"{path}: not one shard of a class (written by `python -m grader batch` without --shard K/N)")
    return data, shard


def _shards(n: int, ks: list[int]) -> str:
    return ", ".join(f"{k}/{n}" for k in ks)


def merge(paths: list[Path]) -> dict:
    """The report of the whole class, from its shards' reports; :class:`Refused` when they are not
    the N shards of one class graded one way."""
    reports = [(path, *load(path)) for path in paths]
    first_path, first, (_, n) = reports[0]
    for key, what in SAME:
        for path, data, _ in reports[1:]:
            if data.get(key) != first.get(key):
                values = "" if key in ("max_scores", "assignment") else f" ({first.get(key)} and {data.get(key)})"
                raise Refused(f"{first_path} and {path} come from different {what}{values}: "
                              "merge the shards of one run")
    by_shard: dict[int, Path] = {}
    for path, _, (k, count) in reports:
        if count != n:
            raise Refused(f"{first_path} is a shard of {n} but {path} a shard of {count}: "
                          "merge the shards of one split")
        if k in by_shard:
            raise Refused(f"shard {k}/{n} twice: {by_shard[k]} and {path}")
        by_shard[k] = path
    missing = [k for k in range(1, n + 1) if k not in by_shard]
    if missing:
        raise Refused(f"missing shard{'s' if len(missing) > 1 else ''} {_shards(n, missing)} "
                      f"(given {_shards(n, sorted(by_shard))}): the class is split into {n}")
    holder: dict[str, Path] = {}
    for path, data, _ in reports:
        for record in data["students"]:
            name = record["student"]
            if name in holder:
                raise Refused(f"student {name!r} is in {holder[name]} and in {path}")
            holder[name] = path
    for path, data, (k, _) in reports:
        for record in data["students"]:
            if shard_of(record["student"], n) != k:  # a report edited, or a slice made another way
                raise Refused(f"{path} is shard {k}/{n} but holds {record['student']!r}, whose shard is "
                              f"{shard_of(record['student'], n)}/{n}")
    # the whole class's report: every key batch wrote (environment, max_scores, assignment...) in
    # its order, the students of every shard sorted as batch sorts them, and no "shard"
    records = [r for _, data, _ in reports for r in data["students"]]
    return {key: sorted(records, key=gradebook.sort_key) if key == "students" else value
            for key, value in first.items() if key != "shard"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m grader merge", description=__doc__.replace("``", ""),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reports", nargs="+", type=Path, metavar="REPORT",
                   help="the JSON reports of `python -m grader batch --shard K/N`, one per shard")
    p.add_argument("--csv", required=True, metavar="GRADEBOOK", help="write the class's gradebook (CSV) here")
    p.add_argument("--json", metavar="REPORT", help="write the class's full report here")
    grading_options.add_lms(p)
    args = p.parse_args(argv)
    wrong = grading_options.lms_problem(args)
    if wrong:
        print(f"error: {wrong}", file=sys.stderr)
        return 2
    try:
        report = merge(args.reports)
        chosen = assignment(report.get("assignment"))
    except Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (AssignmentError, TypeError) as exc:
        print(f"error: the reports' assignment is not this grader's ({exc})", file=sys.stderr)
        return 2
    records = report["students"]
    try:
        gradebook.write_csv(records, report["max_scores"], args.csv)
        if args.json:
            # not gradebook.write_batch_json: that stamps this machine's torch and Python, and the
            # report must say what graded the students
            write_json(report, args.json)
        said = grading_options.write_lms(args, records, sum(report["max_scores"].values()), chosen)
    except OSError as exc:
        print(f"error: cannot write the gradebook: {exc}", file=sys.stderr)
        return 2
    errors = sum(1 for r in records if r.get("error"))
    print(f"merged {len(args.reports)} shards into {args.csv}" + (f" and {args.json}" if args.json else "")
          + f": {len(records)} students, {errors} with an error", file=sys.stderr)
    for line in said:
        print(line, file=sys.stderr)
    return 0
