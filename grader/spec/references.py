"""Float64 references for the activations torch does not have: the truth the grader checks them against.

Each is written from its paper's defining formula, not from the course's solutions: a functional with
the signature students must give theirs, and a module with the constructor, parameters and ``repr``
theirs must have. Where a formula is undefined or overflows (``inf * 0``, ``0 / 0``, ``sin(inf)``),
the reference takes the mathematical limit, so the edge checks grade limits, not what a naive formula
happens to give. Where no limit exists, the catalogue lists the input as odd instead.

Precision. float32 and float64 inputs are computed in float64 and rounded once: the reference is the
correctly rounded value, not one float32 kernel's result. Half-precision inputs are computed in
float32 and rounded once, which is what every torch activation kernel does for float16/bfloat16;
the grader judges half precision against the float64 value, allowing a multiple of "torch's own
error" (``catalog.HALF_VALUE_SLACK``). For these activations that error is the error of a float32
kernel that rounds once, the bar a student's float32-then-round implementation meets; a float64
kernel would leave only the rounding error and a tighter, not a fairer, allowance.

Every functional takes part in torch's ``__torch_function__`` protocol, like the functions of
``torch.nn.functional``: the grader's recorder sees a call to it, so a submission that imports the
reference instead of writing the activation fails the forbidden-op check.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.overrides import handle_torch_function, has_torch_function

_HALF = (torch.float16, torch.bfloat16)


def _up(t: Tensor) -> Tensor:
    """The dtype the reference computes in (see the module's docstring)."""
    return t.float() if t.dtype in _HALF else t.double()


def _down(input: Tensor, out: Tensor, inplace: bool = False) -> Tensor:
    out = out.to(input.dtype)
    return input.copy_(out) if inplace else out


def _per_channel(input: Tensor, weight: Tensor | float, name: str) -> Tensor:
    """``weight`` shaped to broadcast over ``input``: one value for every element, or one per channel
    (dim 1), as PReLU's weight."""
    weight = torch.as_tensor(weight, device=input.device)
    if weight.dim() > 1:
        raise RuntimeError(f"{name}: expected a scalar or a 1-D tensor, got {weight.dim()} dimensions")
    if weight.numel() == 1:
        return weight.reshape(())
    if input.dim() < 2 or input.size(1) != weight.numel():
        channels = input.size(1) if input.dim() >= 2 else "no channel dimension"
        raise RuntimeError(f"{name}: {weight.numel()} values, one per channel, but the input (dim 1) has "
                           f"{channels}")
    shape = [1] * input.dim()
    shape[1] = weight.numel()
    return weight.reshape(shape)


def _halves(input: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """First and second half of ``input`` along ``dim``; torch's errors for GLU on a 0-d input or an
    odd size."""
    if input.dim() == 0:
        raise RuntimeError("a gated unit needs a dimension to split: got a 0-d input")
    size = input.size(dim)  # IndexError for a dim out of range
    if size % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {dim % input.dim()} is size {size}")
    return input.tensor_split(2, dim)


def _protocol(fn, input: Tensor, *args, **kwargs):
    """``handle_torch_function`` when a mode or a subclass asks for it, else None."""
    if has_torch_function((input,)):
        return handle_torch_function(fn, (input,), input, *args, **kwargs)
    return None


# ------------------------------------------------------------------------------ C1 Hardswish

def hardswish_c1(input: Tensor, inplace: bool = False) -> Tensor:
    r"""Hardswish with a continuous derivative: :math:`x (x+3)^2 (6-x) / 108` on :math:`(-3, 3)`,
    0 below, :math:`x` above. Value and first derivative match at :math:`\pm 3`."""
    handled = _protocol(hardswish_c1, input, inplace=inplace)
    if handled is not None:
        return handled
    x = _up(input)
    inside = (x > -3) & (x < 3)
    m = torch.where(inside, x, 0.0)  # the quartic only sees (-3, 3): no inf * 0 in its gradient at ±inf
    quartic = m * (m + 3) ** 2 * (6 - m) / 108
    # nan fails both comparisons and takes the x branch: it propagates
    return _down(input, torch.where(x <= -3, 0.0, torch.where(x < 3, quartic, x)), inplace)


class HardswishC1(nn.Module):
    __constants__ = ["inplace"]

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return hardswish_c1(input, self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


# ------------------------------------------------------------------------------ Swish-beta

def _swish(x: Tensor, beta: Tensor) -> Tensor:
    r""":math:`x \sigma(\beta x)` in ``x``'s dtype, with its limits at :math:`x = \pm\infty`."""
    inf = torch.isinf(x)
    xf = torch.where(inf, 0.0, x)  # the formula only sees finite (or nan) x
    y = xf * torch.sigmoid(beta * xf)
    # x -> ±inf: sigma(beta x) -> 1 where beta x -> +inf, 0 where it -> -inf, 1/2 for beta = 0
    gate = torch.where(beta == 0, 0.5, torch.where(beta * torch.sign(x) > 0, 1.0, 0.0))
    limit = torch.where(gate == 0, 0.0, x * gate)  # not inf * 0
    return torch.where(inf, limit, y)


def swish(input: Tensor, beta: Tensor) -> Tensor:
    r"""Swish (Ramachandran et al., 2017): :math:`x \, \sigma(\beta x)`, with :math:`\beta` one value or
    one per channel (dim 1 of ``input``)."""
    handled = _protocol(swish, input, beta)
    if handled is not None:
        return handled
    b = _per_channel(input, beta, "swish")
    return _down(input, _swish(_up(input), _up(b)))


class Swish(nn.Module):
    __constants__ = ["num_parameters"]

    def __init__(self, num_parameters: int = 1, init: float = 1.0, device=None, dtype=None) -> None:
        super().__init__()
        self.num_parameters = num_parameters
        self.init = init
        self.beta = nn.Parameter(torch.empty(num_parameters, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.constant_(self.beta, self.init)

    def forward(self, input: Tensor) -> Tensor:
        return swish(input, self.beta)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


# ------------------------------------------------------------------------------ gated linear units

def _gelu(b: Tensor) -> Tensor:
    r""":math:`b \Phi(b)`, the exact GELU, with :math:`\Phi` through ``erfc`` (no cancellation for
    :math:`b \ll 0`) and its limits at :math:`\pm\infty`."""
    inf = torch.isinf(b)
    bf = torch.where(inf, 0.0, b)
    y = bf * 0.5 * torch.erfc(-bf / math.sqrt(2))
    return torch.where(inf, torch.where(b > 0, b, 0.0), y)


def _relu(b: Tensor) -> Tensor:
    return torch.where(b <= 0, 0.0, b)  # nan propagates; the derivative at 0 is 0, as torch's relu


def _gated(gate, input: Tensor, dim: int) -> Tensor:
    a, b = _halves(_up(input), dim)
    return _down(input, a * gate(b))


def swiglu(input: Tensor, dim: int = -1) -> Tensor:
    r"""SwiGLU (Shazeer, 2020): :math:`a \otimes \mathrm{Swish}_1(b)`, with the halves :math:`a`, :math:`b`
    of ``input`` along ``dim`` as in ``F.glu`` (which is :math:`a \otimes \sigma(b)`)."""
    handled = _protocol(swiglu, input, dim)
    if handled is not None:
        return handled
    return _gated(lambda b: _swish(b, torch.ones((), dtype=b.dtype, device=b.device)), input, dim)


def geglu(input: Tensor, dim: int = -1) -> Tensor:
    r"""GeGLU (Shazeer, 2020): :math:`a \otimes \mathrm{GELU}(b)`, exact (erf) GELU, halves as ``F.glu``."""
    handled = _protocol(geglu, input, dim)
    if handled is not None:
        return handled
    return _gated(_gelu, input, dim)


def reglu(input: Tensor, dim: int = -1) -> Tensor:
    r"""ReGLU (Shazeer, 2020): :math:`a \otimes \mathrm{ReLU}(b)`, halves as ``F.glu``."""
    handled = _protocol(reglu, input, dim)
    if handled is not None:
        return handled
    return _gated(_relu, input, dim)


class _Gated(nn.Module):
    __constants__ = ["dim"]
    _functional = staticmethod(swiglu)

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return self._functional(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class SwiGLU(_Gated):
    _functional = staticmethod(swiglu)


class GeGLU(_Gated):
    _functional = staticmethod(geglu)


class ReGLU(_Gated):
    _functional = staticmethod(reglu)


# ------------------------------------------------------------------------------ squared ReLU

def squared_relu(input: Tensor, inplace: bool = False) -> Tensor:
    r"""Squared ReLU (So et al., 2021, Primer): :math:`\max(0, x)^2`."""
    handled = _protocol(squared_relu, input, inplace=inplace)
    if handled is not None:
        return handled
    r = _relu(_up(input))
    return _down(input, r * r, inplace)


class SquaredReLU(nn.Module):
    __constants__ = ["inplace"]

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return squared_relu(input, self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


# ------------------------------------------------------------------------------ Snake

# sin(t)/t = sum_k (-1)^k t^(2k) / (2k+1)!; ten terms leave an error below 1/21! < 2^-53 for |t| <= 1
_SIN_OVER_T = [(-1) ** k / math.factorial(2 * k + 1) for k in range(10)]


def _sin_over(t: Tensor) -> Tensor:
    """sin(t)/t for |t| <= 1 as a polynomial: differentiable any number of times at t = 0 (the second
    derivative of torch.sinc is nan there)."""
    u = t * t
    out = torch.full_like(t, _SIN_OVER_T[-1])
    for c in reversed(_SIN_OVER_T[:-1]):
        out = out * u + c
    return out


def snake(input: Tensor, alpha: Tensor) -> Tensor:
    r"""Snake (Ziyin et al., 2020): :math:`x + \sin^2(\alpha x) / \alpha`, with :math:`\alpha` one value or
    one per channel (dim 1); at :math:`\alpha = 0` its limit :math:`x`, with the derivatives of the
    limit :math:`x + \alpha x^2`."""
    handled = _protocol(snake, input, alpha)
    if handled is not None:
        return handled
    x, a = _up(input), _up(_per_channel(input, alpha, "snake"))
    t = a * x
    small = t.abs() < 1  # alpha = 0 included (for finite x)
    ts, xs = torch.where(small, t, 0.0), torch.where(small, x, 0.0)
    # sin^2(t) / alpha = alpha x^2 (sin t / t)^2 = t x (sin t / t)^2: no division, exact as alpha -> 0
    near = ts * xs * _sin_over(ts) ** 2
    s = torch.sin(torch.where(small, 0.0, t))
    far = s * s / torch.where(small, 1.0, a)
    periodic = torch.where(small, near, far)
    # x = ±inf: sin^2 is bounded, so the limit is x itself (its derivative has none: the catalogue's odd_grads)
    return _down(input, x + torch.where(torch.isinf(x), 0.0, periodic))


class Snake(nn.Module):
    __constants__ = ["num_parameters"]

    def __init__(self, num_parameters: int = 1, init: float = 1.0, device=None, dtype=None) -> None:
        super().__init__()
        self.num_parameters = num_parameters
        self.init = init
        self.alpha = nn.Parameter(torch.empty(num_parameters, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.constant_(self.alpha, self.init)

    def forward(self, input: Tensor) -> Tensor:
        return snake(input, self.alpha)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"
