"""The MLX checks: an MLX submission's activations against torch, with the torch checks' verdicts.

Student code runs only inside taped interactions (grader/checks/replay.py): each thunk below converts the
torch inputs to MLX (through NumPy), runs the student's function, and hands back torch tensors, so
the parent re-judges from the tape with torch alone and never needs MLX for a verdict. MLX is
imported lazily: only a worker grading an MLX submission (or a hint about mlx.nn) needs it.
"""
from __future__ import annotations

import inspect
import io
import math
from typing import Callable

import torch

from grader.spec.catalog import REQUIRED
from grader.checks.signatures import assert_signature
from grader.checks.base import Check
from grader.checks.shared_checks import check_slopes, edge_skip
from grader.checks.harness import Impl, Notes, compare_grads, observe, student_call, torch_impl
from grader.checks.inputs import edge_input, random_input, seed_of, upstream_for
from grader.core.errors import CheckFailure, one_line
from grader.checks.compare import (HALF, assert_close, assert_half_close, dtype_name, locate_elementwise,
                                   locate_index)
from grader.spec.frameworks import MLX
from grader.spec.mlx_catalog import PORT_OF, Case, Port, cases

DTYPES = (torch.float32, torch.float16, torch.bfloat16)  # MLX's CPU backend computes all three (measured)


# ------------------------------------------------------------------------ conversions (worker side)

# MLX's Framework converts: the checks below are torch's comparisons on converted tensors
to_mx, to_torch = MLX.to_native, MLX.to_torch


def _mx_args(args: tuple) -> list:
    return [to_mx(a) if isinstance(a, torch.Tensor) else a for a in args]


def _forward(fn: Callable, x: torch.Tensor, args: tuple, kwargs: dict, what: str) -> torch.Tensor:
    return to_torch(fn(to_mx(x), *_mx_args(args), **kwargs), what)


def _forward_backward(fn: Callable, x: torch.Tensor, args: tuple, kwargs: dict, up: torch.Tensor | None,
                      what: str) -> tuple:
    """(output, gradients w.r.t. x and the tensor arguments) by ``mx.vjp``, as torch tensors."""
    import mlx.core as mx

    mx_args = _mx_args(args)
    slots = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]

    def f(x, *tensors):
        full = list(mx_args)
        for i, t in zip(slots, tensors):
            full[i] = t
        return fn(x, *full, **kwargs)

    primals = [to_mx(x), *(mx_args[i] for i in slots)]
    if up is None:
        cotangent = mx.ones_like(f(*primals))
    else:
        cotangent = to_mx(up)
    # one call, whose output is the one differentiated (RReLU draws its slopes at each call)
    outs, grads = mx.vjp(lambda *p: [f(*p)], primals, [cotangent])
    out = to_torch(outs[0], what)
    return out, tuple(to_torch(g, f"{what} gradient") for g in grads)


# ------------------------------------------------------------------------ shared by the checks

def _port(impl: Impl) -> Port:
    return PORT_OF[impl.entry.name]


def _reference(impl: Impl, case: Case, x: torch.Tensor) -> tuple[tuple, dict, Callable]:
    args, kwargs = impl.entry.functional_arguments(case.torch_case, x)
    return args, kwargs, torch_impl(impl.entry).functional()


def _torch_grads(impl: Impl, case: Case, x: torch.Tensor, seed: int) -> tuple[torch.Tensor, tuple, torch.Tensor]:
    args, kwargs, ref = _reference(impl, case, x)
    xr = x.detach().clone().requires_grad_()
    ts = [a.detach().clone().requires_grad_() if isinstance(a, torch.Tensor) else a for a in args]
    y = ref(xr, *ts, **kwargs)
    up = upstream_for(impl.entry, y, seed)
    grads = torch.autograd.grad(y, [xr, *(t for t in ts if isinstance(t, torch.Tensor))], up, allow_unused=True)
    return y.detach(), tuple(torch.zeros_like(xr) if g is None else g for g in grads), up


def _student_grads(impl: Impl, case: Case, x: torch.Tensor, up: torch.Tensor, what: str) -> tuple:
    args, _, _ = _reference(impl, case, x)
    fn = impl.get(case.functional)
    return student_call(what, _forward_backward, fn, x, args, case.kwargs, up, what)


