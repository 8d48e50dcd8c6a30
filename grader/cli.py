"""``python -m grader SUBMISSION... [--json REPORT] [--device cpu|cuda|all]``.

Exit status: 0 full marks for every submission, 1 anything less, 2 nothing could be graded.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
import warnings

import pytest

from . import __version__
from .loader import SubmissionError, load
from .plugin import SUITE, GraderPlugin
from .report import SubmissionReport, as_json, build, table, write_json


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m grader",
                                description="Grade activation-function submissions (.ipynb or .py) against torch.")
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION", help="notebooks or .py files to grade")
    p.add_argument("--json", metavar="REPORT", help="also write a JSON report to this path")
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="all",
                   help="where to run the checks (default: all; CUDA checks are skipped without CUDA)")
    p.add_argument("--check-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="seconds one check may take (default 60)")
    p.add_argument("-v", "--verbose", action="store_true", help="list every check")
    p.add_argument("--version", action="version", version=f"grader {__version__}")
    return p


def grade(path: str, device: str = "all", check_timeout: float = 60.0) -> SubmissionReport:
    """Grade one submission. A file that cannot be read is a report with ``error`` set."""
    try:
        submission = load(path)
    except SubmissionError as exc:
        return SubmissionReport(path, error=str(exc))
    if not submission.graded:
        return build(path, submission.sha256, [], submission.notes)
    plugin = GraderPlugin(submission)
    args = [SUITE, "--submission", path, "--device", device, "--check-timeout", str(check_timeout),
            "-p", "no:cacheprovider", "-p", "no:randomly", "-q", "--no-header", "-W", "ignore"]
    out = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(out):
        warnings.simplefilter("ignore")
        code = pytest.main(args, plugins=[plugin, "grader.plugin"])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED):
        tail = [line for line in out.getvalue().splitlines() if line.strip()][-1:] or ["no output"]
        return SubmissionReport(path, submission.sha256, notes=submission.notes,
                                error=f"the grader's test run failed ({code!r}): {tail[0]}")
    return build(path, submission.sha256, plugin.results, submission.notes)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    reports = [grade(p, args.device, args.check_timeout) for p in args.submissions]
    for r in reports:
        if r.error:
            print(f"error: {r.path}: {r.error}" if not r.error.startswith(r.path) else f"error: {r.error}",
                  file=sys.stderr)
        else:
            print(table(r, verbose=args.verbose))
    if args.json:
        write_json(as_json(reports, args.device), args.json)
    if all(r.error for r in reports):
        return 2
    return 0 if all(r.full_marks for r in reports) else 1
