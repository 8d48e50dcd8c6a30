"""The float64 references of the activations torch does not have (grader/spec/references.py) are checked
against their papers' formulas written out naively (where the naive form is exact), at their
limits, for smoothness where the catalogue says they are smooth, and for the precision policy the
half-precision slack relies on."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch.autograd.gradcheck import GradcheckError

from grader.spec import references as R
from grader.catalog import ACTIVATIONS, BY_NAME, Activation
from grader.checks.recorder import Recorder

X = torch.linspace(-6, 6, 1201, dtype=torch.float64)
# every activation with a reference, read from the catalogue: one added there is tested here too
REFERENCED = [a for a in ACTIVATIONS if not a.in_torch]
INF = math.inf


def _w(value: float) -> torch.Tensor:
    return torch.tensor([value], dtype=torch.float64)


# name -> (reference applied to an elementwise input, the paper's formula for benign inputs)
NAIVE = {
    "hardswish_c1": (R.hardswish_c1,
                     lambda x: torch.where(x <= -3, 0, torch.where(x >= 3, x, x * (x + 3) ** 2 * (6 - x) / 108))),
    "swish beta=1.5": (lambda x: R.swish(x, _w(1.5)), lambda x: x * torch.sigmoid(1.5 * x)),
    "swish beta=-0.5": (lambda x: R.swish(x, _w(-0.5)), lambda x: x * torch.sigmoid(-0.5 * x)),
    "squared_relu": (R.squared_relu, lambda x: torch.clamp(x, min=0) ** 2),
    "snake alpha=0.7": (lambda x: R.snake(x, _w(0.7)), lambda x: x + torch.sin(0.7 * x) ** 2 / 0.7),
    "snake alpha=1e-3": (lambda x: R.snake(x, _w(1e-3)), lambda x: x + torch.sin(1e-3 * x) ** 2 / 1e-3),
}


@pytest.mark.parametrize("name", sorted(NAIVE))
def test_reference_is_the_papers_formula(name: str) -> None:
    ref, naive = NAIVE[name]
    torch.testing.assert_close(ref(X), naive(X), rtol=1e-13, atol=1e-13)


def test_gated_units_gate_the_second_half_as_glu_does() -> None:
    x = torch.randn(5, 8, dtype=torch.float64) * 3
    a, b = x.chunk(2, -1)
    torch.testing.assert_close(R.swiglu(x), a * F.silu(b))
    torch.testing.assert_close(R.geglu(x), a * F.gelu(b))
    y = torch.randn(4, 6, dtype=torch.float64)
    torch.testing.assert_close(R.reglu(y, 0), y[:2] * torch.relu(y[2:]))
    # with the sigmoid as gate the same split is torch's GLU
    torch.testing.assert_close(a * torch.sigmoid(b), F.glu(x))
    with pytest.raises(RuntimeError):
        R.swiglu(torch.ones(4, 5))


def test_snake_alpha_to_zero_is_the_limit_not_nan() -> None:
    """At alpha = 0 the formula is 0/0; the reference gives x, and d/dalpha = x^2 (from x + alpha x^2)."""
    x = torch.tensor([-2.0, -0.5, 0.0, 1.0, 3.0], dtype=torch.float64)
    alpha = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    y = R.snake(x, alpha)
    (g,) = torch.autograd.grad(y.sum(), alpha)
    assert torch.equal(y.detach(), x) and g.item() == pytest.approx((x * x).sum().item(), rel=1e-15)
    near = R.snake(x, torch.full((1,), 1e-8, dtype=torch.float64))
    torch.testing.assert_close(near, x + 1e-8 * x * x, rtol=1e-15, atol=1e-20)


@pytest.mark.parametrize("entry", [a for a in REFERENCED if a.joints(a.resolve(a.cases[0]))], ids=lambda a: a.name)
def test_joints_are_continuously_differentiable(entry: Activation) -> None:
    """The catalogue's joints are not kinks: the one-sided derivatives agree (to O(d)), the second
    derivative jumps (which is why these are joints, where pieces meet)."""
    d, fn = 1e-7, entry.reference
    for k in entry.joints(entry.resolve(entry.cases[0])):
        x = torch.tensor([k - d, k, k + d], dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(fn(x).sum(), x, create_graph=True)
        assert abs(g[0] - g[2]) < 1e-6 and abs(g[1] - g[0]) < 1e-6, (k, g)
        (gg,) = torch.autograd.grad(g.sum(), x)
        assert abs(gg[0] - gg[2]) > 0.4, (k, gg)


def test_limits_at_infinity() -> None:
    e = torch.tensor([INF, -INF], dtype=torch.float64)
    assert R.hardswish_c1(e).tolist() == [INF, 0.0]
    assert R.squared_relu(e).tolist() == [INF, 0.0]
    assert R.swish(e, _w(1.0)).tolist() == [INF, 0.0]
    assert R.swish(e, _w(-2.0)).tolist() == [0.0, -INF]
    assert R.swish(e, _w(0.0)).tolist() == [INF, -INF]  # x / 2
    assert R.snake(e, _w(1.0)).tolist() == [INF, -INF]
    pairs = torch.tensor([[1.5, INF], [1.5, -INF]], dtype=torch.float64)
    for fn in (R.swiglu, R.geglu, R.reglu):
        assert fn(pairs).flatten().tolist() == [INF, 0.0], fn.__name__
    # and the gradients' limits, where they exist: the gate's value
    x = e.clone().requires_grad_()
    (g,) = torch.autograd.grad(R.swish(x, _w(1.0)).sum(), x)
    assert g.tolist() == [1.0, 0.0]
    p = pairs.clone().requires_grad_()
    (g,) = torch.autograd.grad(R.swiglu(p).sum(), p)
    assert g.tolist() == [[INF, 1.5], [0.0, 0.0]]


def _inputs(entry: Activation, values: list[float], dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``values`` as the reference's input: elementwise (one column per channel where the default case
    has channels), or for a gated unit as the second half b, with a = 1.5."""
    if entry.halves:
        return torch.tensor([[1.5, v] for v in values], dtype=dtype)
    return entry.elementwise_tensor(entry.cases[0], values, dtype)


