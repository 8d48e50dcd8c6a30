"""MLX's side of the shared checks (grader/checks/shared_checks.py): an MLX submission's forms called
on torch's inputs and answering torch tensors, so that the checks judge them with torch's own
comparisons.

Student code runs only inside taped interactions (grader/checks/replay.py): each call below converts
the torch inputs to MLX (through NumPy, by MLX's :class:`~grader.spec.frameworks.Framework`), runs
the student's function, and hands back torch tensors, so the parent re-judges from the tape with
torch alone and never needs MLX for a verdict. MLX is imported lazily: only a worker grading an MLX
submission (or a hint about mlx.nn) needs it.
"""
from __future__ import annotations

import contextlib
import inspect
import io
from typing import Callable, Iterator

import torch

from grader.checks.adapter import Adapter, Case, Form
from grader.checks.harness import Impl, observe, student_call
from grader.checks.inputs import random_input, seed_of, upstream_for
from grader.checks.signatures import assert_signature
from grader.core.errors import CheckFailure, one_line
from grader.spec.catalog import REQUIRED, Activation
from grader.spec.frameworks import MLX
from grader.spec.mlx_catalog import PORT_OF, Case as MLXCase, Port, cases

# ------------------------------------------------------------------------ conversions (worker side)

# MLX's Framework converts: the checks are torch's comparisons on converted tensors
to_mx, to_torch = MLX.to_native, MLX.to_torch


def _mx_args(args: tuple) -> list:
    return [to_mx(a) if isinstance(a, torch.Tensor) else a for a in args]


def mlx_forward(fn: Callable, x: torch.Tensor, args: tuple, kwargs: dict, what: str) -> torch.Tensor:
    """``fn`` (MLX's) on ``x`` and the arguments, converted; its answer as a torch tensor."""
    return to_torch(fn(to_mx(x), *_mx_args(args), **kwargs), what)