def _hint(port: Port, case: Case, x: torch.Tensor, got: torch.Tensor, grads: tuple | None = None) -> str:
    """``; mlx.nn.leaky_relu gives this too: ...`` when the student's answer is mlx.nn's own."""
    if not port.differs or not port.in_mlx_nn:
        return ""
    try:
        import mlx.core as mx
        import mlx.nn as nn

        fn = getattr(nn, case.functional)
        args, _ = port.activation.functional_arguments(case.torch_case, x)
        if grads is None:
            theirs = _forward(fn, x, args, case.kwargs, "mlx.nn")
            same = torch.allclose(theirs.double(), got.double(), rtol=1e-4, atol=1e-6, equal_nan=True)
        else:
            _, g = _forward_backward(fn, x, args, case.kwargs, torch.ones_like(x), "mlx.nn")
            same = torch.allclose(g[0].double(), grads[0].double(), rtol=1e-4, atol=1e-6, equal_nan=True)
        del mx
    except Exception as exc:  # mlx.nn rejects the arguments (softplus has no beta): that is the difference
        return f"; mlx.nn.{case.functional} cannot do this ({one_line(exc)}): {port.differs}"
    return f"; mlx.nn.{case.functional} gives this too: {port.differs}" if same else ""


def _with_hint(port: Port, case: Case, x: torch.Tensor, run: Callable[[], Notes], got: torch.Tensor,
               grads: tuple | None = None) -> Notes:
    try:
        return run()
    except CheckFailure as exc:
        raise CheckFailure(f"{exc}{_hint(port, case, x, got, grads)}") from None


def _what(case: Case, dtype: torch.dtype) -> str:
    return f"{case.describe()} {dtype_name(dtype)}"


def _where(impl: Impl, x: torch.Tensor):
    return locate_elementwise(x) if impl.entry.elementwise else locate_index(x)


# ------------------------------------------------------------------------ the checks

def check_api(impl: Impl, device: str) -> Notes:
    """Names defined, signatures and defaults, an mlx.nn.Module subclass with __call__, every form runs."""
    port = _port(impl)
    for name in (port.functional, *port.extra):
        fn = impl.get(name)
        expected = [("x", REQUIRED)] + ([] if name in port.extra else [(m, d) for m, d, _ in port.params])
        assert_signature(name, lambda: fn, expected)
    cls = _module_class(impl, port)
    expected = [(m, d) for m, d, _ in port.class_params]
    assert_signature(port.cls, lambda: cls.__init__, expected, drop_self=True, label=f"{port.cls}.__init__")
    for case in cases(port)[:1] + [c for c in cases(port) if c.functional in port.extra][:1]:
        x = random_input(impl.entry, torch.float32, "cpu", seed_of("mlx api"), impl.entry.vector_shapes[0] if
                         impl.entry.name != "PReLU" else (2, 1, 3))
        args, _, _ = _reference(impl, case, x)
        student_call(case.describe(), _forward, impl.get(case.functional), x, args, case.kwargs, case.describe())
        module = _make_module(impl, port, case)
        student_call(f"{port.cls} module", _forward, module, x, (), {}, f"{port.cls} module")
    return []


def _module_class(impl: Impl, port: Port) -> type:
    cls = impl.get(port.cls)

    def verify() -> str:
        import mlx.nn as nn

        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            return f"{port.cls} is not a subclass of mlx.nn.Module"
        if cls.__call__ is nn.Module.__call__:
            return f"{port.cls} has no __call__ (MLX modules compute in __call__, not forward)"
        return ""

    problem = observe(f"{port.cls} is an mlx.nn.Module", verify)
    if problem:
        raise CheckFailure(problem)
    return cls


def _make_module(impl: Impl, port: Port, case: Case) -> object:
    label = f"{port.cls}({', '.join(f'{k}={v!r}' for k, v in case.init.items())})"
    module = student_call(label, _module_class(impl, port), **case.init)
    if impl.entry.random:
        observe(f"{label}.eval()", lambda: module.eval() and None)
    return module


