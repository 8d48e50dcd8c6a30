"""The grader's checks: each compares one aspect of a student's activation with torch's.

A check is a function ``(impl, device) -> notes``: it returns notes (shown, never costing marks) or
raises :class:`CheckFailure` with a one-line message naming the input. ``CHECKS`` lists them; the
pytest suite (``grader/run/suite.py``) parametrises over catalogue entries x checks x devices.
"""
from __future__ import annotations

import inspect
import math
from typing import Callable

import torch

from grader.spec.catalog import REQUIRED, Activation, format_params, quiet_implicit_dim
from grader.checks.compare import (HALF, assert_close, assert_half_close, dtype_name, fmt, locate_elementwise,
                                   locate_index)
from grader.core.errors import CheckFailure, one_line
from grader.checks.recorder import Recorder, resolve
from grader.checks.base import Check
from grader.checks.harness import (Impl, Notes, about, compare_grads, fmt_arg, forward_backward, observe,
                                   on_input, student_call, torch_forward, torch_forward_backward)
from grader.checks.inputs import edge_input, noncontiguous, random_input, seed_of, upstream_for

# ---------------------------------------------------------------------------------- the checks

def check_api(impl: Impl, device: str) -> Notes:
    """Names defined, signatures and defaults as torch's, and every form runs."""
    entry = impl.entry
    if entry.functional:
        fn = impl.functional()
        expected = entry.functional_signature()
        got = _signature(entry.functional, lambda: fn)
        if [n for n, _ in got] != [n for n, _ in expected] or any(
                not _same_default(a, b) for (_, a), (_, b) in zip(got, expected)):
            raise CheckFailure(f"{entry.functional}{_sig_str(got)}: torch's signature is "
                               f"{entry.functional}{_sig_str(expected)}")
    cls = impl.module_class()
    torch_params = inspect.signature(entry.torch_module().__init__).parameters
    params = dict(_signature(f"{entry.name}.__init__", lambda: cls.__init__))
    wanted = [n for n in entry.module_args(entry.cases[0])] + (["inplace"] if entry.inplace else [])
    for name in wanted:
        if name not in params:
            raise CheckFailure(f"{entry.name}.__init__ has no parameter {name!r} (torch: {entry.name}{_init_str(torch_params)})")
        if not _same_default(params[name], torch_params[name].default):
            raise CheckFailure(f"{entry.name}.__init__: default {name}={_default_text(params[name])}, "
                               f"torch's is {_default_text(torch_params[name].default)}")
    impl.function_class()
    # every form must run: a stub that raises NotImplementedError earns nothing here either
    case = entry.cases[0]
    x = random_input(entry, torch.float32, "cpu", seed_of("api"), entry.vector_shapes[0])
    args, kwargs = entry.functional_arguments(case, x)
    student_call(entry.describe(case), impl.functional(), x.clone(), *args, **kwargs)
    student_call(entry.function_name, impl.function(), x.clone(), *entry.function_arguments(case, x))
    student_call(f"{entry.name} module", impl.make_module(case), x.clone())
    return []


_NO_DEFAULT = "<no default>"


def _signature(label: str, target: Callable[[], object]) -> list[tuple[str, object]]:
    """(name, default) of a student function's parameters; ``inspect.Parameter.empty`` for none."""
    def read() -> list:
        try:
            params = inspect.signature(target()).parameters.values()
        except (TypeError, ValueError):
            raise CheckFailure(f"{label}: has no inspectable signature") from None
        return [[p.name, _NO_DEFAULT if p.default is inspect.Parameter.empty else p.default] for p in params]

    return [(n, inspect.Parameter.empty if isinstance(d, str) and d == _NO_DEFAULT else d)
            for n, d in observe(f"signature of {label}", read)]


def _same_default(a: object, b: object) -> bool:
    if a is inspect.Parameter.empty or b is inspect.Parameter.empty:
        return a is b
    return type(a) is type(b) and a == b or (isinstance(a, (int, float)) and isinstance(b, (int, float))
                                             and not isinstance(a, bool) and not isinstance(b, bool) and a == b)


def _default_text(v: object) -> str:
    return "<required>" if v is inspect.Parameter.empty else repr(v)


