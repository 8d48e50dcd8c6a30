"""The checks torch and MLX share, written once: each body computes torch's side (the reference) and
meets the student's code through its framework's :class:`~grader.checks.adapter.Adapter`, which
says how that framework's forms are called, named and seeded. torch's checks
(grader/checks/torch_checks.py) and MLX's (grader/checks/mlx_checks.py) are these bodies bound to
their adapter, under their own names.

Each builder returns a check, a function ``(impl, device) -> notes`` that raises
:class:`CheckFailure` with a one-line message naming the input.
"""
from __future__ import annotations

import math
from typing import Callable, Iterator

import torch

from grader.checks.adapter import Adapter, Case
from grader.checks.compare import (HALF, assert_close, assert_half_close, dtype_name, fmt, locate_elementwise,
                                   locate_index)
from grader.checks.harness import Impl, Notes, compare_grads, observe, student_call, torch_forward, \
    torch_forward_backward
from grader.checks.inputs import edge_input, random_input, seed_of
from grader.core.errors import CheckFailure
from grader.spec.catalog import Activation

CheckBody = Callable[[Impl, str], Notes]


def _random_inputs(adapter: Adapter, impl: Impl, dtype: torch.dtype, device: str,
                   check: str) -> Iterator[tuple[Case, torch.Tensor]]:
    """(case, input) for every case, on each shape the case is graded on."""
    entry = impl.entry
    for case in adapter.cases(impl):
        for shape in adapter.case_shapes(entry, case):
            seed = seed_of(entry.name, adapter.seed_label(check), case.seed, dtype) if shape == entry.shape else \
                seed_of(entry.name, adapter.seed_label(check), case.seed, dtype, shape)
            yield case, random_input(entry, dtype, adapter.device(device), seed, shape)


def _cast(args: tuple, dtype: torch.dtype) -> tuple:
    return tuple(a.to(dtype) if isinstance(a, torch.Tensor) else a for a in args)


def _where(entry: Activation, x: torch.Tensor):
    return locate_elementwise(x) if entry.elementwise else locate_index(x)


def values_check(adapter: Adapter, dtype: torch.dtype) -> CheckBody:
    """Values on seeded random inputs in ``dtype``; half precision against torch and the float64 truth."""
    def check(impl: Impl, device: str) -> Notes:
        entry = impl.entry
        for case, x in _random_inputs(adapter, impl, dtype, device, "values"):
            what = f"{case.label} {dtype_name(dtype)}{adapter.on_input(entry, case, tuple(x.shape))}"
            args, kwargs = entry.functional_arguments(case.torch, x)
            expected = torch_forward(entry, x, args, kwargs)
            got = adapter.forward(impl, what, adapter.functional(impl, case, args, kwargs), x)
            where = _where(entry, x)
            truth = torch_forward(entry, x.double(), _cast(args, torch.float64), kwargs) \
                if expected.dtype in HALF else None
            with adapter.judging(impl, case, dtype, x, got):
                if truth is not None:
                    assert_half_close(got, expected, truth, what, where)
                else:
                    assert_close(got, expected, what, where)
        return []
    return check


def grads_check(adapter: Adapter, dtype: torch.dtype) -> CheckBody:
    """Gradients w.r.t. the input and the tensor arguments on seeded random inputs in ``dtype``."""
    def check(impl: Impl, device: str) -> Notes:
        entry = impl.entry
        notes: Notes = []
        for case, x in _random_inputs(adapter, impl, dtype, device, "grads"):
            what = f"{case.label} {dtype_name(dtype)}{adapter.on_input(entry, case, tuple(x.shape))}"
            args, kwargs = entry.functional_arguments(case.torch, x)
            seed = seed_of(entry.name, adapter.seed_label("up"), case.seed)
            yr, _, gr = torch_forward_backward(entry, x, args, kwargs, seed)
            _, gs = adapter.forward_backward(impl, what, adapter.functional(impl, case, args, kwargs), x, seed, yr)
            truth = None
            if dtype in HALF:
                _, _, truth = torch_forward_backward(entry, x.double(), _cast(args, torch.float64), kwargs, seed)
            with adapter.judging(impl, case, dtype, x, gs[0], gs):
                notes += compare_grads(gs, gr, x, what, _where(entry, x), entry, case.torch, truth=truth)
        return notes
    return check


def edge_skip(entry: Activation, x: torch.Tensor, odd: tuple[float, ...], nan_inputs: bool) -> torch.Tensor:
    """The edge inputs whose values (or gradients) are not graded: the entry's odd points, and nan
    inputs where ``nan_inputs``."""
    xd = x.detach().cpu().double()
    skip = torch.zeros_like(xd, dtype=torch.bool)
    for v in odd:
        skip |= xd == v
    if nan_inputs:
        skip |= xd.isnan()
    if not entry.elementwise and skip.dim() >= 2:
        # a row with a skipped element is skipped whole; (rows, 1, ...) broadcasts over input and output
        skip = skip.reshape(skip.shape[0], -1).any(1).reshape((-1,) + (1,) * (skip.dim() - 1))
    return skip


