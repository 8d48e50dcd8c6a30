"""The grader's pytest suite: one test per (activation, check, device), parametrised by the plugin
from the catalogue and the names the submission defines. Run through ``python -m grader`` or
``pytest --submission PATH``."""
from __future__ import annotations

import pytest

from .checks import CheckFailure, Impl
from .mlx_catalog import NO_MLX, available
from .plugin import NO_CUDA
from .replay import using


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
        pytest.fail(str(exc), pytrace=False)
    for note in notes:
        request.node.user_properties.append(("note", note))
