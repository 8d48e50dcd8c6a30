"""How one framework's forms of an activation are called: what the checks torch and MLX share
(grader/checks/shared_checks.py) ask of a framework, written once per framework
(grader/checks/torch_adapter.py, grader/checks/mlx_adapter.py).

A shared check computes torch's side itself (the reference, on torch tensors) and meets the student's
code only through its framework's adapter, which hands every answer back as torch tensors: the cases
of an implementation and how messages name them, the seeds' labels, the dtypes graded, the student's
forward and forward+backward, the hint a framework adds to a failure, how operations are counted
(the vectorised check) and what the forbidden check watches. Everything a framework states
differently is here, so that the bodies of the checks are one.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Iterator

import torch

from grader.checks.harness import Impl
from grader.spec.catalog import Activation
from grader.spec.frameworks import Framework


@dataclass(frozen=True)
class Case:
    """One parameter set of an activation, as a framework's checks grade it."""

    torch: dict  # the catalogue's parameters: torch's reference is called with them
    label: str  # how messages name the call: "leaky_relu(negative_slope=0.2)"
    seed: object  # what the case adds to its inputs' seeds (torch: the case; MLX: its label)
    native: object = None  # the framework's own statement of the case (MLX: its mlx_catalog.Case)


@dataclass(frozen=True)
class Form:
    """One form of the activation called on a case: the functional, or torch's ``<Module>Function``."""

    get: Callable[[], Callable]  # looks the student's callable up (a taped interaction) at each call
    args: tuple = ()  # after the input, as the framework's form takes them (tensors as torch tensors)
    kwargs: dict = field(default_factory=dict)
    prefix: str = ""  # before the case's label in messages ("ReLUFunction ")
    name: str = "functional"  # which form a failure is about (the feedback draws that one)


class Adapter:
    """A framework's side of the shared checks. Subclasses say everything below; the defaults are
    torch's where another framework may keep them."""

    framework: Framework
    dtypes: tuple[torch.dtype, ...] = ()  # graded by values[...] and grad[...]
    edge_dtypes: tuple[torch.dtype, ...] = ()
    kink_dtypes: tuple[torch.dtype, ...] = ()
    # the vectorised check's words: what grows with a Python loop, and what to use instead
    ops_counted: str = ""  # formatted with the count: "dispatches {count} torch ops"
    vector_ops: str = ""  # "tensor ops"
    forbidden_advice: str = ""  # after "calls X: "
    # the RReLU check's module: what a new one lacks, and the method that computes
    untrained: str = ""
    compute_method: str = ""

    def seed_label(self, purpose: str) -> str:
        """The label a check's seeds carry for ``purpose`` ("values", "grads", "up", "random", "api"):
        each framework keeps the seeds, hence the inputs and the grades, it always had."""
        return purpose

    def device(self, device: str) -> str:
        """Where this framework's inputs are made for a check asked to run on ``device``."""
        return device

    def cases(self, impl: Impl) -> list[Case]:
        raise NotImplementedError

    def case_shapes(self, entry: Activation, case: Case) -> tuple[tuple[int, ...], ...]:
        """The shapes of the random inputs ``case`` is graded on."""
        raise NotImplementedError

    def on_input(self, entry: Activation, case: Case, shape: tuple[int, ...]) -> str:
        """What a message adds about the input's shape (torch: the dim it picks for dim=None)."""
        return ""

    def functional(self, impl: Impl, case: Case, args: tuple, kwargs: dict) -> Form:
        """The functional form on ``case``; ``args, kwargs`` are torch's (the catalogue's) arguments."""
        raise NotImplementedError

    def kink_forms(self, impl: Impl, case: Case, x: torch.Tensor, args: tuple, kwargs: dict) -> list[Form]:
        """The forms whose gradients are graded at the kinks."""
        return [self.functional(impl, case, args, kwargs)]

    def random_label(self, impl: Impl, case: Case, params: dict) -> str:
        """How RReLU's check names a call in training mode."""
        raise NotImplementedError

    def random_forms(self, impl: Impl, case: Case, params: dict) -> list[Form]:
        """RReLU's forms called in training mode."""
        raise NotImplementedError

    def forward(self, impl: Impl, what: str, form: Form, x: torch.Tensor) -> torch.Tensor:
        """The student's ``form`` on ``x``, as a torch tensor (a taped call of student code)."""
        raise NotImplementedError

    def forward_backward(self, impl: Impl, what: str, form: Form, x: torch.Tensor, seed: int,
                         like: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        """The student's output and its gradients w.r.t. ``x`` and the tensor arguments, for the
        upstream gradient ``upstream_for(entry, ., seed)``: torch shapes it as the student's output,
        a framework that differentiates in one call as ``like`` (torch's output)."""
        raise NotImplementedError

    def widened(self, t: torch.Tensor) -> torch.Tensor:
        """An answer of the RReLU check as it is judged."""
        return t

    def judging(self, impl: Impl, case: Case, dtype: torch.dtype, x: torch.Tensor, got: torch.Tensor,
                grads: tuple | None = None, form: str = "functional") -> ContextManager[None]:
        """Around a comparison: what a failure inside carries (torch: its case, dtype and form, for
        the feedback; MLX: a hint where mlx.nn's own function answers the same)."""
        return contextlib.nullcontext()

    def check_signatures(self, impl: Impl) -> None:
        """The api check's first half: names defined, signatures and defaults, the module class."""
        raise NotImplementedError

    def api_cases(self, impl: Impl) -> list[Case]:
        """The cases the api check runs every form on."""
        return self.cases(impl)[:1]

    def api_shape(self, entry: Activation) -> tuple[int, ...]:
        return entry.vector_shapes[0]

    def api_forms(self, impl: Impl, case: Case, x: torch.Tensor) -> list[tuple[str, Form]]:
        """(what, form) of every form the api check runs once."""
        raise NotImplementedError

    def module_class(self, impl: Impl) -> type:
        raise NotImplementedError

    def module_kwargs(self, impl: Impl, case: Case) -> dict:
        raise NotImplementedError

    def module_label(self, impl: Impl, case: Case) -> str:
        raise NotImplementedError

    def call_module(self, what: str, module: object, x: torch.Tensor, label: str) -> torch.Tensor:
        raise NotImplementedError

    def count_ops(self, impl: Impl, case: Case, x: torch.Tensor) -> int:
        """What the vectorised check counts on ``x``: it must not grow with the input."""
        raise NotImplementedError

    def forbidden_calls(self, impl: Impl, device: str) -> Iterator[tuple[str, str | None]]:
        """(what, the first forbidden call it made, or None), recording lazily: the check stops at the
        first forbidden call."""
        raise NotImplementedError