def _sig_str(params: list) -> str:
    return f"({format_params(params)})"


def _init_str(params) -> str:
    return _sig_str([(p.name, p.default) for p in params.values() if p.name != "self"])


def _values(dtype: torch.dtype) -> Callable[[Impl, str], Notes]:
    def check(impl: Impl, device: str) -> Notes:
        entry = impl.entry
        for case, x in _random_inputs(entry, dtype, device, "values"):
            what = f"{entry.describe(case)} {dtype_name(dtype)}{on_input(entry, case, tuple(x.shape))}"
            args, kwargs = entry.functional_arguments(case, x)
            expected = torch_forward(entry, x, args, kwargs)
            got = student_call(what, impl.functional(), x.clone(), *args, **kwargs)
            where = locate_elementwise(x) if entry.elementwise else locate_index(x)
            with about(case, dtype):
                if expected.dtype in HALF:
                    truth = torch_forward(entry, x.double(), _cast(args, torch.float64), kwargs)
                    assert_half_close(got, expected, truth, what, where)
                else:
                    assert_close(got, expected, what, where)
        return []
    return check


def _random_inputs(entry: Activation, dtype: torch.dtype, device: str, check: str):
    """(case, input) for every case, on each shape the case is graded on."""
    for case in entry.cases:
        for shape in entry.case_shapes(case):
            seed = seed_of(entry.name, check, case, dtype) if shape == entry.shape else \
                seed_of(entry.name, check, case, dtype, shape)
            yield case, random_input(entry, dtype, device, seed, shape)


def _cast(args: tuple, dtype: torch.dtype) -> tuple:
    return tuple(a.to(dtype) if isinstance(a, torch.Tensor) else a for a in args)


def _grads(dtype: torch.dtype) -> Callable[[Impl, str], Notes]:
    def check(impl: Impl, device: str) -> Notes:
        entry = impl.entry
        notes: Notes = []
        for case, x in _random_inputs(entry, dtype, device, "grads"):
            what = f"{entry.describe(case)} {dtype_name(dtype)}{on_input(entry, case, tuple(x.shape))}"
            args, kwargs = entry.functional_arguments(case, x)
            seed = seed_of(entry.name, "up", case)
            _, _, gr = torch_forward_backward(entry, x, args, kwargs, seed)
            _, _, gs = forward_backward(what, impl.functional(), x, args, kwargs, seed, entry)
            where = locate_elementwise(x) if entry.elementwise else locate_index(x)
            truth = None
            if dtype in HALF:
                _, _, truth = torch_forward_backward(entry, x.double(), _cast(args, torch.float64), kwargs, seed)
            with about(case, dtype):
                notes += compare_grads(gs, gr, x, what, where, entry, case, truth=truth)
        return notes
    return check


def edge_skip(entry: Activation, x: torch.Tensor, odd: tuple[float, ...], nan_inputs: bool) -> torch.Tensor:
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


def check_edges(impl: Impl, device: str) -> Notes:
    """Values and gradients at ±0, ±inf, nan, ±1e4, ±100, ±88.8, ±20, subnormals and the kinks."""
    entry = impl.entry
    notes: Notes = []
    cases = entry.cases[:1] if not entry.elementwise else entry.cases
    for case in cases:
        for dtype in (torch.float32, torch.float64):
            x, where = edge_input(entry, case, dtype)
            x = x.to(device)
            args, kwargs = entry.functional_arguments(case, x)
            what = f"{entry.describe(case)} {dtype_name(dtype)}"
            expected = torch_forward(entry, x, args, kwargs)
            got = student_call(what, impl.functional(), x.clone(), *args, **kwargs)
            with about(case, dtype):
                assert_close(got, expected, what, where, skip=edge_skip(entry, x, entry.odd_values, False))
            seed = seed_of(entry.name, "edge-up")
            _, _, gr = torch_forward_backward(entry, x, args, kwargs, seed)
            _, _, gs = forward_backward(what, impl.functional(), x, args, kwargs, seed, entry)
            skip = edge_skip(entry, x, entry.odd_grads, True)
            with about(case, dtype):
                notes += compare_grads(gs, gr, x, what, where, entry, case, skip=skip)
    return notes


