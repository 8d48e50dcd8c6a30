"""The grader's pytest suite: one test per (activation, check, device), parametrised by the plugin
from the catalogue and the names the submission defines. Run through ``python -m grader`` or
``pytest --submission PATH``."""
from __future__ import annotations

import pytest

from grader.feedback import curves
from grader.checks.harness import Impl, student_code_returned
from grader.checks.registry import framework_of_check
from grader.checks.runner import run_check
from grader.submission.loader import time_limit
from grader.checks.replay import interact, using
from grader.core.results import check_label

FEEDBACK_SECONDS = 10.0  # for evaluating a failed check's curves; a timeout just leaves them out


def test_check(submission, activation, check, device, check_timeout, tape, request) -> None:
    impl = Impl(activation, submission.namespace, framework=framework_of_check(check))
    request.node.user_properties.append(("tape", tape))
    ran = run_check(impl, check, device, tape, check_timeout)
    result = ran.result
    if result.status == "skipped":
        pytest.skip(result.message)
    if ran.failure is not None and tape.mode == "record":  # the worker: the parent will draw this failure from the tape
        exc = ran.failure
        name = check_label(check.name, device)
        form = impl.function if exc.form == "function" else impl.functional
        with using(tape), time_limit(FEEDBACK_SECONDS, lambda what: TimeoutError(f"feedback curves: {what}")):
            curves.record(form, activation, name, device, exc, interact, student_code_returned)
    if result.status == "failed":
        pytest.fail(result.message, pytrace=False)
    for note in result.notes:
        request.node.user_properties.append(("note", note))
