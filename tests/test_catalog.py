"""The catalogue is checked against torch itself, so an entry cannot drift from what it describes."""
from __future__ import annotations

import inspect
import re

import pytest
import torch
import torch.nn.functional as F

from grader.catalog import ACTIVATIONS, BY_NAME, CHAPTERS, REQUIRED, measured_implicit_dim, quiet_implicit_dim
from grader.core.errors import CheckFailure
from grader.checks.torch_checks import check_forbidden
from grader.checks.harness import torch_impl

IDS = [a.name for a in ACTIVATIONS]


def test_all_28_activations_of_torch_nn() -> None:
    in_torch = [a for a in ACTIVATIONS if a.in_torch]
    assert len(in_torch) == 28 and len(ACTIVATIONS) == len(BY_NAME)
    assert {a.chapter for a in ACTIVATIONS} == set(CHAPTERS)
    for a in in_torch:
        assert issubclass(getattr(torch.nn, a.name), torch.nn.Module)
        assert a.functional is None or callable(getattr(F, a.functional))


@pytest.mark.parametrize("entry", [a for a in ACTIVATIONS if not a.in_torch], ids=lambda a: a.name)
def test_a_reference_stands_where_torch_has_no_op(entry) -> None:
    """The design chapter's activations are not torch's: each has a reference functional and module,
    which the checks use in torch's place."""
    assert not hasattr(torch.nn, entry.name) and not hasattr(F, entry.functional)
    assert entry.reference_module is not None and entry.torch_module() is entry.reference_module
    assert entry.torch_functional() is entry.reference and entry.chapter == "design"
    assert torch_impl(entry).functional() is entry.reference


@pytest.mark.parametrize("entry", ACTIVATIONS, ids=IDS)
def test_parameters_and_defaults_are_torch_s(entry) -> None:
    init = inspect.signature(entry.torch_module().__init__).parameters
    for p in entry.params:
        if p.module and entry.module_kwargs is None:
            want = inspect.Parameter.empty if p.default is REQUIRED else p.default
            assert init[p.name].default == want, p.name
    if entry.inplace:
        assert "inplace" in init
    for case in entry.cases:  # every case is a valid call of torch
        x = torch.randn(entry.shape, dtype=torch.float64)
        args, kwargs = entry.functional_arguments(case, x)
        torch_impl(entry).functional()(x, *args, **kwargs)
        entry.torch_module()(**entry.module_args(case))


@pytest.mark.parametrize("entry", ACTIVATIONS, ids=IDS)
def test_first_case_is_the_defaults(entry) -> None:
    """The first case sets only the parameters without a default (Threshold's), so the path of a call
    that leaves every default out is graded; and the catalogue's defaults are torch's functional ones."""
    assert set(entry.cases[0]) == {p.name for p in entry.params if p.default is REQUIRED}, entry.cases[0]
    try:
        functional = inspect.signature(entry.torch_functional()).parameters if entry.functional else {}
    except (TypeError, ValueError):  # builtins (gelu, softplus, ...): the module's defaults are checked above
        functional = {}
    for p in entry.params:
        if p.name in functional and p.default is not REQUIRED:
            assert functional[p.name].default == p.default, p.name


def test_implicit_dim_is_torch_s_legacy_rule() -> None:
    """What torch's documentation of ``_get_softmax_dim`` says: dim 0 for 0-, 1- and 3-D inputs, else 1."""
    for name in ("softmax", "log_softmax", "softmin"):
        assert [measured_implicit_dim(name, n) for n in range(6)] == [0, 0, 1, 0, 1, 1], name


@pytest.mark.parametrize("entry", [a for a in ACTIVATIONS if a.implicit_dim_shapes], ids=lambda a: a.name)
def test_dim_none_is_graded_on_0d_to_4d_inputs(entry) -> None:
    assert entry.params[0].name == "dim" and entry.params[0].default is None and entry.leaves_dim(entry.cases[0])
    assert sorted(len(s) for s in entry.implicit_dim_shapes) == [0, 1, 2, 3, 4]
    # on some input torch's choice is not the last dim, so treating None as -1 is wrong there
    assert any(entry.implicit_dim({}, len(s)) != len(s) - 1 for s in entry.implicit_dim_shapes if s)
    assert all(not entry.leaves_dim(c) for c in entry.function_cases), "a Function's dim is explicit"


@pytest.mark.parametrize("entry", [a for a in ACTIVATIONS if a.invalid], ids=lambda a: a.name)
def test_invalid_arguments_raise_in_torch(entry) -> None:
    for bad in entry.invalid:
        x = torch.randn(bad.shape)
        args, kwargs = entry.functional_arguments(bad.kwargs, x) if entry.functional else ((), {})
        with pytest.raises(bad.raises):
            torch_impl(entry).functional()(x, *args, **kwargs)