def _values(dtype: torch.dtype) -> Callable[[Impl, str], Notes]:
    def check(impl: Impl, device: str) -> Notes:
        port, entry = _port(impl), impl.entry
        for case in cases(port):
            x = random_input(entry, dtype, "cpu", seed_of(entry.name, "mlx values", case.describe(), dtype))
            args, kwargs, ref = _reference(impl, case, x)
            what = _what(case, dtype)
            expected = ref(x, *args, **kwargs)
            got = student_call(what, _forward, impl.get(case.functional), x, args, case.kwargs, what)
            if dtype in HALF:
                truth = ref(x.double(), *(a.double() if isinstance(a, torch.Tensor) else a for a in args), **kwargs)
                run = lambda: assert_half_close(got, expected, truth, what, _where(impl, x))
            else:
                run = lambda: assert_close(got, expected, what, _where(impl, x))
            _with_hint(port, case, x, lambda: run() or [], got)
        return []
    return check


def _grads(dtype: torch.dtype) -> Callable[[Impl, str], Notes]:
    def check(impl: Impl, device: str) -> Notes:
        port, entry = _port(impl), impl.entry
        notes: Notes = []
        for case in cases(port):
            x = random_input(entry, dtype, "cpu", seed_of(entry.name, "mlx grads", case.describe(), dtype))
            seed = seed_of(entry.name, "mlx up", case.describe())
            _, gr, up = _torch_grads(impl, case, x, seed)
            what = _what(case, dtype)
            _, gs = _student_grads(impl, case, x, up, what)
            truth = _torch_grads(impl, case, x.double(), seed)[1] if dtype in HALF else None
            if truth is not None and len(truth) > 1:  # PReLU's weight: its float64 reference
                pass
            notes += _with_hint(port, case, x, lambda: compare_grads(gs, gr, x, what, _where(impl, x), entry,
                                                                     case.torch_case, truth=truth), gs[0], gs)
        return notes
    return check


def check_edges(impl: Impl, device: str) -> Notes:
    """float32 values and gradients at ±0, ±inf, nan, ±1e4, ±100, ±88.8, ±20, subnormals and the kinks."""
    port, entry = _port(impl), impl.entry
    notes: Notes = []
    for case in (cases(port) if entry.elementwise else cases(port)[:1]):
        x, where = edge_input(entry, case.torch_case, torch.float32)
        args, kwargs, ref = _reference(impl, case, x)
        what = _what(case, torch.float32)
        expected = ref(x, *args, **kwargs)
        got = student_call(what, _forward, impl.get(case.functional), x, args, case.kwargs, what)
        _with_hint(port, case, x, lambda: assert_close(
            got, expected, what, where, skip=edge_skip(entry, x, entry.odd_values, False)) or [], got)
        _, gr, up = _torch_grads(impl, case, x, seed_of(entry.name, "edge-up"))
        _, gs = _student_grads(impl, case, x, up, what)
        skip = edge_skip(entry, x, entry.odd_grads, True)
        notes += _with_hint(port, case, x, lambda: compare_grads(gs, gr, x, what, where, entry, case.torch_case,
                                                                 skip=skip), gs[0], gs)
    return notes


def check_kinks(impl: Impl, device: str) -> Notes:
    """At each kink the gradient is a valid subgradient (torch's own choice: a note)."""
    port, entry = _port(impl), impl.entry
    notes: Notes = []
    for case in cases(port):
        kinks = entry.kinks(entry.resolve(case.torch_case))
        if not kinks:
            continue
        x = entry.elementwise_tensor(case.torch_case, kinks, torch.float32)
        what = _what(case, torch.float32)
        _, gr, up = _torch_grads(impl, case, x, seed_of("kinks"))
        _, gs = _student_grads(impl, case, x, up, what)
        notes += _with_hint(port, case, x, lambda: compare_grads(gs, gr, x, what, locate_elementwise(x), entry,
                                                                 case.torch_case), gs[0], gs)
    return notes


def _module_run(module: object, x: torch.Tensor, up: torch.Tensor, what: str) -> tuple:
    """The module's output, its parameters() and their gradients (for the loss sum(output * up))."""
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten

    xm, um = to_mx(x), to_mx(up)
    out = to_torch(module(xm), what)
    params = {k: to_torch(v, f"{what} parameter {k}") for k, v in tree_flatten(module.parameters())}
    grads: dict = {}
    if params:
        loss = lambda m: mx.sum(m(xm) * um)
        _, g = nn.value_and_grad(module, loss)(module)
        grads = {k: to_torch(v, f"{what} gradient of {k}") for k, v in tree_flatten(g)}
    return out, params, grads