def mlx_forward_backward(fn: Callable, x: torch.Tensor, args: tuple, kwargs: dict, up: torch.Tensor | None,
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


# ------------------------------------------------------------------------ the adapter

# MLX's seeds were labelled apart from torch's from the start: these keep its inputs, hence its grades
_SEEDS = {"values": "mlx values", "grads": "mlx grads", "up": "mlx up", "random": "mlx random", "api": "mlx api"}


class MLXAdapter(Adapter):
    framework = MLX
    dtypes = (torch.float32, torch.float16, torch.bfloat16)  # MLX's CPU backend computes all three (measured)
    edge_dtypes = (torch.float32,)
    kink_dtypes = (torch.float32,)
    ops_counted = "a graph of {count} MLX primitives"
    vector_ops = "array ops"
    forbidden_advice = "write it from mlx.core primitives"
    untrained = " (module.training is not True)"
    compute_method = "__call__"

    def seed_label(self, purpose: str) -> str:
        return _SEEDS.get(purpose, purpose)

    def device(self, device: str) -> str:
        return "cpu"  # MLX's CPU backend: its checks run there whatever is asked

    @staticmethod
    def port(impl: Impl) -> Port:
        return PORT_OF[impl.entry.name]

    def cases(self, impl: Impl) -> list[Case]:
        return [Case(c.torch_case, c.describe(), c.describe(), c) for c in cases(self.port(impl))]

    def case_shapes(self, entry: Activation, case: Case) -> tuple[tuple[int, ...], ...]:
        return (entry.shape,)  # MLX's cases never leave the axis to torch: one shape each

    def functional(self, impl: Impl, case: Case, args: tuple, kwargs: dict) -> Form:
        # torch's positional tensors (PReLU's weight) converted; the keywords are MLX's own
        return Form(lambda: impl.get(case.native.functional), args, case.native.kwargs)

    def random_label(self, impl: Impl, case: Case, params: dict) -> str:
        return f"rrelu(lower={params['lower']!r}, upper={params['upper']!r}, training=True)"

    def random_forms(self, impl: Impl, case: Case, params: dict) -> list[Form]:
        kwargs = {"lower": params["lower"], "upper": params["upper"], "training": True}
        return [Form(lambda: impl.get("rrelu"), (), kwargs)]

    def forward(self, impl: Impl, what: str, form: Form, x: torch.Tensor) -> torch.Tensor:
        return student_call(what, mlx_forward, form.get(), x, form.args, form.kwargs, what)

    def forward_backward(self, impl: Impl, what: str, form: Form, x: torch.Tensor, seed: int,
                         like: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        # mx.vjp takes the cotangent with the call: shaped as torch's output, not the student's
        up = upstream_for(impl.entry, like, seed)
        return student_call(what, mlx_forward_backward, form.get(), x, form.args, form.kwargs, up, what)

    def widened(self, t: torch.Tensor) -> torch.Tensor:
        return t.double()

    @contextlib.contextmanager
    def judging(self, impl: Impl, case: Case, dtype: torch.dtype, x: torch.Tensor, got: torch.Tensor,
                grads: tuple | None = None, form: str = "functional") -> Iterator[None]:
        try:
            yield
        except CheckFailure as exc:
            raise CheckFailure(f"{exc}{_hint(self.port(impl), case.native, x, got, grads)}") from None

    def check_signatures(self, impl: Impl) -> None:
        """Names defined, signatures and defaults, an mlx.nn.Module subclass with __call__."""
        port = self.port(impl)
        for name in (port.functional, *port.extra):
            fn = impl.get(name)
            expected = [("x", REQUIRED)] + ([] if name in port.extra else [(m, d) for m, d, _ in port.params])
            assert_signature(name, lambda: fn, expected)
        cls = self.module_class(impl)
        expected = [(m, d) for m, d, _ in port.class_params]
        assert_signature(port.cls, lambda: cls.__init__, expected, drop_self=True, label=f"{port.cls}.__init__")

    def api_cases(self, impl: Impl) -> list[Case]:
        """The defaults, and the first case of an extra functional (GELU's gelu_approx)."""
        port, all_cases = self.port(impl), self.cases(impl)
        return all_cases[:1] + [c for c in all_cases if c.native.functional in port.extra][:1]

    def api_shape(self, entry: Activation) -> tuple[int, ...]:
        return entry.vector_shapes[0] if entry.name != "PReLU" else (2, 1, 3)

    def api_forms(self, impl: Impl, case: Case, x: torch.Tensor) -> list[tuple[str, Form]]:
        args, _ = impl.entry.functional_arguments(case.torch, x)
        cls = self.port(impl).cls
        return [(case.label, self.functional(impl, case, args, {})),
                (f"{cls} module", Form(lambda: self.make_module(impl, case)))]

    def module_class(self, impl: Impl) -> type:
        """The student's class, which must be an mlx.nn.Module with a __call__."""
        port = self.port(impl)
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

    def module_kwargs(self, impl: Impl, case: Case) -> dict:
        return case.native.init

    def module_label(self, impl: Impl, case: Case) -> str:
        return f"{self.port(impl).cls}({', '.join(f'{k}={v!r}' for k, v in case.native.init.items())})"

    def make_module(self, impl: Impl, case: Case) -> object:
        """The student's module on ``case``, in evaluation mode where the activation is random."""
        label = self.module_label(impl, case)
        module = student_call(label, self.module_class(impl), **case.native.init)
        if impl.entry.random:
            observe(f"{label}.eval()", lambda: module.eval() and None)
        return module

    def call_module(self, what: str, module: object, x: torch.Tensor, label: str) -> torch.Tensor:
        return student_call(what, mlx_forward, module, x, (), {}, label)

    def count_ops(self, impl: Impl, case: Case, x: torch.Tensor) -> int:
        args, _ = impl.entry.functional_arguments(case.torch, x)
        return student_call(f"{case.label} on {tuple(x.shape)}", _graph_size, impl.get(case.native.functional), x,
                            args, case.native.kwargs)

    def forbidden_calls(self, impl: Impl, device: str) -> Iterator[tuple[str, str | None]]:
        """Every case's functional and module recorded at once, with every mlx.nn activation and the
        mlx.core functions that compute this one watched."""
        port, entry = self.port(impl), impl.entry

        def record() -> list[str]:
            ran: list[bool] = []

            def run() -> None:
                for case in cases(port):
                    x = random_input(entry, torch.float32, "cpu", seed_of("mlx forbidden"))
                    args, _ = entry.functional_arguments(case.torch_case, x)
                    for form in (lambda: mlx_forward_backward(impl.ns[case.functional], x, args, case.kwargs, None, ""),
                                 lambda: mlx_forward(impl.ns[port.cls](**case.init), x, (), {}, "")):
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
        yield f"{port.functional} / {port.cls}", called[0] if called else None


MLX_ADAPTER = MLXAdapter()


# ------------------------------------------------------------------------ the hint about mlx.nn

def _hint(port: Port, case: MLXCase, x: torch.Tensor, got: torch.Tensor, grads: tuple | None = None) -> str:
    """``; mlx.nn.leaky_relu gives this too: ...`` when the student's answer is mlx.nn's own."""
    if not port.differs or not port.in_mlx_nn:
        return ""
    try:
        import mlx.core as mx
        import mlx.nn as nn

        fn = getattr(nn, case.functional)
        args, _ = port.activation.functional_arguments(case.torch_case, x)
        if grads is None:
            theirs = mlx_forward(fn, x, args, case.kwargs, "mlx.nn")
            same = torch.allclose(theirs.double(), got.double(), rtol=1e-4, atol=1e-6, equal_nan=True)
        else:
            _, g = mlx_forward_backward(fn, x, args, case.kwargs, torch.ones_like(x), "mlx.nn")
            same = torch.allclose(g[0].double(), grads[0].double(), rtol=1e-4, atol=1e-6, equal_nan=True)
        del mx
    except Exception as exc:  # mlx.nn rejects the arguments (softplus has no beta): that is the difference
        return f"; mlx.nn.{case.functional} cannot do this ({one_line(exc)}): {port.differs}"
    return f"; mlx.nn.{case.functional} gives this too: {port.differs}" if same else ""


# ------------------------------------------------------------------------ what is counted and watched

def _graph_size(fn: Callable, x: torch.Tensor, args: tuple, kwargs: dict) -> int:
    """The number of primitives in the lazy graph of ``fn(x)``: the same for any size when vectorised."""
    import mlx.core as mx

    y = fn(to_mx(x), *_mx_args(args), **kwargs)
    if not isinstance(y, mx.array):
        raise CheckFailure(f"returned {type(y).__name__}, expected an mlx.core.array")
    dot = io.StringIO()
    mx.export_to_dot(dot, y)
    return dot.getvalue().count("shape=rectangle")


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