def edges_check(adapter: Adapter) -> CheckBody:
    """Values and gradients at ±0, ±inf, nan, ±1e4, ±100, ±88.8, ±20, subnormals and the kinks."""
    def check(impl: Impl, device: str) -> Notes:
        entry = impl.entry
        notes: Notes = []
        cases = adapter.cases(impl)
        for case in (cases if entry.elementwise else cases[:1]):
            for dtype in adapter.edge_dtypes:
                x, where = edge_input(entry, case.torch, dtype)
                x = x.to(adapter.device(device))
                args, kwargs = entry.functional_arguments(case.torch, x)
                what = f"{case.label} {dtype_name(dtype)}"
                form = adapter.functional(impl, case, args, kwargs)
                expected = torch_forward(entry, x, args, kwargs)
                got = adapter.forward(impl, what, form, x)
                with adapter.judging(impl, case, dtype, x, got):
                    assert_close(got, expected, what, where, skip=edge_skip(entry, x, entry.odd_values, False))
                seed = seed_of(entry.name, "edge-up")
                yr, _, gr = torch_forward_backward(entry, x, args, kwargs, seed)
                _, gs = adapter.forward_backward(impl, what, form, x, seed, yr)
                skip = edge_skip(entry, x, entry.odd_grads, True)
                with adapter.judging(impl, case, dtype, x, gs[0], gs):
                    notes += compare_grads(gs, gr, x, what, where, entry, case.torch, skip=skip)
        return notes
    return check


def kinks_check(adapter: Adapter) -> CheckBody:
    """At each kink, every form's gradient is a valid subgradient (torch's own choice: a note)."""
    def check(impl: Impl, device: str) -> Notes:
        entry = impl.entry
        notes: Notes = []
        for case in adapter.cases(impl):
            kinks = entry.kinks(entry.resolve(case.torch))
            if not kinks:
                continue
            for dtype in adapter.kink_dtypes:
                x = entry.elementwise_tensor(case.torch, kinks, dtype).to(adapter.device(device))
                where = locate_elementwise(x)
                what = f"{case.label} {dtype_name(dtype)}"
                seed = seed_of("kinks")
                args, kwargs = entry.functional_arguments(case.torch, x)
                yr, _, gr = torch_forward_backward(entry, x, args, kwargs, seed)
                for form in adapter.kink_forms(impl, case, x, args, kwargs):
                    _, gs = adapter.forward_backward(impl, f"{form.prefix}{what}", form, x, seed, yr)
                    with adapter.judging(impl, case, dtype, x, gs[0], gs, form.name):
                        notes += compare_grads(gs, gr, x, f"{form.prefix}{what}", where, entry, case.torch)
        return notes
    return check


def random_check(adapter: Adapter) -> CheckBody:
    """RReLU in training: a slope per element, uniform in [lower, upper]; its gradient is that slope;
    a new module is in training mode."""
    def check(impl: Impl, device: str) -> Notes:
        entry = impl.entry
        n = 20000
        dev = adapter.device(device)
        for case in adapter.cases(impl):
            p = entry.resolve(case.torch)
            lower, upper = p["lower"], p["upper"]
            what = adapter.random_label(impl, case, p)
            # its own generator: the parent judges several submissions at once, in threads
            gen = torch.Generator().manual_seed(seed_of(adapter.seed_label("random"), case.seed) % 2 ** 31)
            x = -torch.rand(n, dtype=torch.float64, generator=gen).to(dev) - 0.5  # negative: slope = y / x
            x = torch.cat([x, torch.tensor([2.0, 0.5], dtype=torch.float64, device=dev)])
            for form in adapter.random_forms(impl, case, p):
                # the upstream gradient is ones (RReLU is elementwise): x gives it its shape
                y, (g,) = adapter.forward_backward(impl, f"{form.prefix}{what}", form, x, 0, x)
                check_slopes(adapter.widened(y), x, adapter.widened(g), lower, upper, f"{form.prefix}{what}", n)
            # no .train(): a module is constructed in training mode (torch's RReLU() draws random
            # slopes), unlike the functional form, whose training defaults to False
            label = adapter.module_label(impl, case)
            module = student_call(label, adapter.module_class(impl), **adapter.module_kwargs(impl, case))
            if observe(f"{label}.training", lambda: getattr(module, "training", None)) is not True:
                raise CheckFailure(f"{label}: a new module is not in training mode{adapter.untrained}")
            ym = adapter.call_module(f"{label} in training mode", module, x, label)
            slopes = (adapter.widened(ym[:n]) / x[:n]).detach()
            if float(slopes.std()) < 0.1 * (upper - lower) / math.sqrt(12):
                raise CheckFailure(f"{label} in training mode: slopes do not vary between elements: "
                                   f"does {adapter.compute_method} use self.training?")
        return []
    return check


