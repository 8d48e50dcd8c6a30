"""The worker process: loads one submission, runs the grader's checks on it, streams events.

Started by :mod:`grader.run.sandbox` with resource limits, in a scratch directory; never run by hand.
Events are JSON lines on ``--result-fd``: ``loaded``, ``start`` and ``result`` per check, ``done``
(or ``error`` when the file cannot be graded at all).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m grader.run.worker")
    p.add_argument("path")
    p.add_argument("--device", default="all")
    p.add_argument("--check-timeout", type=float, required=True)
    p.add_argument("--result-fd", type=int, required=True)
    p.add_argument("--skip", default="", help="comma-separated activations not to grade")
    args = p.parse_args(argv)
    channel = os.fdopen(args.result_fd, "w", buffering=1, encoding="utf-8")

    def emit(**event) -> None:
        channel.write(json.dumps(event) + "\n")
        channel.flush()

    import pytest

    from grader.checks import harness
    from grader.run.guard import Guard
    from grader.submission.loader import BoundedOutput, load
    from grader.core.errors import SubmissionError
    from grader.run.plugin import SUITE, GraderPlugin

    # the hook is set first so that the snapshot holds it; it calls the guard created next
    harness.after_student_code(lambda: guard.restore())
    guard = Guard()  # snapshot before any student code runs
    try:
        submission = load(args.path, after_cell=guard.restore, cell_timeout=args.check_timeout)
    except SubmissionError as exc:
        emit(event="error", message=str(exc))
        return 0
    skip = frozenset(filter(None, args.skip.split(",")))
    from grader.checks.registry import graded  # MLX submissions define mlx.nn's names (grader/spec/mlx_catalog.py)
    emit(event="loaded", sha256=submission.sha256, notes=submission.notes,
         graded=[a.name for a in graded(args.path, submission.namespace)])
    plugin = GraderPlugin(submission, emit=emit, skip=skip)
    pytest_args = [SUITE, "--submission", args.path, "--device", args.device,
                   "--check-timeout", str(args.check_timeout), "-p", "no:cacheprovider", "-p", "no:randomly",
                   "-q", "--no-header", "-W", "ignore", "-s",
                   # the course's own pytest options (nbval) are not the grader's and may not be installed
                   "-o", "addopts=", "--rootdir", os.path.dirname(SUITE),
                   # the suite's plain asserts need no rewriting (seconds of start-up otherwise)
                   "--assert=plain"]
    # only the grader's plugin: whatever else is installed (hypothesis, xdist, nbval) is not loaded,
    # which saves seconds per worker and keeps third-party hooks out of the grading
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    # what student code prints during the checks is nobody's business, and must not fill the memory
    sink = BoundedOutput()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        code = pytest.main(pytest_args, plugins=[plugin, "grader.run.plugin"])
    guard.restore()
    emit(event="done", exit_code=int(code), restored=guard.restored)
    channel.close()
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    os._exit(status)  # skip interpreter teardown (torch's takes seconds); the parent has every event
