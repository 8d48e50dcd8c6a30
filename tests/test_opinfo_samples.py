"""The reference solutions on PyTorch's own sample inputs (its OpInfo database): every sample torch
tests its activations with, in float64 and float32, values and gradients."""
from __future__ import annotations

import pytest
import torch

from grader.catalog import ACTIVATIONS
from grader.checks.compare import assert_close, locate_index

from conftest import fresh_solution

op_db = pytest.importorskip("torch.testing._internal.common_methods_invocations").op_db

BY_FUNCTIONAL = {a.functional: a for a in ACTIVATIONS if a.functional and a.in_torch}
OPS = [op for op in op_db
       if op.name.removeprefix("nn.functional.") in BY_FUNCTIONAL and op.variant_test_name != "complex"]


def test_opinfo_covers_the_catalogue() -> None:
    covered = {op.name.removeprefix("nn.functional.") for op in OPS}
    assert covered == set(BY_FUNCTIONAL), set(BY_FUNCTIONAL) - covered


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("op", OPS, ids=lambda op: f"{op.name}.{op.variant_test_name}".rstrip("."))
def test_solution_matches_torch_on_opinfo_samples(op, dtype) -> None:
    entry = BY_FUNCTIONAL[op.name.removeprefix("nn.functional.")]
    mine = fresh_solution(entry.name).namespace[entry.functional]
    n = 0
    for sample in op.sample_inputs("cpu", dtype, requires_grad=True):
        if sample.kwargs.get("training"):
            continue  # RReLU's training noise is random: the grader tests its distribution instead
        x, args, kwargs = sample.input, sample.args, sample.kwargs
        what = f"{op.name}(shape={tuple(x.shape)}, args={args}, kwargs={kwargs}) {dtype}"
        expected = op.op(x, *args, **kwargs)
        got = mine(x, *args, **kwargs)
        assert_close(got, expected, what, locate_index(x))
        tensors = [t for t in (x, *args, *kwargs.values()) if isinstance(t, torch.Tensor) and t.requires_grad]
        if expected.numel():
            up = torch.randn_like(expected)
            g_expected = torch.autograd.grad(expected, tensors, up)
            g_got = torch.autograd.grad(got, tensors, up)
            for a, b in zip(g_got, g_expected):
                assert_close(a, b, what, locate_index(b), kind="grad")
        n += 1
    assert n > 0