def _float32(v: float) -> float:
    return float(torch.tensor(v, dtype=torch.float32))


def check_slopes(y: torch.Tensor, x: torch.Tensor, g: torch.Tensor, lower: float, upper: float,
                 what: str, n: int) -> None:
    """RReLU's answer on ``n`` negative inputs, then positive ones: the slopes are uniform in
    [lower, upper] and the gradient is each element's own slope."""
    y = y.detach()
    assert_close(y[n:], x[n:], f"{what}: positive inputs", locate_elementwise(x[n:]))
    slopes = y[:n] / x[:n]
    # slopes drawn in float32 (MLX's default dtype) can be float32's nearest value of a bound, just
    # outside it (0.3 is 0.30000001 in float32): mx.random.uniform(0.1, 0.3, (20000,)) drew it in 4 of
    # 3,000 tries, each a correct answer that lost a point
    eps = 1e-9
    low, high = min(lower, _float32(lower)) - eps, max(upper, _float32(upper)) + eps
    if bool((slopes < low).any()) or bool((slopes > high).any()):
        bad = slopes[(slopes < low) | (slopes > high)][0].item()
        raise CheckFailure(f"{what}: a negative slope is {fmt(bad)}, outside [{fmt(lower)}, {fmt(upper)}]")
    mean, sd = float(slopes.mean()), (upper - lower) / math.sqrt(12)
    if abs(mean - (lower + upper) / 2) > 5 * sd / math.sqrt(n):
        raise CheckFailure(f"{what}: mean slope {fmt(mean)}, expected {fmt((lower + upper) / 2)} "
                           f"(uniform in [{fmt(lower)}, {fmt(upper)}])")
    # Kolmogorov-Smirnov distance to the uniform distribution (critical value at 1e-6: 2.7 / sqrt(n))
    u = ((slopes - lower) / (upper - lower)).sort().values
    ecdf = torch.arange(1, n + 1, dtype=u.dtype, device=u.device) / n
    ks = float(torch.maximum((ecdf - u).abs(), (ecdf - 1 / n - u).abs()).max())
    if ks > 2.7 / math.sqrt(n):
        raise CheckFailure(f"{what}: slopes are not uniform in [{fmt(lower)}, {fmt(upper)}] "
                           f"(Kolmogorov-Smirnov distance {ks:.3f})")
    assert_close(g.detach()[:n], slopes, f"{what}: grad (must be each element's own slope)",
                 locate_elementwise(x[:n]), kind="grad")


def api_check(adapter: Adapter) -> CheckBody:
    """Names defined, signatures and defaults, and every form runs."""
    def check(impl: Impl, device: str) -> Notes:
        adapter.check_signatures(impl)
        # every form must run: a stub that raises NotImplementedError earns nothing here either
        for case in adapter.api_cases(impl):
            x = random_input(impl.entry, torch.float32, "cpu", seed_of(adapter.seed_label("api")),
                             adapter.api_shape(impl.entry))
            for what, form in adapter.api_forms(impl, case, x):
                adapter.forward(impl, what, form, x)
        return []
    return check


def forbidden_check(adapter: Adapter) -> CheckBody:
    """The implementation must not call what computes the activation itself (what is watched is the
    framework's: torch's ops and API, mlx.nn's activations and mlx.core's own)."""
    def check(impl: Impl, device: str) -> Notes:
        for what, culprit in adapter.forbidden_calls(impl, device):
            if culprit:
                raise CheckFailure(f"{what}: calls {culprit}: {adapter.forbidden_advice}")
        return []
    return check


def vectorised_check(adapter: Adapter) -> CheckBody:
    """What the framework runs must not grow with the input: no Python loop over elements."""
    def check(impl: Impl, device: str) -> Notes:
        entry = impl.entry
        case = adapter.cases(impl)[0]
        counts = []
        for shape in entry.vector_shapes:
            x = random_input(entry, torch.float32, adapter.device(device), seed_of("vector", shape), shape)
            counts.append(adapter.count_ops(impl, case, x))
        small, large = entry.vector_shapes
        n_small, n_large = math.prod(small), math.prod(large)
        if counts[1] > counts[0]:
            raise CheckFailure(f"{case.label}: {adapter.ops_counted.format(count=counts[0])} on {n_small} elements "
                               f"but {counts[1]:,} on {n_large:,}: a Python loop over elements? "
                               f"Use {adapter.vector_ops}")
        return []
    return check
