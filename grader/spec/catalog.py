"""The activation catalogue: one declarative entry per activation.

Every entry here drives the grader's checks (``grader/run/suite.py``), the list of names an exercise
notebook must define, and the book's tables. Adding an activation torch does not have means a
reference in ``grader/spec/references.py``, one ``Activation`` entry below, and a solution cell followed
by a ``check`` cell in ``solutions/`` (README.md, "Add an activation"); the design chapter of the
book, its exercise and the tests read the rest from here.

In the spirit of PyTorch's OpInfo tables, an entry says *what* is true of an activation (its
signature, parameters worth testing, kinks, where torch itself is odd, which ops it must not
call); the checks say *how* to test it.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

from grader.spec import references

REQUIRED = object()  # marks a parameter without a default (Threshold's threshold and value)

# Per-dtype tolerances, (rtol, atol), for values and gradients in full precision. Close to torch's own
# testing defaults; loose enough for any correct formulation (expm1 vs exp - 1, erf vs erfc,
# logsumexp vs the max trick), tight enough that a wrong constant (tanh-GELU for exact GELU: 5e-4) fails.
VALUE_TOL = {torch.float64: (1e-7, 1e-10), torch.float32: (1e-5, 1e-6)}
GRAD_TOL = {torch.float64: (1e-6, 1e-9), torch.float32: (1e-4, 1e-5)}
# Half precision is judged against a float64 truth: an error up to max(k * torch's own error, u ulps)
# passes, with (k, u) below. Computing in float32 and rounding once, as torch does, is within half an
# ulp; rounding after every step is not. Gradients get more room: torch's own are rounded twice.
HALF_VALUE_SLACK = (2.0, 0.5)
HALF_GRAD_SLACK = (4.0, 2.0)

CHAPTERS: dict[str, str] = {
    "standard": "Standard activations",
    "relu_variants": "ReLU variants",
    "modern": "Modern smooth activations",
    "hard": "Hard approximations",
    "shrinkage": "Shrinkage functions",
    "smooth": "Smooth functions",
    "gating": "Gating",
    "normalization": "Normalization",
    "design": "Design your own",
}
CHAPTER_NUMBERS: dict[str, int] = {name: i for i, name in enumerate(CHAPTERS, start=1)}


@dataclass(frozen=True)
class Param:
    """One argument of the functional form, after ``input``.

    ``module``: also a constructor argument of the module (``dtype`` of softmax is not).
    ``function``: passed to ``<Module>Function.apply`` after ``input``, in catalogue order.
    """

    name: str
    default: Any
    module: bool = True
    function: bool = True


@dataclass(frozen=True)
class Invalid:
    """Arguments torch rejects, and the exception type it raises for them."""

    kwargs: dict
    raises: type[BaseException]
    shape: tuple[int, ...] = (4, 6)


@dataclass(frozen=True)
class Activation:
    name: str  # the torch.nn module's name, also the exercise's name
    chapter: str
    functional: str | None  # the torch.nn.functional name; Softmax2d has none
    params: tuple[Param, ...] = ()
    inplace: bool = False  # functional and module take ``inplace``
    # Parameter sets to test, each overriding the defaults. The first is the defaults (only the
    # parameters without one are set): the path a call that leaves them out takes.
    cases: tuple[dict, ...] = ({},)
    # Shape of the random inputs for values and gradients.
    shape: tuple[int, ...] = (8, 16)
    # Shapes for the shape check (the last one is made non-contiguous).
    shapes: tuple[tuple[int, ...], ...] = ((), (0,), (7,), (1, 7), (2, 3, 4, 5))
    # Cases the shape check runs (None: the first).
    shape_cases: tuple[dict, ...] | None = None
    # The softmax family: with dim=None torch picks the dim from the input's number of dimensions,
    # so a case that leaves dim to torch is graded on inputs of each of these shapes (values,
    # gradients, module), and a message names the dim torch used.
    implicit_dim_shapes: tuple[tuple[int, ...], ...] = ()
    # Shapes of 10 and of 1,000 elements for the vectorisation check.
    vector_shapes: tuple[tuple[int, ...], tuple[int, ...]] = ((10,), (1000,))
    # Kinks: points where f is not differentiable, given the case's parameters.
    kinks: Callable[[dict], list[float]] = lambda p: []
    # Inputs where torch's own value (or gradient) is inconsistent or not the true limit.
    odd_values: tuple[float, ...] = ()
    odd_grads: tuple[float, ...] = ()
    odd_note: str = ""
    # Beyond this magnitude torch's own float32 result overflows where the true value is finite.
    odd_above: float | None = None
    # PReLU: the number of channels (dim 1) a case's weight needs; edge inputs are laid out to fit.
    channels: Callable[[dict], int] | None = None
    # Elementwise: edge inputs are tested one element at a time.
    elementwise: bool = True
    # Not elementwise: how the edge inputs are laid out. "rows": each row reduced over the last dim
    # (softmax-like); "pairs": rows [a, b] a gate splits into halves over the last dim (GLU);
    # "channels": the rows as the channels of (N, C, 1, 1) inputs (Softmax2d's dim -3).
    edge_layout: str = "rows"
    # ATen ops (by overload packet name) and torch callables that compute this very function.
    forbidden_ops: tuple[str, ...] = ()
    forbidden_functions: tuple[str, ...] = ()
    invalid: tuple[Invalid, ...] = ()
    random: bool = False  # RReLU: training output is random
    # Inputs span [-scale, scale] (kinks of hardswish at ±3 must be inside).
    scale: float = 4.0
    # The function as (case, x) -> module kwargs, functional kwargs, Function args
    module_kwargs: Callable[[dict], dict] | None = None
    functional_args: Callable[[dict, torch.Tensor], tuple[tuple, dict]] | None = None
    function_args: Callable[[dict, torch.Tensor], tuple] | None = None
    paper: str = ""  # bibliography key for the book
    notes: str = ""
    # An activation torch does not have: its float64 reference functional and module (grader/spec/references.py),
    # which the checks use wherever they would use torch's (see torch_functional, torch_module). For half
    # precision a reference computes in float32 and rounds once, as torch's kernels do, so "torch's own
    # error" in HALF_*_SLACK is that of such a kernel (references.py explains the choice).
    reference: Callable | None = None
    reference_module: type[torch.nn.Module] | None = None
    # Points where the pieces of a piecewise formula meet and f is still differentiable (C1 Hardswish
    # at ±3): edge inputs, graded exactly, since the derivative there is unique.
    joints: Callable[[dict], list[float]] = lambda p: []
    # A gating function over dim, like GLU: the input splits into halves (a, b); edge inputs are pairs.
    halves: bool = False
    # What messages call the tensor argument after input (PReLU's weight, Swish's beta).
    weight_name: str = "weight"
    # How the book's prose and tables name it ("C¹ Hardswish"); the name when empty.
    title: str = ""

    # ----- derived views, used by the grader and the book -------------------------------------
    @property
    def display_name(self) -> str:
        """The book's name for the activation: ``title``, else ``name``."""
        return self.title or self.name

    @property
    def function_name(self) -> str:
        return f"{self.name}Function"

    @property
    def names(self) -> tuple[str, ...]:
        """The names an implementation defines: functional, module and autograd Function."""
        out = (self.functional,) if self.functional else ()
        return out + (self.name, self.function_name)

    @property
    def slug(self) -> str:
        return self.functional or self.name.lower()

    @property
    def function_cases(self) -> tuple[dict, ...]:
        """The cases ``<Module>Function`` can express: functional-only params (dtype) at their default,
        and an explicit dim (its ``dim`` is never None)."""
        only = {p.name: p.default for p in self.params if not p.function}
        return tuple(c for c in self.cases if all(c.get(k, v) == v for k, v in only.items())
                     and not self.leaves_dim(c))

    def leaves_dim(self, case: dict) -> bool:
        """Whether ``case`` leaves the dim to torch's implicit choice (dim=None)."""
        return bool(self.implicit_dim_shapes) and self.resolve(case).get("dim") is None

    def implicit_dim(self, case: dict, ndim: int) -> int | None:
        """The dim torch uses for ``case`` on an ``ndim``-D input when the case leaves it to torch."""
        return measured_implicit_dim(self.functional or "softmax", ndim) if self.leaves_dim(case) else None

    def case_shapes(self, case: dict) -> tuple[tuple[int, ...], ...]:
        """The shapes of the random inputs ``case`` is graded on."""
        return self.implicit_dim_shapes if self.leaves_dim(case) else (self.shape,)

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params}

    def resolve(self, case: dict) -> dict:
        """The full parameter set of a case: defaults overridden by the case."""
        out = self.defaults()
        out.update(case)
        missing = [k for k, v in out.items() if v is REQUIRED]
        if missing:
            raise ValueError(f"{self.name}: case {case} leaves {missing} without a value")
        return out

    def describe(self, case: dict) -> str:
        """``elu(alpha=1.0)``: how messages name a case."""
        shown = {k: v for k, v in self.resolve(case).items()
                 if not k.startswith("_") and not (k == "dtype" and v is None)}
        inner = ", ".join(f"{k}={_short(v)}" for k, v in shown.items())
        return f"{self.slug}({inner})"

    def module_args(self, case: dict) -> dict:
        p = self.resolve(case)
        if self.module_kwargs:
            return self.module_kwargs(p)
        return {prm.name: p[prm.name] for prm in self.params if prm.module}

    def functional_arguments(self, case: dict, x: torch.Tensor) -> tuple[tuple, dict]:
        """What follows ``input`` in a call of the functional form."""
        p = self.resolve(case)
        if self.functional_args:
            return self.functional_args(p, x)
        return (), p

    def function_arguments(self, case: dict, x: torch.Tensor) -> tuple:
        """What follows ``input`` in ``<Module>Function.apply``."""
        p = self.resolve(case)
        if self.function_args:
            return self.function_args(p, x)
        return tuple(p[prm.name] for prm in self.params if prm.function)

    def functional_signature(self) -> list[tuple[str, Any]]:
        """torch's functional parameters as (name, default), ``inspect.Parameter.empty`` for none.
        Builtins (gelu, softplus, ...) have no inspectable signature: the catalogue knows theirs."""
        try:
            return [(p.name, p.default) for p in inspect.signature(self.torch_functional()).parameters.values()]
        except (TypeError, ValueError):
            empty = inspect.Parameter.empty
            out = [("input", empty)] + ([("weight", empty)] if self.name == "PReLU" else
                                        [(p.name, empty if p.default is REQUIRED else p.default) for p in self.params])
            return out + ([("inplace", False)] if self.inplace else [])

    # torch's own implementation, the reference every check compares against
    def elementwise_tensor(self, case: dict, values: list[float], dtype: torch.dtype) -> torch.Tensor:
        """Given values as a 1-D tensor, or for PReLU one column per channel."""
        x = torch.tensor(values, dtype=dtype)
        channels = self.channels(self.resolve(case)) if self.channels else 1
        return x[:, None].expand(-1, channels).contiguous() if channels > 1 else x

    @property
    def in_torch(self) -> bool:
        """One of torch.nn's activations (not one the course defines with a reference)."""
        return self.reference is None

    def torch_functional(self) -> Callable | None:
        if self.reference is not None:
            return self.reference
        return getattr(F, self.functional) if self.functional else None

    def torch_module(self) -> type[torch.nn.Module]:
        return self.reference_module or getattr(torch.nn, self.name)


