"""Each distinct file graded once per batch: a file with the same SHA-256, the same name (a .py and
an .ipynb of the same bytes are not the same submission) and the same options as one graded before
gets that one's report, with its own path (an untouched exercise, a copy)."""
from __future__ import annotations

import json
import threading
import zlib
from concurrent.futures import Future
from pathlib import Path

from grader import __version__
from grader.grading.options import GradingOptions
from grader.report.model import SubmissionResult


class FileReportCache:
    """The reports of the files graded so far in a batch, by :func:`report_key`. A student who needs
    a file another student is grading waits for that grading."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reports: dict[tuple, Future] = {}
        self.files_graded = 0  # by a worker
        self.files_reused = 0  # that got the report of an identical one

    def claim(self, key: tuple) -> tuple[Future, bool]:
        """The future report of the file ``key`` names, and whether the caller is to grade it (and
        then :meth:`settle` it)."""
        with self._lock:
            mine = key not in self._reports
            if mine:
                self._reports[key] = Future()
            return self._reports[key], mine

    def settle(self, key: tuple, report: SubmissionResult | None, graded: bool = True) -> None:
        """``report``: the graded file, or None when it is not to be reused (a grader error, or a file
        whose grading was not clean): each student waiting for it then grades it himself. Kept
        compressed: a class holds thousands. ``graded``: a worker graded it."""
        with self._lock:
            future = self._reports[key]
            if report is None:
                del self._reports[key]
            if graded:
                self.files_graded += 1
        future.set_result(None if report is None else zlib.compress(json.dumps(report.to_json()).encode()))

    def count_reuse(self) -> None:
        with self._lock:
            self.files_reused += 1


def report_key(path: Path, sha: str, options: GradingOptions) -> tuple:
    """What two files must share for one's report to stand for the other's."""
    return (sha, path.name, __version__, options.device, options.check_timeout, options.memory, options.hide,
            options.assignment)


def reusable_report(report: SubmissionResult) -> bool:
    """A file's report that stands for every identical file: not the grader's own failure."""
    texts = [report.error] + [c.message for e in report.exercises for c in e.checks]
    return not any(t.startswith("grader error") or "grader error:" in t for t in texts)


def with_path(report: bytes, path: Path) -> SubmissionResult:
    """An identical file's report, as this file's: its path, and its errors naming this file."""
    mine = SubmissionResult.from_json(json.loads(zlib.decompress(report)))
    old, mine.path = mine.path, str(path)
    if mine.error.startswith(old):
        mine.error = str(path) + mine.error[len(old):]
    return mine
