"""Submission files graded in a worker (grader/run/supervisor.py), each into its
:class:`~grader.report.model.SubmissionResult`: what ``python -m grader``, ``batch`` and the
Gradescope autograder all grade with."""
from __future__ import annotations

from pathlib import Path

from grader.core import limits
from grader.report.model import SubmissionResult, build
from grader.run import supervisor
from grader.spec.assignment import WHOLE_COURSE, Assignment


def grade(path: str, device: str = "all", check_timeout: float = limits.CHECK_TIMEOUT,
          memory: int = limits.MEMORY, read_only: tuple[Path, ...] = (),
          hide: tuple[Path, ...] = (), total_timeout: float = limits.TOTAL_TIMEOUT,
          out_of_time: str = "", assignment: Assignment = WHOLE_COURSE) -> SubmissionResult:
    """Grade one submission in a worker process. A file that cannot be graded is a report with
    ``error`` set; a crash or hang costs the exercise it happened in. After ``total_timeout``
    seconds the checks graded so far are kept and the rest fail, ``out_of_time`` saying why. Only
    ``assignment``'s exercises are graded."""
    outcome = supervisor.run(path, device, check_timeout, memory, total_timeout, read_only=read_only, hide=hide,
                          out_of_time=out_of_time, assignment=assignment)
    return report_of(path, outcome)


def grade_many(paths: list[str], device: str = "all", check_timeout: float = limits.CHECK_TIMEOUT,
               memory: int = limits.MEMORY, read_only: tuple[Path, ...] = (), hide: tuple[Path, ...] = (),
               total_timeout: float = limits.TOTAL_TIMEOUT, assignment: Assignment = WHOLE_COURSE,
               others: tuple[Path, ...] = ()) -> list[SubmissionResult]:
    """Grade one student's files one after the other in one worker (torch imported once), each as
    :func:`grade` grades it alone: in a process of its own, with its own ``total_timeout``.
    ``others``: the class's folder, which no worker may read."""
    outcomes = supervisor.run_many(paths, device, check_timeout, memory, total_timeout, read_only=read_only, hide=hide,
                                assignment=assignment, others=others)
    return [report_of(p, o) for p, o in zip(paths, outcomes)]


def report_of(path: str, outcome: supervisor.Outcome) -> SubmissionResult:
    """The report of one file from what its worker said; ``shareable``: it may stand for an
    identical file (graded cleanly)."""
    if outcome.error:
        report = SubmissionResult(path, outcome.sha256, notes=outcome.notes, error=outcome.error)
    else:
        report = build(path, outcome.sha256, outcome.results, outcome.notes, outcome.framework, outcome.other_chapters)
    report.shareable = outcome.clean
    return report