def format_params(params: list[tuple[str, Any]]) -> str:
    """``input, alpha=1.0, inplace=False`` from (name, default) pairs."""
    return ", ".join(n if d is inspect.Parameter.empty else f"{n}={d!r}" for n, d in params)


def _short(v: Any) -> str:
    if isinstance(v, float) and v == 1 / 3:
        return "1/3"
    return repr(v)


IMPLICIT_DIM_WARNING = "Implicit dimension choice for"


@contextlib.contextmanager
def quiet_implicit_dim() -> Iterator[None]:
    """Silence torch's deprecation warning for dim=None: computing a reference is not a call to warn about."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=IMPLICIT_DIM_WARNING, category=UserWarning)
        yield


@functools.cache
def measured_implicit_dim(functional: str, ndim: int) -> int:
    """The dim ``F.<functional>(x)`` normalises over for an ``ndim``-D ``x`` when dim is None, measured
    on torch itself: the one explicit dim that gives the same result (sizes differ, values are distinct)."""
    shape = (2, 3, 4, 5, 6, 7)[:ndim]
    x = torch.arange(1, math.prod(shape) + 1, dtype=torch.float64).reshape(shape).sin()
    fn = getattr(F, functional)
    with quiet_implicit_dim():
        implicit = fn(x)
    dims = [d for d in range(max(ndim, 1)) if torch.equal(fn(x, d), implicit)]
    if len(dims) != 1:
        raise RuntimeError(f"F.{functional} without dim on a {ndim}-D input matches dims {dims}")
    return dims[0]


def _prelu_weight(p: dict, x: torch.Tensor) -> torch.Tensor:
    return torch.full((p["num_parameters"],), float(p["init"]), dtype=x.dtype, device=x.device)


# Softmax-like: a dimension instead of elementwise; shapes chosen so every dim is valid.
_DIM = (Param("dim", None), Param("_stacklevel", 3, module=False, function=False),
        Param("dtype", None, module=False, function=False))
_SOFTMAX_FORBIDDEN = ("_softmax", "softmax", "_log_softmax", "log_softmax", "special_softmax",
                      "special_log_softmax")
# First the default, dim=None: torch's implicit choice, graded on 0-D to 4-D inputs.
_DIM_CASES = ({}, {"dim": -1}, {"dim": 0}, {"dim": 1}, {"dim": 1, "dtype": torch.float64})


def _dim_entry(functional: str) -> dict:
    """What the softmax family's entries share besides their names."""
    def explicit_dim(p: dict, x: torch.Tensor) -> tuple:
        # <Module>Function takes an explicit dim: for dim=None, the one torch would use
        return (measured_implicit_dim(functional, x.dim()) if p["dim"] is None else p["dim"],)

    return dict(
        params=_DIM, cases=_DIM_CASES, function_args=explicit_dim,
        shape=(4, 6, 5), shapes=((), (0, 5), (7,), (1, 5), (3, 4, 5), (2, 3, 4, 5)), shape_cases=({}, {"dim": -1}),
        implicit_dim_shapes=((), (5,), (4, 5), (4, 6, 5), (2, 3, 4, 5)), vector_shapes=((2, 5), (10, 100)),
        elementwise=False, scale=10.0, forbidden_ops=_SOFTMAX_FORBIDDEN,
    )