def check_kinks(impl: Impl, device: str) -> Notes:
    """At each kink, functional and Function gradients are valid subgradients (torch's choice: a note)."""
    entry = impl.entry
    notes: Notes = []
    for case in entry.cases:
        kinks = entry.kinks(entry.resolve(case))
        if not kinks:
            continue
        for dtype in (torch.float64, torch.float32):
            x = entry.elementwise_tensor(case, kinks, dtype).to(device)
            where = locate_elementwise(x)
            what = f"{entry.describe(case)} {dtype_name(dtype)}"
            seed = seed_of("kinks")
            args, kwargs = entry.functional_arguments(case, x)
            _, _, gr = torch_forward_backward(entry, x, args, kwargs, seed)
            _, _, gs = forward_backward(what, impl.functional(), x, args, kwargs, seed, entry)
            with about(case, dtype):
                notes += compare_grads(gs, gr, x, what, where, entry, case)
            fargs = entry.function_arguments(case, x)
            _, _, gf = forward_backward(f"{entry.function_name} {what}", impl.function(), x, fargs, {}, seed, entry)
            with about(case, dtype, "function"):
                notes += compare_grads(gf, gr, x, f"{entry.function_name} {what}", where, entry, case)
    return notes


def check_shapes(impl: Impl, device: str) -> Notes:
    """0-d, empty, 1-D and non-contiguous inputs: same shape, values and gradients as torch."""
    entry = impl.entry
    for case in entry.shape_cases or entry.cases[:1]:
        for n, shape in enumerate(entry.shapes):
            x = random_input(entry, torch.float32, device, seed_of(entry.name, "shape", shape), shape)
            label = "0-d" if not shape else ("empty" if 0 in shape else f"{len(shape)}-D")
            if n == len(entry.shapes) - 1 and len(shape) >= 2:
                x, label = noncontiguous(x), f"non-contiguous {len(shape)}-D"
            dim = entry.implicit_dim(case, x.dim())
            what = f"{entry.describe(case)} on a {label} input {tuple(shape)}" + \
                ("" if dim is None else f", where torch's dim=None is dim={dim}")
            args, kwargs = entry.functional_arguments(case, x)
            seed = seed_of("shape-up", shape)
            yr, _, gr = torch_forward_backward(entry, x, args, kwargs, seed)
            ys, _, gs = forward_backward(what, impl.functional(), x, args, kwargs, seed, entry)
            assert_close(ys, yr, what, locate_index(x))
            compare_grads(gs, gr, x, what, locate_index(x), entry, case)
            module = impl.make_module(case)
            ym = student_call(f"{entry.name} module {what}", module, x.clone())
            assert_close(ym, yr, f"{entry.name} module {what}", locate_index(x))
    return []


def check_module(impl: Impl, device: str) -> Notes:
    """Constructor, attributes, repr, state_dict, forward and gradients (PReLU: weight too)."""
    entry = impl.entry
    cls, torch_cls = impl.module_class(), entry.torch_module()
    if all(p.default is not REQUIRED for p in entry.params):
        mine = student_call(f"{entry.name}()", cls)
        shown = observe(f"repr({entry.name}())", lambda: repr(mine))
        if shown != repr(torch_cls()):
            raise CheckFailure(f"{entry.name}(): repr is {shown!r}, torch's is {repr(torch_cls())!r}")
    cases = list(entry.cases) + ([{**entry.cases[0], "inplace": True}] if entry.inplace else [])
    for case in cases:
        kwargs = entry.module_args({k: v for k, v in case.items() if k != "inplace"})
        if case.get("inplace"):
            kwargs["inplace"] = True
        label = f"{entry.name}({', '.join(f'{k}={fmt_arg(v)}' for k, v in kwargs.items())})"
        mine = student_call(label, cls, **kwargs)
        theirs = torch_cls(**kwargs)
        shown = observe(f"repr({label})", lambda: repr(mine))
        if shown != repr(theirs):
            raise CheckFailure(f"{label}: repr is {shown!r}, torch's is {repr(theirs)!r}")
        for name in kwargs:
            if not hasattr(theirs, name):
                continue
            value = observe(f"{label}.{name}", lambda: getattr(mine, name, "<missing>"))
            if value != getattr(theirs, name):
                raise CheckFailure(f"{label}: attribute {name} is {value!r}, torch's is {getattr(theirs, name)!r}")
        sd_mine, sd_theirs = observe(f"{label}.state_dict()", lambda: dict(mine.state_dict())), theirs.state_dict()
        if list(sd_mine) != list(sd_theirs):
            raise CheckFailure(f"{label}: state_dict keys are {list(sd_mine)}, torch's are {list(sd_theirs)}")
        for key in sd_theirs:
            assert_close(sd_mine[key], sd_theirs[key], f"{label}: state_dict[{key!r}]", locate_index(sd_theirs[key]))
        observe(f"{label}.to({device})", lambda: (mine.to(device), entry.random and mine.eval()) and None)
        theirs.to(device)
        if entry.random:
            theirs.eval()
        if case.get("inplace"):
            continue  # in-place behaviour has its own check
        for shape in entry.case_shapes(case):
            seed = seed_of(entry.name, "module", case) if shape == entry.shape else \
                seed_of(entry.name, "module", case, shape)
            _module_forward_backward(mine, theirs, random_input(entry, torch.float32, device, seed, shape),
                                     label, on_input(entry, case, shape), entry)
    return []