def _apply(entry: Activation, x: torch.Tensor, case: dict | None = None) -> torch.Tensor:
    args, kwargs = entry.functional_arguments(entry.cases[0] if case is None else case, x)
    return entry.reference(x, *args, **kwargs)


@pytest.mark.parametrize("entry", REFERENCED, ids=lambda a: a.name)
def test_references_pass_gradcheck_and_gradgradcheck_on_every_case(entry: Activation) -> None:
    for case in entry.cases:
        x = (torch.rand(tuple(min(s, 4) for s in entry.shape), dtype=torch.float64,
                        generator=torch.Generator().manual_seed(1)) * 8 - 4).requires_grad_()
        args, kwargs = entry.functional_arguments(case, x)
        args = tuple(a.detach().requires_grad_() if isinstance(a, torch.Tensor) else a for a in args)
        tensors = [a for a in args if isinstance(a, torch.Tensor)]

        def f(x, *ts):
            it = iter(ts)
            return entry.reference(x, *(next(it) if isinstance(a, torch.Tensor) else a for a in args), **kwargs)

        assert torch.autograd.gradcheck(f, (x, *tensors))
        assert torch.autograd.gradgradcheck(f, (x, *tensors))


@pytest.mark.parametrize("entry", REFERENCED, ids=lambda a: a.name)
def test_every_reference_takes_its_limits(entry: Activation) -> None:
    """At ±inf the value and the gradient are limits, not the nan of inf * 0 or inf - inf, except at
    the inputs the catalogue lists as having no limit; nan propagates."""
    x = _inputs(entry, [INF, -INF, math.nan]).requires_grad_()
    y = _apply(entry, x)
    (g,) = torch.autograd.grad(y.sum(), x, allow_unused=True)
    g = torch.zeros_like(x) if g is None else g
    out = (y[:, 0] if entry.halves else y.reshape(3, -1)[:, 0]).tolist()
    grad = (g[:, 1] if entry.halves else g.reshape(3, -1)[:, 0]).tolist()
    for v, value, slope in zip((INF, -INF), out, grad):
        if v not in entry.odd_values:
            assert not math.isnan(value), (entry.name, v)
        if v not in entry.odd_grads:
            assert not math.isnan(slope), (entry.name, v)
    assert math.isnan(out[2]), entry.name


@pytest.mark.parametrize("entry", REFERENCED, ids=lambda a: a.name)
def test_half_precision_is_float32_rounded_once(entry: Activation) -> None:
    """The policy the half-precision slack relies on (references.py): what torch's kernels do."""
    x = torch.randn(entry.shape, generator=torch.Generator().manual_seed(0)) * 4
    for dtype in (torch.float16, torch.bfloat16):
        for case in entry.cases:
            h = x.to(dtype)
            args, kwargs = entry.functional_arguments(case, h)
            wide = tuple(a.float() if isinstance(a, torch.Tensor) else a for a in args)
            expected = entry.reference(h.float(), *wide, **kwargs).to(dtype)
            got = entry.reference(h, *args, **kwargs)
            assert got.dtype == dtype and torch.equal(got, expected), (entry.name, case, dtype)


def test_the_generic_tests_fail_a_reference_that_breaks_the_policy() -> None:
    """The three tests above can fail: a reference that rounds after every step, one with inf * 0 at
    -inf, and one whose backward is not its derivative are each caught."""
    entry = BY_NAME["SquaredReLU"]

    def stepwise(input, inplace=False):  # (r + 1/10)^2 - r/5 - 1/100, rounded after every step
        r = torch.clamp(input, min=0)
        return (r + 0.1) * (r + 0.1) - 0.2 * r - 0.01

    def nan_at_minus_inf(input, inplace=False):
        return torch.clamp(input, min=0) * input

    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            return torch.clamp(input, min=0) ** 2

        @staticmethod
        def backward(ctx, g):
            return g

    for fn, test in ((stepwise, test_half_precision_is_float32_rounded_once),
                     (nan_at_minus_inf, test_every_reference_takes_its_limits),
                     (lambda input, inplace=False: Wrong.apply(input),
                      test_references_pass_gradcheck_and_gradgradcheck_on_every_case)):
        with pytest.raises((AssertionError, GradcheckError)):
            test(dataclasses.replace(entry, reference=fn))


def test_references_are_visible_to_a_function_mode() -> None:
    """Like torch.nn.functional, a reference dispatches __torch_function__: the grader's recorder
    sees a submission that calls it."""
    x = torch.randn(4, 6)
    with Recorder() as rec:
        R.swiglu(x)
        R.Snake()(x)
    names = [getattr(f, "__name__", "") for f in rec.calls]
    assert "swiglu" in names and "snake" in names