ACTIVATIONS: tuple[Activation, ...] = (
    # ------------------------------------------------------------------ standard
    Activation(
        "ReLU", "standard", "relu", inplace=True,
        kinks=lambda p: [0.0],
        forbidden_ops=("relu", "relu_", "threshold", "threshold_", "hardtanh", "_prelu_kernel",
                       "leaky_relu"),
        paper="nair2010rectified",
    ),
    Activation(
        "Sigmoid", "standard", "sigmoid",
        forbidden_ops=("sigmoid", "sigmoid_", "special_expit"),
        paper="rumelhart1986learning",
    ),
    Activation(
        "Tanh", "standard", "tanh",
        forbidden_ops=("tanh", "tanh_"),
        paper="lecun1998efficient",
    ),
    # ------------------------------------------------------------------ ReLU variants
    Activation(
        "LeakyReLU", "relu_variants", "leaky_relu",
        params=(Param("negative_slope", 0.01),), inplace=True,
        cases=({}, {"negative_slope": 0.2}, {"negative_slope": 2.0}),
        kinks=lambda p: [0.0],
        forbidden_ops=("leaky_relu", "leaky_relu_", "_prelu_kernel", "rrelu_with_noise"),
        paper="maas2013rectifier",
    ),
    Activation(
        "PReLU", "relu_variants", "prelu",
        params=(Param("num_parameters", 1), Param("init", 0.25)),
        cases=({}, {"num_parameters": 3, "init": -0.5}, {"init": 1.5}),
        shape=(4, 3, 5), shapes=((), (0,), (7,), (1, 7), (2, 3, 4, 5)),
        kinks=lambda p: [0.0],
        module_kwargs=lambda p: {"num_parameters": p["num_parameters"], "init": p["init"]},
        functional_args=lambda p, x: ((_prelu_weight(p, x),), {}),
        function_args=lambda p, x: (_prelu_weight(p, x),),
        channels=lambda p: p["num_parameters"],
        forbidden_ops=("prelu", "_prelu_kernel", "leaky_relu", "rrelu_with_noise"),
        # the channels are dim 1; a 0-D or 1-D input has none, so it takes one shared slope only
        invalid=(Invalid({"num_parameters": 3}, RuntimeError, shape=(3,)),
                 Invalid({"num_parameters": 3}, RuntimeError, shape=())),
        paper="he2015delving",
        notes="weight is one slope per channel (dim 1), or one slope shared by all.",
    ),
    Activation(
        "ReLU6", "relu_variants", "relu6", inplace=True,
        kinks=lambda p: [0.0, 6.0], scale=8.0,
        forbidden_ops=("hardtanh", "hardtanh_", "relu6", "relu6_"),
        paper="krizhevsky2010convolutional",
    ),
    Activation(
        "ELU", "relu_variants", "elu",
        params=(Param("alpha", 1.0),), inplace=True,
        cases=({}, {"alpha": 0.5}, {"alpha": 2.0}),
        kinks=lambda p: [0.0] if p["alpha"] != 1.0 else [],
        forbidden_ops=("elu", "elu_", "celu", "celu_", "selu", "selu_"),
        paper="clevert2015fast",
    ),
    Activation(
        "CELU", "relu_variants", "celu",
        params=(Param("alpha", 1.0),), inplace=True,
        cases=({}, {"alpha": 0.5}, {"alpha": 2.0}),
        forbidden_ops=("elu", "elu_", "celu", "celu_", "selu", "selu_"),
        invalid=(Invalid({"alpha": 0.0}, RuntimeError),),
        paper="barron2017continuously",
    ),
    Activation(
        "SELU", "relu_variants", "selu", inplace=True,
        kinks=lambda p: [0.0],
        forbidden_ops=("elu", "elu_", "celu", "celu_", "selu", "selu_"),
        paper="klambauer2017self",
    ),
    Activation(
        "RReLU", "relu_variants", "rrelu",
        params=(Param("lower", 1.0 / 8), Param("upper", 1.0 / 3), Param("training", False, module=False)),
        inplace=True,
        cases=({}, {"lower": 0.1, "upper": 0.3}),
        kinks=lambda p: [0.0],
        random=True,
        forbidden_ops=("rrelu", "rrelu_", "rrelu_with_noise", "rrelu_with_noise_", "leaky_relu",
                       "leaky_relu_", "_prelu_kernel"),
        invalid=(Invalid({"lower": 0.5, "upper": 0.1}, RuntimeError),),
        paper="xu2015empirical",
    ),
    Activation(
        "Threshold", "relu_variants", "threshold",
        params=(Param("threshold", REQUIRED), Param("value", REQUIRED)), inplace=True,
        cases=({"threshold": 0.1, "value": 20.0}, {"threshold": -1.0, "value": -2.0},
               {"threshold": 0.0, "value": 0.0}),
        kinks=lambda p: [p["threshold"]],
        forbidden_ops=("threshold", "threshold_", "relu", "relu_"),
        notes="threshold and value have no default, as in torch.",
    ),
    # ------------------------------------------------------------------ modern
    Activation(
        "GELU", "modern", "gelu",
        params=(Param("approximate", "none"),),
        cases=({}, {"approximate": "tanh"}),
        odd_values=(math.inf, -math.inf), odd_grads=(math.inf, -math.inf),
        odd_note="torch's vectorised CPU kernel gives nan at ±inf (1 for a single element), and inf in "
                 "float32 above float32's max / 2, where x * (1 + erf) overflows",
        odd_above=torch.finfo(torch.float32).max / 2,
        forbidden_ops=("gelu", "gelu_"),
        invalid=(Invalid({"approximate": "fast"}, RuntimeError),),
        paper="hendrycks2016gaussian",
    ),
    Activation(
        "SiLU", "modern", "silu", inplace=True,
        odd_values=(-math.inf,), odd_grads=(math.inf, -math.inf),
        odd_note="torch gives nan at -inf, where the limit is 0",
        forbidden_ops=("silu", "silu_"),
        paper="ramachandran2017searching",
    ),
    Activation(
        "Mish", "modern", "mish", inplace=True,
        odd_values=(-math.inf,), odd_grads=(math.inf, -math.inf),
        odd_note="torch gives nan at -inf, where the limit is 0",
        forbidden_ops=("mish", "mish_"),
        paper="misra2019mish",
    ),
    # ------------------------------------------------------------------ hard approximations
    Activation(
        "Hardtanh", "hard", "hardtanh",
        params=(Param("min_val", -1.0), Param("max_val", 1.0)), inplace=True,
        cases=({}, {"min_val": -2.0, "max_val": 0.5}, {"min_val": 0.0, "max_val": 6.0}),
        kinks=lambda p: [p["min_val"], p["max_val"]], scale=8.0,
        forbidden_ops=("hardtanh", "hardtanh_", "relu6"),
        invalid=(Invalid({"min_val": 2.0, "max_val": 1.0}, ValueError),),
        paper="collobert2004large",
    ),
    Activation(
        "Hardsigmoid", "hard", "hardsigmoid", inplace=True,
        kinks=lambda p: [-3.0, 3.0],
        forbidden_ops=("hardsigmoid", "hardsigmoid_"),
        paper="howard2019searching",
    ),
    Activation(
        "Hardswish", "hard", "hardswish", inplace=True,
        kinks=lambda p: [-3.0, 3.0],
        odd_values=(-math.inf,),
        odd_note="torch gives nan at -inf (-inf times 0), where the limit is 0; it computes x * 6 / 6 for "
                 "x >= 3, which overflows to inf in float32 above float32's max / 6",
        odd_above=torch.finfo(torch.float32).max / 6,
        forbidden_ops=("hardswish", "hardswish_"),
        paper="howard2019searching",
    ),
    # ------------------------------------------------------------------ shrinkage
    Activation(
        "Softshrink", "shrinkage", "softshrink",
        params=(Param("lambd", 0.5),),
        cases=({}, {"lambd": 1.0}, {"lambd": 0.0}),
        kinks=lambda p: [-p["lambd"], p["lambd"]],
        forbidden_ops=("softshrink",),
        invalid=(Invalid({"lambd": -1.0}, RuntimeError),),
        paper="donoho1995noising",
    ),
    Activation(
        "Hardshrink", "shrinkage", "hardshrink",
        params=(Param("lambd", 0.5),),
        cases=({}, {"lambd": 1.0}, {"lambd": 0.0}),
        kinks=lambda p: [-p["lambd"], p["lambd"]],
        forbidden_ops=("hardshrink",),
        paper="donoho1995noising",
    ),
    Activation(
        "Tanhshrink", "shrinkage", "tanhshrink",
        forbidden_functions=("torch.nn.functional.tanhshrink",),
        forbidden_ops=(),
    ),
    # ------------------------------------------------------------------ smooth
    Activation(
        "Softplus", "smooth", "softplus",
        params=(Param("beta", 1.0), Param("threshold", 20.0)),
        cases=({}, {"beta": 2.0, "threshold": 5.0}, {"beta": 0.5}),
        # where beta * x crosses threshold, softplus switches to x: a jump of log1p(exp(-threshold)) / beta,
        # which is visible only for a small threshold
        kinks=lambda p: [p["threshold"] / p["beta"]] if p["threshold"] < 10 else [],
        forbidden_ops=("softplus",),
        scale=30.0,
        paper="dugas2001incorporating",
    ),
    Activation(
        "Softsign", "smooth", "softsign",
        odd_values=(math.inf, -math.inf), odd_grads=(math.inf, -math.inf),
        odd_note="torch computes x / (1 + |x|), which is nan at ±inf where the limit is ±1",
        forbidden_functions=("torch.nn.functional.softsign",),
        paper="bergstra2009quadratic",
    ),
    Activation(
        "LogSigmoid", "smooth", "logsigmoid",
        forbidden_ops=("log_sigmoid", "log_sigmoid_forward", "softplus"),
        scale=30.0,
    ),
    # ------------------------------------------------------------------ gating
    Activation(
        "GLU", "gating", "glu",
        params=(Param("dim", -1),),
        cases=({}, {"dim": 0}, {"dim": 1}),
        shape=(4, 6, 8), shapes=((0, 4), (6,), (1, 4), (2, 4, 6, 8)), vector_shapes=((5, 2), (10, 100)),
        elementwise=False, edge_layout="pairs",
        odd_values=(math.inf, -math.inf), odd_grads=(math.inf, -math.inf),
        odd_note="with a = ±inf torch's value or gradient is nan or ±inf depending on the kernel path",
        forbidden_ops=("glu",),
        invalid=(Invalid({"dim": -1}, RuntimeError, shape=(4, 5)),),
        paper="dauphin2017language",
    ),
    # ------------------------------------------------------------------ normalization
    Activation(
        "Softmax", "normalization", "softmax", **_dim_entry("softmax"),
        paper="bridle1990probabilistic",
    ),
    Activation(
        "LogSoftmax", "normalization", "log_softmax", **_dim_entry("log_softmax"),
        paper="bridle1990probabilistic",
    ),
    Activation(
        "Softmin", "normalization", "softmin", **_dim_entry("softmin"),
        forbidden_functions=("torch.nn.functional.softmin",),
    ),
    Activation(
        "Softmax2d", "normalization", None,
        shape=(2, 3, 4, 5), shapes=((3, 1, 5), (0, 3, 4, 5), (2, 3, 4, 5)),
        vector_shapes=((2, 1, 5), (10, 10, 10)),
        elementwise=False, edge_layout="channels", scale=10.0,
        forbidden_ops=_SOFTMAX_FORBIDDEN,
        invalid=(Invalid({}, ValueError, shape=(4, 5)),),
        notes="softmax over the channel dimension (-3) of a 3-D or 4-D input.",
    ),
    # ------------------------------------------------------------------ design your own: no torch op,
    # graded against grader/spec/references.py
    Activation(
        "HardswishC1", "design", "hardswish_c1", inplace=True, title="C¹ Hardswish",
        joints=lambda p: [-3.0, 3.0],
        forbidden_ops=("hardswish", "hardswish_"),
        reference=references.hardswish_c1, reference_module=references.HardswishC1,
        notes="x (x+3)^2 (6-x) / 108 on (-3, 3): Hardswish with a continuous derivative.",
    ),
    Activation(
        "Swish", "design", "swish", title="Swish-β",
        params=(Param("num_parameters", 1), Param("init", 1.0)),
        cases=({}, {"num_parameters": 3, "init": 0.5}, {"init": 0.0}, {"init": -2.0}),
        shape=(4, 3, 5),
        functional_args=lambda p, x: ((_prelu_weight(p, x),), {}),
        function_args=lambda p, x: (_prelu_weight(p, x),),
        channels=lambda p: p["num_parameters"],
        weight_name="beta",
        # silu(beta x) / beta is swish: beta's gradient is the exercise
        forbidden_ops=("silu", "silu_"),
        invalid=(Invalid({"num_parameters": 3}, RuntimeError, shape=(4, 6)),),
        reference=references.swish, reference_module=references.Swish,
        paper="ramachandran2017searching",
        notes="beta is one value per channel (dim 1), or one shared by all, as PReLU's weight.",
    ),
    *(Activation(
        name, "design", functional,
        params=(Param("dim", -1),),
        cases=({}, {"dim": 0}, {"dim": 1}),
        shape=(4, 6, 8), shapes=((0, 4), (6,), (1, 4), (2, 4, 6, 8)), vector_shapes=((5, 2), (10, 100)),
        elementwise=False, halves=True,
        **extra,
        forbidden_ops=("glu",),  # F.silu, F.gelu and F.relu are allowed: the gate is the exercise
        invalid=(Invalid({"dim": -1}, RuntimeError, shape=(4, 5)),),
        reference=getattr(references, functional), reference_module=getattr(references, name),
        paper="shazeer2020glu",
        notes="a * gate(b), with the halves a and b of the input along dim as in F.glu.",
    ) for name, functional, extra in (
        ("SwiGLU", "swiglu", {}),
        ("GeGLU", "geglu", {}),
        # relu'(0) is a convention (torch's relu: 0, clamp: 1): the edge rows with b = 0 accept either
        ("ReGLU", "reglu", dict(odd_grads=(0.0,), odd_note="relu's derivative at b = 0 is a convention: "
                                "any value in [0, 1] times a is a valid subgradient")),
    )),
    Activation(
        "SquaredReLU", "design", "squared_relu", inplace=True, title="Squared ReLU",
        joints=lambda p: [0.0],
        reference=references.squared_relu, reference_module=references.SquaredReLU,
        paper="so2021primer",
    ),
    Activation(
        "Snake", "design", "snake",
        params=(Param("num_parameters", 1), Param("init", 1.0)),
        cases=({}, {"num_parameters": 3, "init": 0.5}, {"init": 0.0}),
        shape=(4, 3, 5),
        functional_args=lambda p, x: ((_prelu_weight(p, x),), {}),
        function_args=lambda p, x: (_prelu_weight(p, x),),
        channels=lambda p: p["num_parameters"],
        weight_name="alpha",
        odd_grads=(math.inf, -math.inf),
        odd_note="f'(x) = 1 + sin(2 alpha x) has no limit at ±inf",
        invalid=(Invalid({"num_parameters": 3}, RuntimeError, shape=(4, 6)),),
        reference=references.snake, reference_module=references.Snake,
        paper="ziyin2020neural",
        notes="alpha is one value per channel (dim 1), or one shared by all; alpha = 0 is the limit x.",
    ),
)

BY_NAME: dict[str, Activation] = {a.name: a for a in ACTIVATIONS}


def by_chapter(chapter: str) -> list[Activation]:
    return [a for a in ACTIVATIONS if a.chapter == chapter]


def chapter_stem(chapter: str) -> str:
    """``02_relu_variants``: the file stem of a chapter's notebooks."""
    return f"{CHAPTER_NUMBERS[chapter]:02d}_{chapter}"
