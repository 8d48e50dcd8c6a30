"""The one place a check meets an implementation: run it (directly, recording the student's code on a
tape, or replaying a tape), under a time limit, and turn what it raised into a
:class:`~grader.core.results.CheckResult`.

The worker's pytest suite (grader/run/suite.py), the parent's :func:`judge` and ``check()`` in a
kernel (grader/run/live.py) all call :func:`run_check`, so a verdict and its message cannot differ
between them by how each caught the exception.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from grader.checks import replay
from grader.checks.harness import Impl
from grader.checks.plan import PlannedCheck
from grader.checks.registry import CHECKS_BY_NAME, framework_of_check
from grader.checks.base import Check
from grader.core import limits
from grader.core.errors import CheckFailure, CheckTimeout
from grader.core.results import NO_CUDA, CheckResult
from grader.core.text import student_text
from grader.spec.catalog import BY_NAME
from grader.spec.frameworks import MLX
from grader.spec.mlx_catalog import NO_MLX
from grader.submission.loader import time_limit

MESSAGE_CHARS = 2000  # a check's message as reports keep it


@dataclass
class Ran:
    """A check's result, with what it raised: the failure (for its picture and hint), or the
    grader's own error (which callers word as their context needs)."""

    result: CheckResult
    failure: CheckFailure | None = None
    error: Exception | None = None


def absent(check: Check, device: str) -> str | None:
    """Why this machine cannot run the check (no CUDA, no MLX), or None."""
    if device == "cuda" and not torch.cuda.is_available():
        return NO_CUDA
    if framework_of_check(check) is MLX and not MLX.available():
        return NO_MLX
    return None


def run_check(impl: Impl, check: Check, device: str, tape: replay.Tape | None = None,
              timeout: float | None = None, settle_absent: bool = True) -> Ran:
    """``check`` on ``impl`` on ``device``, its student code met as ``tape`` says (direct when None),
    stopped after ``timeout`` seconds with the grader's timeout message."""
    name = impl.entry.name
    if settle_absent:
        why = absent(check, device)
        if why is not None:
            return Ran(CheckResult(name, check.name, device, "skipped", why))
    # the same wording whoever runs it: the worker's message is what a timed-out replay reports
    limit = (time_limit(timeout, lambda what: CheckTimeout(f"{name} {check.name}: {what} (an infinite loop?)"))
             if timeout else contextlib.nullcontext())
    try:
        with replay.using(tape or replay.Tape("direct")), limit:
            notes = check.run(impl, device)
    except CheckFailure as exc:
        return Ran(CheckResult(name, check.name, device, "failed", str(exc)), failure=exc)
    except Exception as exc:  # the grader's own error: reported, never hidden
        message = f"grader error: {type(exc).__name__}: {exc}".splitlines()[0]
        return Ran(CheckResult(name, check.name, device, "failed", message), error=exc)
    return Ran(CheckResult(name, check.name, device, "passed", "", list(notes)))


def judge(planned: PlannedCheck, claimed: object, tape: object, message: object = "") -> CheckResult:
    """The parent's verdict on a planned check: run it again here, where torch has never met
    student code, replaying what the worker recorded of the student's code (grader/checks/replay.py).
    The worker's own status (``claimed``) is never taken: a check passes only if its replay here
    passes, having replayed at least one call of student code and the whole tape."""
    name, device = planned.activation, planned.device
    worker_said = claimed if claimed in ("passed", "failed", "skipped") else "nothing readable"
    try:
        entries = replay.decode(tape) if isinstance(tape, str) and tape else None
    except Exception:
        entries = None
    if entries is None:
        return CheckResult(name, planned.check, device, "failed",
                           "grader error: the worker sent no readable record of this check",
                           [f"the worker reported {worker_said}; the grader's own verdict is failed"])
    played = replay.Tape("replay", entries)
    check = CHECKS_BY_NAME[planned.check]
    impl = Impl(BY_NAME[name], None, framework=framework_of_check(check))
    ran = run_check(impl, check, device, played, settle_absent=False)
    notes, status, text = ran.result.notes, ran.result.status, ran.result.message
    if isinstance(ran.failure, replay.TapeEnded):  # the worker's check stopped there: a timeout inside the grader
        notes, text = [], student_text(message, MESSAGE_CHARS) or "the worker's check stopped early"
    elif ran.error is not None:  # a tape that does not fit the check: forged or corrupt
        notes, text = [], f"grader error while judging: {type(ran.error).__name__}: {ran.error}"[:300]
    elif ran.failure is not None:
        notes = []
    elif played.position == 0 or played.position != len(played.entries):
        status, text = "failed", ("grader error: the worker's record of this check does not match the "
                                  "check (forged or corrupt)")
    if status != worker_said:
        notes = notes + [f"the worker reported {worker_said}; the grader's own verdict is {status}"]
    return CheckResult(name, planned.check, device, status, student_text(text, MESSAGE_CHARS),
                       [student_text(str(n), MESSAGE_CHARS) for n in notes][:limits.NOTES])
