"""The engine of ``check()``: one activation's checks on a live namespace, in this process.

The same checks as ``python -m grader`` (grader/checks/registry.py), run by the same runner as the
worker's pytest suite and the parent's judge (grader/checks/runner.py), so the verdicts and messages
are the grader's; torch's, MLX's or the 8-bit chapter's, as the namespace or the exercise's key says. The code checked is the student's
own, in the student's own kernel: nothing is sandboxed here (graded runs are, see
``grader/run/supervisor.py``). torch's side of every check is computed once per process (grader/checks/harness.py).
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


from grader.feedback import curves
from grader.core import hangs, limits
from grader.spec.catalog import ACTIVATIONS, BY_NAME, Activation
from grader.core.errors import CheckFailure
from grader.checks.harness import Impl, grading_threads
from grader.checks.registry import checks_for
from grader.checks.runner import Ran, run_check
from grader.feedback.hints import hint_for
from grader.submission.loader import time_limit
from grader.core.results import DEVICES, CheckResult, check_label, parse_check_label
from grader.report.model import ExerciseResult
from grader.spec.assignment import BY_KEY, EXERCISES, exercise_key
from grader.spec.frameworks import TORCH, Framework, framework, in_namespace
from grader.checks.replay import Tape, using


def find(name: str) -> Activation:
    """An activation by its module name (``LeakyReLU``) or functional name (``leaky_relu``)."""
    if name in BY_NAME:
        return BY_NAME[name]
    for entry in ACTIVATIONS:
        if name in (entry.functional, entry.name.lower()):
            return entry
    raise ValueError(f"unknown activation {name!r}; one of: {', '.join(a.name for a in ACTIVATIONS)}")


def exercise(name: str, namespace: dict) -> tuple[Activation, Framework]:
    """The exercise ``check(name)`` means in this namespace: an exercise's key (``MLX ReLU``,
    ``Quantized ReLU6``) anywhere; otherwise the activation of the notebook's own framework (in the
    MLX notebook ``ReLU`` is the MLX exercise, in the 8-bit one ``ReLU6`` or ``quantized_relu6`` its
    quint8 exercise)."""
    keyed = BY_KEY.get(name)
    if keyed is not None and keyed.framework != TORCH.name:
        return BY_NAME[keyed.activation], framework(keyed.framework)
    here = in_namespace(namespace)
    if here is TORCH or keyed is not None and keyed.framework == here.name:
        return find(name), TORCH
    own = [e for e in EXERCISES if e.framework == here.name]
    for e in own:
        if name in (e.activation, e.activation.lower(), BY_NAME[e.activation].functional, *e.names):
            return BY_NAME[e.activation], here
    raise ValueError(f"unknown {here.name} exercise {name!r}; one of: {', '.join(e.key for e in own)}")


def run(name: str, namespace: dict, device: str = "all", timeout: float = limits.CHECK_TIMEOUT, plot: bool = True) -> ExerciseResult:
    """Every check of ``name`` on the definitions in ``namespace``. An interrupt (Jupyter's stop
    button) stops the checks, although student code turns exceptions into check failures."""
    entry, fw = exercise(name, namespace)
    lines: list[CheckResult] = []
    first: tuple[str, CheckFailure] | None = None  # the first failure that a picture can show
    # the kernel's cells are student code: a function that hung costs one limit in this check(), and
    # the next check() starts afresh (the student may have fixed it, or the helper it called)
    with _interruptible() as interrupted, hangs.scope(namespace), grading_threads():
        for check, dev in checks_for(entry, DEVICES[device], fw):
            label = check_label(check.name, dev)
            ran = run_check(Impl(entry, namespace, framework=fw), check, dev, timeout=timeout)
            lines.append(_line(ran))
            failure = ran.failure
            # the curves draw torch's forms: another framework's failure is told without a picture
            if (failure is not None and first is None and fw is TORCH
                    and curves.plottable(entry, label, failure)):
                first = (label, failure)
            if interrupted():
                raise KeyboardInterrupt
    report = ExerciseResult(exercise_key(entry.name, fw.name), lines)
    reasons = {c.message for c in lines if c.status == "skipped"}
    report.show_skipped = not reasons <= _skips_said  # "CUDA is not available" under every check is noise
    _skips_said.update(reasons)
    if plot and first is not None:
        _draw(report, entry, namespace, *first)
    return report


_skips_said: set[str] = set()  # why checks were skipped, as already said in this kernel session


def _line(ran: Ran) -> CheckResult:
    """The kernel's line for one of the runner's results: the first line of a failure, with its hint."""
    result = ran.result
    if result.status == "passed":
        result.notes = [str(n) for n in result.notes]
    if result.status != "failed" or ran.failure is None:  # the grader's own error: no hint fits it
        return result
    message = result.message.splitlines()[0] if result.message else ""
    return CheckResult(result.activation, result.check, result.device, "failed", message, [],
                       hint_for(result.activation, result.name, message))


def _draw(report: ExerciseResult, entry: Activation, namespace: dict, label: str, failure: CheckFailure) -> None:
    from grader.feedback import plots

    impl = Impl(entry, namespace)
    device = parse_check_label(label)[1]
    try:
        with using(Tape("direct")), time_limit(10.0, lambda what: TimeoutError(f"drawing: {what}")):
            form = impl.function() if failure.form == "function" else impl.functional()
            shown = curves.build(entry, label, failure, device, None, curves.student_side(form, entry, failure, device))
            report.figure = plots.png(shown)
    except Exception:  # a picture is a bonus: the verdicts stand without it
        return
    report.figure_caption = (f"{entry.name} {label}: your f and f' against torch's around "
                             f"x = {curves.describe_inputs(list(failure.inputs))}")


@contextlib.contextmanager
def _interruptible() -> Iterator:
    """Remember an interrupt that student code swallowed (checks turn it into a failure)."""
    hit = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        hit.append(True)
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(hit)
    finally:
        signal.signal(signal.SIGINT, previous)
