"""torch's side of the shared checks (grader/checks/shared_checks.py): a torch submission's three
forms (functional, ``<Module>Function``, module) called on torch tensors, its cases as the catalogue
states them, its signatures against torch's own, its dispatched ops counted and watched by the
Recorder (grader/checks/recorder.py)."""
from __future__ import annotations

import inspect
from typing import Callable, ContextManager, Iterator

import torch

from grader.checks.adapter import Adapter, Case, Form
from grader.checks.compare import HALF
from grader.checks.harness import Impl, about, fmt_arg, forward_backward, observe, on_input, student_call
from grader.checks.recorder import Recorder, resolve
from grader.core.errors import CheckFailure
from grader.spec.catalog import Activation, format_params
from grader.spec.frameworks import TORCH
from grader.checks.inputs import random_input, seed_of


class TorchAdapter(Adapter):
    framework = TORCH
    dtypes = (torch.float64, torch.float32, *HALF)
    edge_dtypes = (torch.float32, torch.float64)
    kink_dtypes = (torch.float64, torch.float32)
    ops_counted = "dispatches {count} torch ops"
    vector_ops = "tensor ops"
    forbidden_advice = "write it from scratch"
    untrained = "; torch's is (module.training is True)"
    compute_method = "forward"

    def cases(self, impl: Impl) -> list[Case]:
        return [Case(case, impl.entry.describe(case), case, case) for case in impl.entry.cases]

    def case_shapes(self, entry: Activation, case: Case) -> tuple[tuple[int, ...], ...]:
        return entry.case_shapes(case.torch)

    def on_input(self, entry: Activation, case: Case, shape: tuple[int, ...]) -> str:
        return on_input(entry, case.torch, shape)

    def functional(self, impl: Impl, case: Case, args: tuple, kwargs: dict) -> Form:
        return Form(impl.functional, args, kwargs)

    def kink_forms(self, impl: Impl, case: Case, x: torch.Tensor, args: tuple, kwargs: dict) -> list[Form]:
        entry = impl.entry
        return [self.functional(impl, case, args, kwargs),
                Form(impl.function, entry.function_arguments(case.torch, x), {}, f"{entry.function_name} ",
                     "function")]

    def random_label(self, impl: Impl, case: Case, params: dict) -> str:
        return f"{impl.entry.describe({**case.torch, 'training': True})}"

    def random_forms(self, impl: Impl, case: Case, params: dict) -> list[Form]:
        lower, upper = params["lower"], params["upper"]
        return [Form(impl.functional, (), {**params, "training": True}),
                Form(impl.function, (lower, upper, True), {}, f"{impl.entry.function_name} ", "function")]

    def forward(self, impl: Impl, what: str, form: Form, x: torch.Tensor) -> torch.Tensor:
        return student_call(what, form.get(), x.clone(), *form.args, **form.kwargs)

    def forward_backward(self, impl: Impl, what: str, form: Form, x: torch.Tensor, seed: int,
                         like: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        y, _, g = forward_backward(what, form.get(), x, form.args, form.kwargs, seed, impl.entry)
        return y, g

    def judging(self, impl: Impl, case: Case, dtype: torch.dtype, x: torch.Tensor, got: torch.Tensor,
                grads: tuple | None = None, form: str = "functional") -> ContextManager[None]:
        return about(case.torch, dtype, form)

    def check_signatures(self, impl: Impl) -> None:
        """The functional's signature and defaults as torch's, the module's parameters and defaults,
        the Function defined."""
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

    def api_forms(self, impl: Impl, case: Case, x: torch.Tensor) -> list[tuple[str, Form]]:
        entry = impl.entry
        args, kwargs = entry.functional_arguments(case.torch, x)
        return [(entry.describe(case.torch), Form(impl.functional, args, kwargs)),
                (entry.function_name, Form(impl.function, entry.function_arguments(case.torch, x))),
                (f"{entry.name} module", Form(lambda: impl.make_module(case.torch)))]

    def module_class(self, impl: Impl) -> type:
        return impl.module_class()

    def module_kwargs(self, impl: Impl, case: Case) -> dict:
        return impl.entry.module_args(case.torch)

    def module_label(self, impl: Impl, case: Case) -> str:
        entry = impl.entry
        return f"{entry.name}({', '.join(f'{k}={fmt_arg(v)}' for k, v in entry.module_args(case.torch).items())})"

    def call_module(self, what: str, module: object, x: torch.Tensor, label: str) -> torch.Tensor:
        return student_call(what, module, x)

    def count_ops(self, impl: Impl, case: Case, x: torch.Tensor) -> int:
        return sum(_record(impl, case.torch, x)[0].values())

    def forbidden_calls(self, impl: Impl, device: str) -> Iterator[tuple[str, str | None]]:
        """Each case's forms recorded in turn: torch's own op (at the ATen level) or a torch callable
        (at the API level) that computes the activation."""
        entry = impl.entry
        ops, funcs = forbidden(entry)
        for case in entry.cases:
            x = random_input(entry, torch.float32, device, seed_of("forbidden"))
            recorded_ops, calls = _record(impl, case, x)
            used = sorted(op for op in recorded_ops if op in ops)
            if used:
                yield entry.describe(case), f"torch's own aten.{used[0]}"
                continue
            called = [name for name in calls if name in funcs]
            if called:
                whose = "the grader's reference" if called[0].startswith("grader.") else "torch's"
                yield entry.describe(case), f"{whose} {called[0]}"
                continue
            yield entry.describe(case), None


TORCH_ADAPTER = TorchAdapter()


# ---------------------------------------------------------------------------------- signatures

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


# ---------------------------------------------------------------------------------- what is watched

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
