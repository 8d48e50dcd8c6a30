"""``python -m grader SUBMISSION... [--json REPORT] [--html PAGE] [--device cpu|cuda|all]``.

Exit status: 0 full marks for every submission, 1 anything less, 2 nothing could be graded.
Instructors' commands have modules of their own:
``python -m grader batch|merge|grading-workflow|classroom|classroom50|gradescope|class-report ...``.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from grader import __version__
from grader.grading import arguments as grading_options
from grader.core import limits
from grader.feedback import html_report
from grader.grading.submissions import grade
from grader.report.model import NOT_FINISHED, SubmissionResult, as_json, write_json


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m grader",
                                description="Grade activation-function submissions (.ipynb or .py) against torch.",
                                epilog="Instructors: python -m grader batch|merge|grading-workflow|classroom|classroom50|gradescope|class-report --help",
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # one line: no break at a hyphen
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION", help="notebooks or .py files to grade")
    p.add_argument("--json", metavar="REPORT", help="also write a JSON report to this path")
    p.add_argument("--html", metavar="PAGE", help="also write a self-contained HTML feedback page (every "
                   "failure with its hint and a plot) to this path")
    grading_options.add(p)
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="submissions graded at once (default: the number of CPUs)")
    p.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="stop grading after SECONDS in all: what was graded counts, the checks not reached fail "
                        "with \"not run\" (a platform that kills a job that runs too long shows nothing at all)")
    p.add_argument("-v", "--verbose", action="store_true", help="list every check")
    p.add_argument("--version", action="version", version=f"grader {__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    wrong = grading_options.problem(args) or (
        f"--time-budget {args.time_budget:g}: give a positive number of seconds"
        if args.time_budget is not None and not 0 < args.time_budget < float("inf") else None)
    if wrong:
        print(f"error: {wrong}", file=sys.stderr)
        return 2
    assignment = grading_options.chosen(args)
    if args.json:  # before any student code runs: what stands if this process is killed before the end
        try:
            write_json(as_json([SubmissionResult(p, error=f"{NOT_FINISHED}: the grader was stopped before it finished")
                                for p in args.submissions], args.device, assignment), args.json)
        except OSError as exc:
            print(f"error: --json {args.json}: cannot write it ({exc.strerror or exc})", file=sys.stderr)
            return 2
    report_dir = tuple({Path(f).resolve().parent for f in (args.json, args.html) if f and Path(f).resolve().parent.is_dir()})
    feedback = html_report.Collector() if args.html else None

    deadline = time.monotonic() + args.time_budget if args.time_budget else None
    out_of_time = f"the grader's time budget of {args.time_budget:g} s ran out" if deadline else ""

    def one(index: int, path: str) -> SubmissionResult:
        left = deadline - time.monotonic() if deadline else limits.TOTAL_TIMEOUT
        if left <= 0:
            return SubmissionResult(path, error=f"not run: {out_of_time}")
        with feedback.watch(index) if feedback else contextlib.nullcontext():
            return grade(path, args.device, args.check_timeout, grading_options.memory_bytes(args), report_dir,
                         tuple(Path(h) for h in args.hide), min(left, limits.TOTAL_TIMEOUT), out_of_time,
                         assignment=assignment)

    # submissions are graded side by side: each in its own worker process, judged here in a thread
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        reports = list(pool.map(one, range(len(args.submissions)), args.submissions))
    for r in reports:
        if r.error:
            print(f"error: {r.path}: {r.error}" if not r.error.startswith(r.path) else f"error: {r.error}",
                  file=sys.stderr)
        else:
            print(r.table(verbose=args.verbose))
    if args.json:
        write_json(as_json(reports, args.device, assignment), args.json)
    if args.html and not html_report.write(reports, args.html, feedback, args.device):
        return 2
    if all(r.error for r in reports):
        return 2
    return 0 if all(r.full_marks for r in reports) else 1