def check_module(impl: Impl, device: str) -> Notes:
    """The class on each case: values as torch's module; PReLU: its weight in parameters() and its gradient."""
    port, entry = _port(impl), impl.entry
    for case in cases(port):
        module = _make_module(impl, port, case)
        x = random_input(entry, torch.float32, "cpu", seed_of(entry.name, "mlx module", case.describe()))
        torch_module = torch_impl(entry).make_module(case.torch_case)
        xr = x.clone().requires_grad_()
        yr = torch_module(xr)
        up = upstream_for(entry, yr, seed_of("mlx module up"))
        what = f"{port.cls}({', '.join(f'{k}={v!r}' for k, v in case.init.items())})"
        ys, params, grads = student_call(what, _module_run, module, x, up, what)
        _with_hint(port, case, x, lambda: assert_close(ys, yr.detach(), what, _where(impl, x)) or [], ys)
        expected = dict(torch_module.named_parameters())
        if sorted(params) != sorted(expected):
            raise CheckFailure(f"{what}: parameters() holds {sorted(params) or 'nothing'}; torch's module has "
                               f"{sorted(expected) or 'none'}")
        for name, p in expected.items():
            (g,) = torch.autograd.grad(yr, p, up, retain_graph=True)
            assert_close(params[name], p.detach(), f"{what}: parameter {name}", locate_index(p))
            if name not in grads:
                raise CheckFailure(f"{what}: no gradient for parameter {name}")
            assert_close(grads[name], g, f"{what}: gradient of parameter {name}", locate_index(p), kind="grad")
    return []


def check_random(impl: Impl, device: str) -> Notes:
    """RReLU in training: a slope per element, uniform in [lower, upper]; its gradient is that slope;
    a new module is in training mode."""
    port, entry = _port(impl), impl.entry
    n = 20000
    for case in cases(port):
        p = entry.resolve(case.torch_case)
        lower, upper = p["lower"], p["upper"]
        what = f"rrelu(lower={lower!r}, upper={upper!r}, training=True)"
        gen = torch.Generator().manual_seed(seed_of("mlx random", case.describe()) % 2 ** 31)
        x = -torch.rand(n, dtype=torch.float64, generator=gen) - 0.5
        x = torch.cat([x, torch.tensor([2.0, 0.5], dtype=torch.float64)])
        kwargs = {"lower": lower, "upper": upper, "training": True}
        y, (g,) = student_call(what, _forward_backward, impl.get("rrelu"), x, (), kwargs, torch.ones_like(x), what)
        check_slopes(y.double(), x, g.double(), lower, upper, what, n)
        label = f"{port.cls}({', '.join(f'{k}={v!r}' for k, v in case.init.items())})"
        module = student_call(label, _module_class(impl, port), **case.init)
        if observe(f"{label}.training", lambda: getattr(module, "training", None)) is not True:
            raise CheckFailure(f"{label}: a new module is not in training mode (module.training is not True)")
        ym = student_call(f"{label} in training mode", _forward, module, x, (), {}, label)
        slopes = ym[:n].double() / x[:n]
        if float(slopes.std()) < 0.1 * (upper - lower) / math.sqrt(12):
            raise CheckFailure(f"{label} in training mode: slopes do not vary between elements: "
                               f"does __call__ use self.training?")
    return []


def _watching(namespace: dict, port: Port, run: Callable[[], None]) -> list[str]:
    """Run ``run`` with every mlx.nn activation (functions, classes' __call__) and the mlx.core
    functions that compute this activation wrapped; returns the names of those called."""
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.nn.layers as layers
    import mlx.nn.layers.activations as acts

    called: list[str] = []
    patches: list[tuple[object, str, object]] = []

    def wrap(label: str, f: Callable) -> Callable:
        def watched(*args, **kwargs):
            called.append(label)
            return f(*args, **kwargs)
        return watched

    originals: dict[int, Callable] = {}
    for name in dir(acts):
        obj = getattr(acts, name)
        if name.startswith("_") or inspect.ismodule(obj) or not callable(obj):
            continue
        if inspect.isclass(obj):
            if issubclass(obj, nn.Module) and obj.__module__ == acts.__name__ and "__call__" in vars(obj):
                patches.append((obj, "__call__", obj.__call__))
                obj.__call__ = wrap(f"mlx.nn.{name}", obj.__call__)
            continue
        if getattr(obj, "__module__", "") != acts.__name__:
            continue
        originals[id(obj)] = wrap(f"mlx.nn.{name}", obj)
        for owner in (acts, layers, nn):
            if getattr(owner, name, None) is obj:
                patches.append((owner, name, obj))
                setattr(owner, name, originals[id(obj)])
    for name in port.core:
        obj = getattr(mx, name)
        originals[id(obj)] = wrap(f"mlx.core.{name}", obj)
        patches.append((mx, name, obj))
        setattr(mx, name, originals[id(obj)])
    swapped = {k: v for k, v in namespace.items() if id(v) in originals and callable(v)}
    namespace.update({k: originals[id(v)] for k, v in swapped.items()})
    try:
        run()
    finally:
        namespace.update(swapped)
        for owner, name, obj in reversed(patches):
            setattr(owner, name, obj)
    return called


