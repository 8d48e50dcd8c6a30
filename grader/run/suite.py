"""The grader's pytest suite: one test per (activation, check, device), parametrised by the plugin
from the catalogue and the names the submission defines. Run through ``python -m grader`` or
``pytest --submission PATH``."""
from __future__ import annotations

import pytest

from grader.feedback import curves
from grader.core.errors import CheckFailure
from grader.checks.harness import Impl, student_code_returned
from grader.submission.loader import time_limit
from grader.spec.mlx_catalog import NO_MLX, available
from grader.core.results import NO_CUDA
from grader.checks.replay import interact, using
from grader.core.results import check_label

FEEDBACK_SECONDS = 10.0  # for evaluating a failed check's curves; a timeout just leaves them out


def test_check(submission, activation, check, device, check_timeout, tape, request) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            pytest.skip(NO_CUDA)
    if check.name.startswith("mlx ") and not available():
        pytest.skip(NO_MLX)
    impl = Impl(activation, submission.namespace)
    request.node.user_properties.append(("tape", tape))
    try:
        with check_timeout(f"{activation.name} {check.name}"), using(tape):
            notes = check.run(impl, device)
    except CheckFailure as exc:
        if tape.mode == "record":  # the worker: the parent will draw this failure from the tape
            name = check_label(check.name, device)
            form = impl.function if exc.form == "function" else impl.functional
            with using(tape), time_limit(FEEDBACK_SECONDS, lambda what: TimeoutError(f"feedback curves: {what}")):
                curves.record(form, activation, name, device, exc, interact, student_code_returned)
        pytest.fail(str(exc), pytrace=False)
    for note in notes:
        request.node.user_properties.append(("note", note))
