"""torch's checks: each compares one aspect of a student's activation with torch's.

A check is a function ``(impl, device) -> notes``: it returns notes (shown, never costing marks) or
raises :class:`CheckFailure` with a one-line message naming the input. ``CHECKS`` lists them; the
pytest suite (``grader/run/suite.py``) parametrises over catalogue entries x checks x devices.

What torch shares with MLX (api, values, gradients, edges, kinks, random, forbidden, vectorised) is
written once in grader/checks/shared_checks.py and bound here to torch's adapter
(grader/checks/torch_adapter.py); the checks below are torch's own: shapes, the module's repr,
attributes and state_dict, the autograd Function, gradcheck, in-place, invalid arguments.
"""
from __future__ import annotations

from typing import Callable

import torch

from grader.spec.catalog import REQUIRED, Activation, quiet_implicit_dim
from grader.checks.compare import assert_close, dtype_name, locate_elementwise, locate_index
from grader.core.errors import CheckFailure, one_line
from grader.checks.base import Check
from grader.checks.harness import (Impl, Notes, compare_grads, fmt_arg, forward_backward, observe, on_input,
                                   student_call, torch_forward, torch_forward_backward, torch_vjp)
from grader.checks.inputs import edge_input, noncontiguous, random_input, seed_of, upstream_for
from grader.checks.shared_checks import (api_check, edge_skip, edges_check, forbidden_check, grads_check,
                                         kinks_check, random_check, values_check, vectorised_check)
from grader.checks.torch_adapter import TORCH_ADAPTER

# ---------------------------------------------------------------------------------- shared with MLX

check_api = api_check(TORCH_ADAPTER)
check_edges = edges_check(TORCH_ADAPTER)
check_kinks = kinks_check(TORCH_ADAPTER)
check_random = random_check(TORCH_ADAPTER)
check_forbidden = forbidden_check(TORCH_ADAPTER)
check_vectorised = vectorised_check(TORCH_ADAPTER)

# ---------------------------------------------------------------------------------- torch's own

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
    gt = torch_vjp(yt, [xt] + params_t, up)
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


CHECKS: tuple[Check, ...] = (
    Check("api", check_api, per_device=False),
    *(Check(f"values[{dtype_name(d)}]", values_check(TORCH_ADAPTER, d)) for d in TORCH_ADAPTER.dtypes),
    *(Check(f"grad[{dtype_name(d)}]", grads_check(TORCH_ADAPTER, d)) for d in TORCH_ADAPTER.dtypes),
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