def _module_forward_backward(mine: torch.nn.Module, theirs: torch.nn.Module, x: torch.Tensor, label: str,
                             on: str, entry: Activation) -> None:
    """The student's module and torch's on the same input: output, and gradients w.r.t. the input and
    the parameters (PReLU's weight). ``on`` names the input where torch picks the dim from it."""
    xs, xt = x.clone().requires_grad_(), x.clone().requires_grad_()
    ys = student_call(f"{label} forward{on}", mine, xs)
    with quiet_implicit_dim():
        yt = theirs(xt)
    assert_close(ys, yt, f"{label} forward{on}", locate_elementwise(x) if entry.elementwise else locate_index(x))
    up = upstream_for(entry, yt, seed_of("module-up"))
    if not ys.requires_grad:
        raise CheckFailure(f"{label}{on}: the output does not require grad")
    params_m = observe(f"{label}.parameters()", lambda: list(mine.parameters()))
    params_t = list(theirs.parameters())
    gs = student_call(f"{label} backward{on}", torch.autograd.grad, ys, [xs] + params_m, up, allow_unused=True)
    gt = torch.autograd.grad(yt, [xt] + params_t, up)
    for i, (a, b) in enumerate(zip(gs, gt)):
        name = "input" if i == 0 else f"parameter {list(dict(theirs.named_parameters()))[i - 1]}"
        if a is None:
            raise CheckFailure(f"{label}{on}: no gradient w.r.t. {name}")
        assert_close(a, b, f"{label}{on} grad w.r.t. {name}", locate_index(b), kind="grad")


def check_function(impl: Impl, device: str) -> Notes:
    """``<Module>Function``: forward values and the hand-derived backward, on random and edge inputs."""
    entry = impl.entry
    fn = impl.function()
    notes: Notes = []
    for n, case in enumerate(entry.function_cases):
        for dtype in (torch.float64, torch.float32):
            what = f"{entry.function_name} {entry.describe(case)} {dtype_name(dtype)}"
            x = random_input(entry, dtype, device, seed_of(entry.name, "function", case, dtype))
            args, kwargs = entry.functional_arguments(case, x)
            seed = seed_of("function-up", case)
            yr, _, gr = torch_forward_backward(entry, x, args, kwargs, seed)
            ys, _, gs = forward_backward(what, fn, x, entry.function_arguments(case, x), {}, seed, entry)
            where = locate_elementwise(x) if entry.elementwise else locate_index(x)
            assert_close(ys, yr, what, where)
            notes += compare_grads(gs, gr, x, what, where, entry, case)
        if n and not entry.elementwise:
            continue  # edge rows are laid out for the first case's dim
        x, where = edge_input(entry, case, torch.float32)
        x = x.to(device)
        what = f"{entry.function_name} {entry.describe(case)} float32"
        args, kwargs = entry.functional_arguments(case, x)
        seed = seed_of("function-edge-up")
        _, _, gr = torch_forward_backward(entry, x, args, kwargs, seed)
        _, _, gs = forward_backward(what, fn, x, entry.function_arguments(case, x), {}, seed, entry)
        notes += compare_grads(gs, gr, x, what, where, entry, case, skip=edge_skip(entry, x, entry.odd_grads, True))
    return notes


