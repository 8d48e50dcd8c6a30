"""The MLX exercises: for each catalogue entry, the names, parameters and cases of its MLX port.

An MLX submission (one that imports ``mlx``) defines ``mlx.nn``'s names where ``mlx.nn`` has the
activation and torch's otherwise; it is graded against torch, on the torch entry's cases expressed
in MLX's arguments (``axis`` for ``dim``, MLX's default ``axis=-1`` for the softmax family).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from grader.spec.catalog import BY_NAME, REQUIRED, Activation

NO_MLX = "MLX is not installed here (no wheel for this platform, e.g. Windows): the MLX checks are skipped"


@dataclass(frozen=True)
class Port:
    entry: str  # the torch catalogue name
    functional: str
    cls: str
    # after ``x``: (MLX name, default, torch name); the class takes ``init`` (default: the same)
    params: tuple[tuple[str, object, str], ...] = ()
    init: tuple[tuple[str, object, str], ...] | None = None
    in_mlx_nn: bool = True  # mlx.nn has a function of this name
    # where mlx.nn's own function answers differently from torch, and why (shown when a submission
    # gives what mlx.nn gives)
    differs: str = ""
    core: tuple[str, ...] = ()  # mlx.core functions that compute this very activation
    extra: tuple[str, ...] = ()  # more functionals (GELU's gelu_approx)

    @property
    def activation(self) -> Activation:
        return BY_NAME[self.entry]

    @property
    def class_params(self) -> tuple[tuple[str, object, str], ...]:
        return self.params if self.init is None else self.init

    @property
    def names(self) -> tuple[str, ...]:
        return (self.functional, *self.extra, self.cls)


@dataclass(frozen=True)
class Case:
    torch_case: dict  # for the torch reference (catalogue parameter names)
    functional: str
    kwargs: dict = field(default_factory=dict)  # MLX functional keyword arguments
    init: dict = field(default_factory=dict)  # MLX class arguments

    def describe(self) -> str:
        return f"{self.functional}({', '.join(f'{k}={v!r}' for k, v in self.kwargs.items())})"


def _same_named(*names: str, defaults: tuple = ()) -> tuple:
    """Parameters MLX names as torch does: ``(MLX's name, default, torch's name)`` each."""
    return tuple((n, d, n) for n, d in zip(names, defaults))


_SOFTMAX = "the softmax family's MLX default is axis=-1 (torch's dim=None depends on the input's dims)"
_AXIS = (("axis", -1, "dim"),)
PORTS: tuple[Port, ...] = (
    Port("ReLU", "relu", "ReLU"),
    Port("Sigmoid", "sigmoid", "Sigmoid", core=("sigmoid",)),
    Port("Tanh", "tanh", "Tanh", core=("tanh",)),
    Port("LeakyReLU", "leaky_relu", "LeakyReLU", _same_named("negative_slope", defaults=(0.01,)),
         differs="mlx.nn.leaky_relu is max(x, slope * x), which for a slope > 1 is slope * x at x > 0; torch's is x"),
    Port("PReLU", "prelu", "PReLU", (("alpha", REQUIRED, "weight"),),
         init=_same_named("num_parameters", "init", defaults=(1, 0.25)),
         differs="mlx.nn.prelu is max(0, x) + alpha * min(0, x): its gradient at 0 is not torch's (alpha), "
                 "and it broadcasts alpha over the last axis, torch over the channels (axis 1)"),
    Port("ReLU6", "relu6", "ReLU6"),
    Port("ELU", "elu", "ELU", _same_named("alpha", defaults=(1.0,)),
         differs="mlx.nn.elu computes exp(x) in both branches, which overflows above 88 in float32"),
    Port("CELU", "celu", "CELU", _same_named("alpha", defaults=(1.0,)),
         differs="mlx.nn.celu is max(x, 0) + alpha * (exp(min(x, 0) / alpha) - 1): its gradient at 0 is not "
                 "torch's (1)"),
    Port("SELU", "selu", "SELU",
         differs="mlx.nn.selu rounds its constants to 1.0507 and 1.67326; torch's are "
                 "1.0507009873554805 and 1.6732632423543772"),
    Port("RReLU", "rrelu", "RReLU", _same_named("lower", "upper", "training", defaults=(1.0 / 8, 1.0 / 3, False)),
         init=_same_named("lower", "upper", defaults=(1.0 / 8, 1.0 / 3)), in_mlx_nn=False),
    Port("Threshold", "threshold", "Threshold", _same_named("threshold", "value", defaults=(REQUIRED, REQUIRED)),
         in_mlx_nn=False),
    Port("GELU", "gelu", "GELU", init=(("approx", "none", "approximate"),), extra=("gelu_approx",)),
    Port("SiLU", "silu", "SiLU"),
    Port("Mish", "mish", "Mish"),
    Port("Hardtanh", "hard_tanh", "HardTanh", _same_named("min_val", "max_val", defaults=(-1.0, 1.0))),
    Port("Hardsigmoid", "hardsigmoid", "Hardsigmoid", in_mlx_nn=False),
    Port("Hardswish", "hardswish", "Hardswish"),
    Port("Softshrink", "softshrink", "Softshrink", _same_named("lambd", defaults=(0.5,))),
    Port("Hardshrink", "hard_shrink", "HardShrink", _same_named("lambd", defaults=(0.5,))),
    Port("Tanhshrink", "tanhshrink", "Tanhshrink", in_mlx_nn=False),
    Port("Softplus", "softplus", "Softplus", _same_named("beta", "threshold", defaults=(1.0, 20.0)),
         differs="mlx.nn.softplus has neither beta nor threshold (it is logaddexp(x, 0))"),
    Port("Softsign", "softsign", "Softsign"),
    Port("LogSigmoid", "log_sigmoid", "LogSigmoid"),
    Port("GLU", "glu", "GLU", (("axis", -1, "dim"),)),
    Port("Softmax", "softmax", "Softmax", _AXIS, core=("softmax",)),
    Port("LogSoftmax", "log_softmax", "LogSoftmax", _AXIS, core=("softmax",)),
    Port("Softmin", "softmin", "Softmin", _AXIS, core=("softmax",)),
    Port("Softmax2d", "softmax2d", "Softmax2d", in_mlx_nn=False, core=("softmax",)),
)
PORT_OF: dict[str, Port] = {p.entry: p for p in PORTS}


def cases(port: Port) -> list[Case]:
    """The torch entry's cases that MLX can express, the first being the MLX defaults."""
    entry, out = port.activation, []
    for n, case in enumerate(entry.cases):
        p = entry.resolve(case)
        if p.get("dtype") is not None:
            continue  # softmax's dtype argument has no MLX counterpart
        torch_case = dict(case)
        if "dim" in p and p["dim"] is None:
            torch_case["dim"] = -1  # MLX's default axis
        if n and entry.implicit_dim_shapes and torch_case.get("dim") == -1:
            continue  # the defaults already are axis=-1
        p = entry.resolve(torch_case)
        kwargs = {m: p[t] for m, _, t in port.params if t in p and (n or t in case)}
        init = {m: p[t] for m, _, t in port.class_params if t in p and (n or t in case)}
        functional = port.functional
        if port.entry == "GELU":
            tanh = p["approximate"] == "tanh"
            functional, init = ("gelu_approx", {"approx": "tanh"}) if tanh else ("gelu", {})
        out.append(Case(torch_case, functional, kwargs, init))
    return out


def available() -> bool:
    """Whether MLX can be imported here (it has no wheel for Windows)."""
    try:
        import mlx.core  # noqa: F401  (a package can be found yet fail to import: no wheel, wrong platform)
    except Exception:
        return False
    return True


def graded(namespace: dict) -> list[Activation]:
    """Every activation whose MLX names the submission defines, in catalogue order."""
    return [p.activation for p in PORTS if any(n in namespace for n in p.names)]