@pytest.mark.parametrize("entry", [a for a in ACTIVATIONS if a.elementwise], ids=lambda a: a.name)
def test_kinks_are_real(entry) -> None:
    """At each listed kink the one-sided derivatives differ, the function jumps, or torch's gradient
    there is a convention outside both one-sided derivatives (softshrink with lambd=0)."""
    for case in entry.cases:
        for k in entry.kinks(entry.resolve(case)):
            d = 1e-6
            x = entry.elementwise_tensor(case, [k - d, k, k + d], torch.float64).requires_grad_()
            args, kwargs = entry.functional_arguments(case, x)
            y = torch_impl(entry).functional()(x, *args, **kwargs)
            (g,) = torch.autograd.grad(y.sum(), x)
            g, y = g.reshape(len(g), -1)[:, 0], y.detach().reshape(len(y), -1)[:, 0]
            jump = abs(y[2] - y[0]) > 10 * d * (1 + abs(g).max())
            convention = min(abs(g[1] - g[0]), abs(g[1] - g[2])) > 1e-4
            assert jump or convention or abs(g[2] - g[0]) > 1e-4, f"{entry.describe(case)}: no kink at {k}"


@pytest.mark.parametrize("entry", [a for a in ACTIVATIONS if a.odd_values], ids=lambda a: a.name)
def test_odd_values_are_really_odd_in_torch(entry) -> None:
    """Where the catalogue says torch is odd, torch's value is nan (not the limit)."""
    assert entry.odd_note
    if entry.elementwise:
        x = torch.tensor(list(entry.odd_values) * 8)  # 8+ elements: the vectorised kernel
        assert torch_impl(entry).functional()(x, *entry.functional_arguments({}, x)[0]).isnan().any()


@pytest.mark.parametrize("entry", [a for a in ACTIVATIONS if a.odd_above], ids=lambda a: a.name)
def test_torch_really_overflows_above_odd_above(entry) -> None:
    x = torch.tensor([entry.odd_above * 1.01] * 8)
    assert torch_impl(entry).functional()(x).isinf().all()
    assert torch_impl(entry).functional()(x.double()).isfinite().all()


@pytest.mark.parametrize("entry", [a for a in ACTIVATIONS if a.in_torch], ids=lambda a: a.name)
def test_forbidden_list_catches_torch_itself(entry) -> None:
    """torch's own implementation must fail the forbidden-op check: the list is not vacuous."""
    with pytest.raises(CheckFailure, match="calls torch's"), quiet_implicit_dim():  # torch plays the student
        check_forbidden(_torch_with_function(entry), "cpu")


@pytest.mark.parametrize("entry", [a for a in ACTIVATIONS if not a.in_torch], ids=lambda a: a.name)
def test_forbidden_check_catches_a_submission_that_calls_the_reference(entry) -> None:
    """The references take part in __torch_function__, so calling one instead of writing the
    activation is seen, like a call of torch's own op; a reference built on an op the entry forbids
    (the bipolar sigmoid of book/guide_add_activation.md calls tanh) may be caught by that op first."""
    seen = [rf"calls the grader's reference grader\.spec\.references\.{entry.functional}\b"]
    seen += [rf"calls torch's own aten\.{re.escape(op)}\b" for op in entry.forbidden_ops]
    with pytest.raises(CheckFailure, match="|".join(seen)):
        check_forbidden(_torch_with_function(entry), "cpu")


def _torch_with_function(entry):
    """torch, plus an autograd Function around it, so every form the checks call exists."""
    impl = torch_impl(entry)
    ref = impl.functional()

    class TorchFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, *args):
            ctx.save_for_backward(x, *(a for a in args if isinstance(a, torch.Tensor)))
            ctx.args = args
            return call(x, args)

        @staticmethod
        def backward(ctx, g):
            x, *tensors = ctx.saved_tensors
            with torch.enable_grad():
                xx, ts = x.detach().requires_grad_(), [t.detach().requires_grad_() for t in tensors]
                it = iter(ts)
                args = tuple(next(it) if isinstance(a, torch.Tensor) else a for a in ctx.args)
                grads = iter(torch.autograd.grad(call(xx, args), [xx, *ts], g))
            return (next(grads),) + tuple(next(grads) if isinstance(a, torch.Tensor) else None for a in ctx.args)

    names = [p.name for p in entry.params if p.function]

    def call(x, args):  # Function arguments are positional; torch's functional may want keywords
        return ref(x, *args) if entry.function_args else ref(x, **dict(zip(names, args)))

    impl.ns[entry.function_name] = TorchFunction
    return impl


def test_edge_layouts_are_ones_the_checks_know() -> None:
    """The edge check lays out non-elementwise inputs by the entry's ``edge_layout``, never its name."""
    from grader.checks.inputs import edge_input

    assert {a.edge_layout for a in ACTIVATIONS} <= {"rows", "pairs", "channels"}
    by_layout = {a.edge_layout: a for a in ACTIVATIONS if not a.elementwise and not a.halves}
    assert edge_input(by_layout["pairs"], {}, torch.float32)[0].shape[-1] == 2
    assert edge_input(by_layout["channels"], {}, torch.float32)[0].dim() == 4
    assert edge_input(by_layout["rows"], {}, torch.float32)[0].dim() == 2