def check_forbidden(impl: Impl, device: str) -> Notes:
    """No mlx.nn activation and no mlx.core function computing this one: written from primitives."""
    port, entry = _port(impl), impl.entry

    def record() -> list[str]:
        ran: list[bool] = []

        def run() -> None:
            for case in cases(port):
                x = random_input(entry, torch.float32, "cpu", seed_of("mlx forbidden"))
                args, _, _ = _reference(impl, case, x)
                for form in (lambda: _forward_backward(impl.ns[case.functional], x, args, case.kwargs, None, ""),
                             lambda: _forward(impl.ns[port.cls](**case.init), x, (), {}, "")):
                    try:  # what a form calls before it fails counts; its failure is the other checks' business
                        form()
                        ran.append(True)
                    except NotImplementedError:
                        pass
                    except Exception:
                        ran.append(True)  # it ran far enough to be judged by what it called
        called = _watching(impl.ns, port, run)
        if not called and not ran:  # a stub calls nothing forbidden, and earns nothing for it
            raise CheckFailure(f"{port.functional} / {port.cls}: not implemented (raises NotImplementedError)")
        return called

    called = impl.observe(f"record the calls of {port.functional} and {port.cls}", record)
    if called:
        raise CheckFailure(f"{port.functional} / {port.cls}: calls {called[0]}: write it from mlx.core primitives")
    return []


def _graph_size(fn: Callable, x: torch.Tensor, args: tuple, kwargs: dict) -> int:
    """The number of primitives in the lazy graph of ``fn(x)``: the same for any size when vectorised."""
    import mlx.core as mx

    y = fn(to_mx(x), *_mx_args(args), **kwargs)
    if not isinstance(y, mx.array):
        raise CheckFailure(f"returned {type(y).__name__}, expected an mlx.core.array")
    dot = io.StringIO()
    mx.export_to_dot(dot, y)
    return dot.getvalue().count("shape=rectangle")


def check_vectorised(impl: Impl, device: str) -> Notes:
    """The traced graph must not grow with the input: no Python loop over elements."""
    port, entry = _port(impl), impl.entry
    case = cases(port)[0]
    counts = []
    for shape in entry.vector_shapes:
        x = random_input(entry, torch.float32, "cpu", seed_of("vector", shape), shape)
        args, _, _ = _reference(impl, case, x)
        counts.append(student_call(f"{case.describe()} on {shape}", _graph_size, impl.get(case.functional), x,
                                   args, case.kwargs))
    (small, large), (n_small, n_large) = entry.vector_shapes, (math.prod(s) for s in entry.vector_shapes)
    if counts[1] > counts[0]:
        raise CheckFailure(f"{case.describe()}: a graph of {counts[0]} MLX primitives on {n_small} elements but "
                           f"{counts[1]:,} on {n_large:,}: a Python loop over elements? Use array ops")
    return []


CHECKS: tuple[Check, ...] = (
    Check("mlx api", check_api, per_device=False),
    *(Check(f"mlx values[{dtype_name(d)}]", _values(d), per_device=False) for d in DTYPES),
    *(Check(f"mlx grad[{dtype_name(d)}]", _grads(d), per_device=False) for d in DTYPES),
    Check("mlx edges", check_edges, per_device=False),
    Check("mlx kinks", check_kinks, per_device=False, applies=lambda e: any(e.kinks(e.resolve(c)) for c in e.cases)),
    Check("mlx module", check_module, per_device=False),
    Check("mlx random", check_random, per_device=False, applies=lambda e: e.random),
    Check("mlx forbidden", check_forbidden, per_device=False),
    Check("mlx vectorised", check_vectorised, per_device=False),
)