def _away_from_kinks(entry: Activation, case: dict, x: torch.Tensor) -> torch.Tensor:
    for k in entry.kinks(entry.resolve(case)):
        x = torch.where((x - k).abs() < 0.05, x + 0.1, x)
    return x


def check_gradcheck(impl: Impl, device: str) -> Notes:
    """torch.autograd.gradcheck (Function, functional) and gradgradcheck (functional), float64, off kinks."""
    entry = impl.entry
    small = tuple(min(s, 4) for s in entry.shape)
    for case in entry.cases:
        x = random_input(entry, torch.float64, device, seed_of(entry.name, "gradcheck", case), small)
        x = _away_from_kinks(entry, case, x).requires_grad_()
        fargs = entry.function_arguments(case, x)
        args, kwargs = entry.functional_arguments(case, x)
        fn, functional = impl.function(), impl.functional()
        tensors = tuple(a.detach().clone().requires_grad_() for a in fargs if isinstance(a, torch.Tensor))

        def with_tensors(f, extra, kw):
            def call(x, *ts):
                it = iter(ts)
                return f(x, *(next(it) if isinstance(a, torch.Tensor) else a for a in extra), **kw)
            return call

        runs = [(f"{entry.function_name} {entry.describe(case)}", "gradcheck", with_tensors(fn, fargs, {})),
                (f"{entry.describe(case)}", "gradcheck", with_tensors(functional, args, kwargs))]
        # on the student's functional, whatever torch supports (torch's hardsigmoid has no gradgrad)
        runs.append((f"{entry.describe(case)}", "gradgradcheck", with_tensors(functional, args, kwargs)))
        for what, kind, f in runs:
            checker = getattr(torch.autograd, kind)
            try:
                student_call(what, checker, f, (x,) + tensors, eps=1e-6, atol=1e-5, rtol=1e-3)
            except CheckFailure as exc:
                msg = str(exc)
                if "GradcheckError" in msg:
                    detail = msg.split("GradcheckError:", 1)[1].strip()
                    raise CheckFailure(f"{what}: {kind} failed in float64: {detail}") from None
                raise
    return []


def check_inplace(impl: Impl, device: str) -> Notes:
    """``inplace=False`` (and functions without it) never modify the input; ``inplace=True`` modifies
    it and returns it, as torch does."""
    entry = impl.entry
    case = entry.cases[0]
    x = random_input(entry, torch.float32, device, seed_of(entry.name, "inplace"))
    args, kwargs = entry.functional_arguments(case, x)
    expected = torch_forward(entry, x, args, kwargs)
    where = locate_elementwise(x) if entry.elementwise else locate_index(x)
    forms = [(f"{entry.describe(case)}", lambda t: impl.functional()(t, *args, **kwargs))]
    forms.append((f"{entry.name} module", lambda t: impl.make_module(case)(t)))
    if entry.inplace:
        forms.append((f"{entry.describe(case)} with inplace=False",
                      lambda t: impl.functional()(t, *args, **{**kwargs, "inplace": False})))
    for what, call in forms:
        _, after, _ = student_call(what, _with_input_after, call, x.clone())
        if not torch.equal(after, x) and not (after.isnan() & x.isnan()).any():
            raise CheckFailure(f"{what}: modified its input; only inplace=True may")
    if not entry.inplace:
        return []
    kw = {**kwargs, "inplace": True}
    for what, call in [(f"{entry.slug}(..., inplace=True)", lambda t: impl.functional()(t, *args, **kw)),
                       (f"{entry.name}(inplace=True)",
                          lambda t: impl.make_module(case, inplace=True)(t))]:
        _, after, same = student_call(what, _with_input_after, call, x.clone())
        if not same:
            raise CheckFailure(f"{what}: must return its input tensor, modified in place")
        assert_close(after, expected, f"{what}: the input after the call", where)
    return []


def _with_input_after(call: Callable, t: torch.Tensor) -> tuple:
    """Run ``call(t)``; return its output, ``t`` as it is afterwards, and whether the output is ``t``."""
    out = call(t)
    same = isinstance(out, torch.Tensor) and out.data_ptr() == t.data_ptr() and out.shape == t.shape
    return (out if isinstance(out, torch.Tensor) else None), t.detach().clone(), same


def check_invalid(impl: Impl, device: str) -> Notes:
    """Invalid arguments raise the exception torch raises."""
    entry = impl.entry
    for bad in entry.invalid:
        x = random_input(entry, torch.float32, device, seed_of("invalid"), bad.shape)
        args, kwargs = entry.functional_arguments(bad.kwargs, x) if entry.functional else ((), {})
        label = (f"{entry.slug}({', '.join(f'{k}={fmt_arg(v)}' for k, v in bad.kwargs.items())}) "
                 f"on a {tuple(bad.shape)} input")
        def attempt() -> str:
            try:
                impl.functional()(x, *args, **kwargs)
            except NotImplementedError:
                return "not implemented (raises NotImplementedError)"
            except bad.raises:
                return ""
            except Exception as exc:
                return f"raised {one_line(exc)}; torch raises {bad.raises.__name__}"
            return f"returned a result; torch raises {bad.raises.__name__}"

        outcome = observe(label, attempt)
        if outcome:
            raise CheckFailure(f"{label}: {outcome}")
    return []


def check_random(impl: Impl, device: str) -> Notes:
    """RReLU in training: a slope per element, uniform in [lower, upper]; its gradient is that slope."""
    entry = impl.entry
    n = 20000
    for case in entry.cases:
        p = entry.resolve(case)
        lower, upper = p["lower"], p["upper"]
        what = f"{entry.describe({**case, 'training': True})}"
        # its own generator: the parent judges several submissions at once, in threads
        gen = torch.Generator().manual_seed(seed_of("random", case) % 2 ** 31)
        x = -torch.rand(n, dtype=torch.float64, generator=gen).to(device) - 0.5  # negative: slope = y / x
        x = torch.cat([x, torch.tensor([2.0, 0.5], dtype=torch.float64, device=device)])
        y, xs, (g,) = forward_backward(what, impl.functional(), x, (), {**p, "training": True}, 0, entry)
        check_slopes(y, x, g, lower, upper, what, n)
        y, xs, (g,) = forward_backward(f"{entry.function_name} {what}", impl.function(), x,
                                       (lower, upper, True), {}, 0, entry)
        check_slopes(y, x, g, lower, upper, f"{entry.function_name} {what}", n)
        # no .train(): a module is constructed in training mode (torch's RReLU() draws random
        # slopes), unlike the functional form, whose training defaults to False
        label = f"{entry.name}({', '.join(f'{k}={fmt_arg(v)}' for k, v in entry.module_args(case).items())})"
        module = student_call(label, impl.module_class(), **entry.module_args(case))
        if observe(f"{label}.training", lambda: getattr(module, "training", None)) is not True:
            raise CheckFailure(f"{label}: a new module is not in training mode; torch's is (module.training is True)")
        ym = student_call(f"{label} in training mode", module, x)
        slopes = (ym[:n] / x[:n]).detach()
        if float(slopes.std()) < 0.1 * (upper - lower) / math.sqrt(12):
            raise CheckFailure(f"{label} in training mode: slopes do not vary between elements: "
                               f"does forward use self.training?")
    return []


def check_slopes(y: torch.Tensor, x: torch.Tensor, g: torch.Tensor, lower: float, upper: float,
                  what: str, n: int) -> None:
    y = y.detach()
    assert_close(y[n:], x[n:], f"{what}: positive inputs", locate_elementwise(x[n:]))
    slopes = y[:n] / x[:n]
    eps = 1e-9
    if bool((slopes < lower - eps).any()) or bool((slopes > upper + eps).any()):
        bad = slopes[(slopes < lower - eps) | (slopes > upper + eps)][0].item()
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


def forbidden(entry: Activation) -> tuple[set[str], set[str]]:
    """ATen op names and names of torch callables that compute the activation itself."""
    funcs = [resolve(f) for f in entry.forbidden_functions]
    if entry.functional:
        funcs.append(entry.torch_functional())
        for mod in (torch, torch.Tensor):
            if hasattr(mod, entry.functional):
                funcs.append(getattr(mod, entry.functional))
    return set(entry.forbidden_ops), {callable_name(f) for f in funcs}


def callable_name(f: object) -> str:
    module = getattr(f, "__module__", None) or ""
    name = getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or repr(f)
    return f"{module}.{name}".lstrip(".")


def _record(impl: Impl, case: dict, x: torch.Tensor) -> tuple[dict[str, int], list[str]]:
    """Run every form once: the ATen ops dispatched (with counts) and the torch API calls made."""
    entry = impl.entry

    def run() -> tuple[dict[str, int], list[str]]:
        args, kwargs = entry.functional_arguments(case, x)
        fargs = entry.function_arguments(case, x)
        module = impl.make_module(case)
        with Recorder() as rec:
            forward_backward(entry.describe(case), impl.functional(), x, args, kwargs, 0, entry)
            forward_backward(entry.function_name, impl.function(), x, fargs, {}, 0, entry)
            student_call(f"{entry.name} module", module, x)
        return dict(rec.ops), [callable_name(f) for f in rec.calls]

    return impl.observe(f"record {entry.describe(case)} on {tuple(x.shape)}", run)


def check_forbidden(impl: Impl, device: str) -> Notes:
    """The implementation must not call the op it implements (seen at the ATen and API levels)."""
    entry = impl.entry
    ops, funcs = forbidden(entry)
    for case in entry.cases:
        x = random_input(entry, torch.float32, device, seed_of("forbidden"))
        recorded_ops, calls = _record(impl, case, x)
        used = sorted(op for op in recorded_ops if op in ops)
        if used:
            raise CheckFailure(f"{entry.describe(case)}: calls torch's own aten.{used[0]}: write it from scratch")
        called = [name for name in calls if name in funcs]
        if called:
            whose = "the grader's reference" if called[0].startswith("grader.") else "torch's"
            raise CheckFailure(f"{entry.describe(case)}: calls {whose} {called[0]}: write it from scratch")
    return []


def check_vectorised(impl: Impl, device: str) -> Notes:
    """The number of dispatched ops must not grow with the input: no Python loop over elements."""
    entry = impl.entry
    case = entry.cases[0]
    counts = []
    for shape in entry.vector_shapes:
        x = random_input(entry, torch.float32, device, seed_of("vector", shape), shape)
        counts.append(sum(_record(impl, case, x)[0].values()))
    small, large = entry.vector_shapes
    n_small, n_large = math.prod(small), math.prod(large)
    if counts[1] > counts[0]:
        raise CheckFailure(f"{entry.describe(case)}: dispatches {counts[0]} torch ops on {n_small} elements but "
                           f"{counts[1]:,} on {n_large:,}: a Python loop over elements? Use tensor ops")
    return []


CHECKS: tuple[Check, ...] = (
    Check("api", check_api, per_device=False),
    *(Check(f"values[{dtype_name(d)}]", _values(d)) for d in (torch.float64, torch.float32, *HALF)),
    *(Check(f"grad[{dtype_name(d)}]", _grads(d)) for d in (torch.float64, torch.float32, *HALF)),
    Check("edges", check_edges),
    Check("kinks", check_kinks, applies=lambda e: any(e.kinks(e.resolve(c)) for c in e.cases)),
    Check("shapes", check_shapes),
    Check("module", check_module),
    Check("function", check_function),
    Check("gradcheck", check_gradcheck, per_device=False),
    Check("inplace", check_inplace),
    Check("invalid", check_invalid, per_device=False, applies=lambda e: bool(e.invalid)),
    Check("random", check_random, per_device=False, applies=lambda e: e.random),
    Check("forbidden", check_forbidden, per_device=False),
    Check("vectorised", check_vectorised, per_device=False),
)


def checks_for(entry: Activation, devices: list[str]) -> list[tuple[Check, str]]:
    out = []
    for device in devices:
        for check in CHECKS:
            if check.applies(entry) and (device == "cpu" or check.per_device):
                out.append((check, device))
    return out

