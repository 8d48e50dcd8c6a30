"""Every kind of check is proven both ways: a realistic wrong implementation it catches, and a
correct but different formulation that passes every check (so checks are not tuned to the
reference solutions).

Each case starts from the reference solution notebook and overrides some names, the way a student
notebook would define them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from grader.catalog import BY_NAME, IMPLICIT_DIM_WARNING
from grader.checks.torch_checks import CHECKS, checks_for
from grader.checks.harness import Impl
from grader.core.errors import CheckFailure

from conftest import fresh_solution

# the solutions warn for dim=None as torch does; the grade ignores it
pytestmark = pytest.mark.filterwarnings(f"ignore:{IMPLICIT_DIM_WARNING}:UserWarning")


@dataclass(frozen=True)
class Wrong:
    activation: str
    check: str  # the check that must fail
    message: str  # a fragment its message must contain
    code: str
    why: str


# dim=None read as the last dim, the softmax family's most likely wrong default
NONE_AS_LAST = ("_orig_{name} = {name}\n"
                "def {name}(input, dim=None, _stacklevel=3, dtype=None):\n"
                "    return _orig_{name}(input, -1 if dim is None else dim, _stacklevel, dtype)")

WRONG = [
    # ---- api
    Wrong("LeakyReLU", "api", "torch's signature is leaky_relu(input, negative_slope=0.01, inplace=False)",
          "def leaky_relu(input, negative_slope=0.1, inplace=False):\n"
          "    return torch.where(input > 0, input, input * negative_slope)",
          "a wrong default"),
    Wrong("ELU", "api", "has no parameter 'alpha'",
          "class ELU(nn.Module):\n"
          "    def __init__(self, a=1.0, inplace=False):\n"
          "        super().__init__(); self.alpha, self.inplace = a, inplace\n"
          "    def forward(self, x): return elu(x, self.alpha)",
          "the module's parameter misnamed"),
    Wrong("Tanh", "api", "TanhFunction is not defined", "del TanhFunction", "a form missing"),
    # ---- values
    Wrong("GELU", "values[float64]", "torch gives",
          "def gelu(input, approximate='none'):\n"
          "    return 0.5 * input * (1 + torch.tanh(math.sqrt(2 / math.pi) * (input + 0.044715 * input ** 3)))",
          "the tanh approximation used for the exact GELU"),
    Wrong("ReLU", "values[float32]", "value is",
          "def relu(input, inplace=False):\n    return torch.where(input > 0, input, 0.01 * input)",
          "a leaky slope in plain ReLU"),
    Wrong("SELU", "values[float32]", "value is",
          "def selu(input, inplace=False):\n"
          "    return 1.0507 * torch.where(input > 0, input, 1.6733 * torch.expm1(torch.clamp(input, max=0)))",
          "constants rounded to 4 decimals"),
    Wrong("Softmax", "values[float16]", "compute in float32 and round once",
          "def softmax(input, dim=None, _stacklevel=3, dtype=None):\n"
          "    if dtype is not None: input = input.to(dtype)\n"
          "    e = torch.exp(input - input.amax(dim, keepdim=True))\n"
          "    return e / e.sum(dim, keepdim=True)",
          "half precision summed in half precision"),
    Wrong("Softplus", "values[bfloat16]", "compute in float32 and round once",
          "def softplus(input, beta=1.0, threshold=20.0):\n"
          "    z = beta * input\n"
          "    soft = (torch.clamp(z, min=0) + torch.log1p(torch.exp(-z.abs()))) / beta\n"
          "    return torch.where(z > threshold, input, soft)",
          "every step rounded to bfloat16"),
    Wrong("Tanh", "values[float32]", "dtype is float64",
          "_orig_tanh = tanh\ndef tanh(input):\n    return _orig_tanh(input.double())",
          "returns float64 for a float32 input"),
    # ---- gradients
    Wrong("SiLU", "grad[float64]", "grad is",
          "def silu(input, inplace=False):\n    return input * sigmoid_(input).detach()\n"
          "def sigmoid_(x):\n    return 1 / (1 + torch.exp(-x))",
          "a detached factor: values right, gradient missing a term"),
    Wrong("Tanh", "grad[float32]", "grad is",
          "_orig_tanh = tanh\ndef tanh(input):\n    y = _orig_tanh(input)\n    return y.detach() + (input - input.detach())",
          "a straight-through gradient of 1"),
    Wrong("Mish", "grad[float32]", "does not require grad",
          "_orig_mish = mish\ndef mish(input, inplace=False):\n    with torch.no_grad():\n        return _orig_mish(input)",
          "computed under no_grad"),
    # ---- edges
    Wrong("ELU", "edges", "grad is nan at x=100.0, torch gives 1.0",
          "def elu(input, alpha=1.0, inplace=False):\n"
          "    return torch.where(input > 0, input, alpha * (torch.exp(input) - 1))",
          "torch.where with exp in the masked branch (the issue's example)"),
    Wrong("Sigmoid", "edges", "grad is nan at x=-100.0",
          "def sigmoid(input):\n    return 1 / (1 + torch.exp(-input))",
          "the naive sigmoid: exp(100) overflows in the backward"),
    Wrong("ReLU", "edges", "at x=nan, torch gives nan",
          "def relu(input, inplace=False):\n    return torch.where(input > 0, input, 0)",
          "nan mapped to 0"),
    Wrong("LogSoftmax", "edges", "value is -inf",
          "def log_softmax(input, dim=None, _stacklevel=3, dtype=None):\n"
          "    if dim is None: dim = _get_softmax_dim('log_softmax', input.dim(), _stacklevel)\n"
          "    e = torch.exp(input - input.amax(dim, keepdim=True))\n"
          "    return torch.log(e / e.sum(dim, keepdim=True))",
          "log(softmax) underflows to -inf with a spread of 1e4"),
    Wrong("Tanh", "edges", "is nan at x=100.0",
          "def tanh(input):\n    return (torch.exp(input) - torch.exp(-input)) / (torch.exp(input) + torch.exp(-input))",
          "tanh as an exponential ratio: inf/inf"),
    # ---- kinks
    Wrong("ReLU", "kinks", "a kink: any value in [0.0, 1.0] is accepted",
          "class ReLUFunction(torch.autograd.Function):\n"
          "    @staticmethod\n"
          "    def forward(ctx, x):\n        ctx.save_for_backward(x); return relu(x)\n"
          "    @staticmethod\n"
          "    def backward(ctx, g):\n        x, = ctx.saved_tensors\n"
          "        return g * torch.clamp(x / x.abs(), min=0)",
          "the sign as x / |x|: nan at the kink"),
    Wrong("Hardtanh", "kinks", "is accepted",
          "class HardtanhFunction(torch.autograd.Function):\n"
          "    @staticmethod\n"
          "    def forward(ctx, x, lo, hi):\n        ctx.save_for_backward(x); ctx.lo, ctx.hi = lo, hi; return hardtanh(x, lo, hi)\n"
          "    @staticmethod\n"
          "    def backward(ctx, g):\n        x, = ctx.saved_tensors\n"
          "        inside = ((x > ctx.lo) & (x < ctx.hi)).to(g.dtype)\n"
          "        return g * (inside + (x == ctx.hi).to(g.dtype) * 2), None, None",
          "an out-of-range value at the upper kink"),
    # ---- shapes
    Wrong("ReLU", "shapes", "non-contiguous",
          "def relu(input, inplace=False):\n"
          "    flat = input.view(-1)\n    return torch.where(flat <= 0, 0, flat).view(input.shape)",
          "view() on a non-contiguous input"),
    Wrong("Softmax", "shapes", "shape is (5,), torch gives (1, 5)",
          "def softmax(input, dim=None, _stacklevel=3, dtype=None):\n"
          "    if dim is None: dim = _get_softmax_dim('softmax', input.dim(), _stacklevel)\n"
          "    if dtype is not None: input = input.to(dtype)\n"
          "    x = input.float() if input.dtype in (torch.float16, torch.bfloat16) else input\n"
          "    e = torch.exp(x - x.max(dim, keepdim=True).values)\n"
          "    return (e / e.sum(dim, keepdim=True)).to(input.dtype).squeeze()",
          "squeeze() changes the shape"),
    # ---- module
    Wrong("LeakyReLU", "module", "repr is",
          "class LeakyReLU(nn.Module):\n"
          "    def __init__(self, negative_slope=0.01, inplace=False):\n"
          "        super().__init__(); self.negative_slope, self.inplace = negative_slope, inplace\n"
          "    def forward(self, x): return leaky_relu(x, self.negative_slope, self.inplace)",
          "no extra_repr"),
    Wrong("PReLU", "module", "state_dict keys",
          "class PReLU(nn.Module):\n"
          "    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):\n"
          "        super().__init__(); self.num_parameters, self.init = num_parameters, init\n"
          "        self.slope = nn.Parameter(torch.full((num_parameters,), init, device=device, dtype=dtype))\n"
          "    def forward(self, x): return prelu(x, self.slope)\n"
          "    def extra_repr(self): return f'num_parameters={self.num_parameters}'",
          "the weight under another name"),
    Wrong("PReLU", "module", "grad w.r.t. parameter weight",
          "class PReLU(nn.Module):\n"
          "    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):\n"
          "        super().__init__(); self.num_parameters, self.init = num_parameters, init\n"
          "        self.weight = nn.Parameter(torch.full((num_parameters,), init, device=device, dtype=dtype))\n"
          "    def forward(self, x): return prelu(x, self.weight.detach() + 0 * self.weight)\n"
          "    def extra_repr(self): return f'num_parameters={self.num_parameters}'",
          "the weight is detached: it never learns"),
    # ---- function (hand-derived backward)
    Wrong("Sigmoid", "function", "grad is",
          "class SigmoidFunction(torch.autograd.Function):\n"
          "    @staticmethod\n"
          "    def forward(ctx, x):\n        y = sigmoid(x); ctx.save_for_backward(y); return y\n"
          "    @staticmethod\n"
          "    def backward(ctx, g):\n        y, = ctx.saved_tensors\n        return g * y",
          "forgot the (1 - y) factor"),
    Wrong("Softmax", "function", "grad is",
          "class SoftmaxFunction(torch.autograd.Function):\n"
          "    @staticmethod\n"
          "    def forward(ctx, x, dim):\n        y = softmax(x, dim); ctx.save_for_backward(y); return y\n"
          "    @staticmethod\n"
          "    def backward(ctx, g):\n        y, = ctx.saved_tensors\n        return g * y * (1 - y), None",
          "the diagonal of the Jacobian only"),
    # ---- gradcheck / gradgradcheck
    Wrong("SiLU", "gradcheck", "gradgradcheck failed",
          "class _OnceSiLU(torch.autograd.Function):\n"
          "    @staticmethod\n"
          "    def forward(ctx, x):\n        ctx.save_for_backward(x); return silu(x.detach())\n"
          "    @staticmethod\n"
          "    def backward(ctx, g):\n        x, = ctx.saved_tensors\n"
          "        with torch.no_grad():\n            s = 1 / (1 + torch.exp(-x))\n"
          "            return g * s * (1 + x * (1 - s))\n"
          "_orig_silu = silu\n"
          "def silu(input, inplace=False):\n    return _OnceSiLU.apply(input) if input.requires_grad else _orig_silu(input, inplace)",
          "a first derivative that is itself not differentiable"),
    Wrong("Tanh", "gradcheck", "gradcheck failed",
          "class TanhFunction(torch.autograd.Function):\n"
          "    @staticmethod\n"
          "    def forward(ctx, x):\n        y = tanh(x); ctx.save_for_backward(y); return y\n"
          "    @staticmethod\n"
          "    def backward(ctx, g):\n        y, = ctx.saved_tensors\n        return g * (1 - y)",
          "1 - y instead of 1 - y^2"),
    # ---- inplace
    Wrong("ReLU", "inplace", "must return its input tensor",
          "_orig_relu = relu\ndef relu(input, inplace=False):\n    return _orig_relu(input)",
          "inplace=True ignored"),
    Wrong("ELU", "inplace", "modified its input",
          "def elu(input, alpha=1.0, inplace=False):\n"
          "    neg = alpha * torch.expm1(torch.clamp(input, max=0))\n"
          "    return input.copy_(torch.where(input > 0, input, neg))",
          "always in place"),
    # ---- invalid arguments
    Wrong("Hardtanh", "invalid", "torch raises ValueError",
          "def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):\n"
          "    return torch.clamp(input, min_val, max_val)",
          "no check of min_val > max_val"),
    Wrong("GELU", "invalid", "torch raises RuntimeError",
          "_orig_gelu = gelu\ndef gelu(input, approximate='none'):\n"
          "    return _orig_gelu(input, 'tanh' if approximate == 'tanh' else 'none')",
          "an unknown approximate silently means 'none'"),
    Wrong("GLU", "invalid", "torch raises RuntimeError",
          "def glu(input, dim=-1):\n"
          "    h = input.shape[dim] // 2\n"
          "    return input.narrow(dim, 0, h) * torch.sigmoid(input.narrow(dim, h, h))",
          "an odd size silently split"),
    # ---- random (RReLU)
    Wrong("RReLU", "random", "slopes are not uniform",
          "_orig_rrelu = rrelu\ndef rrelu(input, lower=1/8, upper=1/3, training=False, inplace=False):\n"
          "    if not training: return _orig_rrelu(input, lower, upper, False, inplace)\n"
          "    u = (torch.rand(input.shape, dtype=input.dtype) + torch.rand(input.shape, dtype=input.dtype)) / 2\n"
          "    return torch.where(input >= 0, input, input * (lower + (upper - lower) * u))",
          "slopes in range, mean right, but triangular"),
    Wrong("RReLU", "random", "slopes are not uniform",
          "_orig_rrelu = rrelu\ndef rrelu(input, lower=1/8, upper=1/3, training=False, inplace=False):\n"
          "    if not training: return _orig_rrelu(input, lower, upper, False, inplace)\n"
          "    return torch.where(input >= 0, input, input * (lower + upper) / 2)",
          "the eval slope used in training"),
    Wrong("RReLU", "random", "mean slope",
          "_orig_rrelu = rrelu\ndef rrelu(input, lower=1/8, upper=1/3, training=False, inplace=False):\n"
          "    if not training: return _orig_rrelu(input, lower, upper, False, inplace)\n"
          "    u = torch.rand(input.shape, dtype=input.dtype) / 2\n"
          "    return torch.where(input >= 0, input, input * (lower + (upper - lower) * u))",
          "slopes only from the lower half of the range"),
    Wrong("RReLU", "random", "outside",
          "_orig_rrelu = rrelu\ndef rrelu(input, lower=1/8, upper=1/3, training=False, inplace=False):\n"
          "    if not training: return _orig_rrelu(input, lower, upper, False, inplace)\n"
          "    u = torch.rand(input.shape, dtype=input.dtype)\n"
          "    return torch.where(input >= 0, input, input * upper * u)",
          "slopes drawn from [0, upper]"),
    # ---- forbidden ops
    Wrong("ReLU", "forbidden", "aten.relu",
          "def relu(input, inplace=False):\n    return torch.relu_(input) if inplace else torch.relu(input)",
          "torch's own relu"),
    Wrong("SELU", "forbidden", "aten.elu",
          "import torch.nn.functional as F\n"
          "def selu(input, inplace=False):\n    return 1.0507009873554805 * F.elu(input, 1.6732632423543772)",
          "selu through F.elu"),
    Wrong("Tanhshrink", "forbidden", "tanhshrink",
          "import torch.nn.functional as F\ndef tanhshrink(input):\n    return F.tanhshrink(input)",
          "a composite with no ATen op of its own: seen at the API level"),
    Wrong("Softmin", "forbidden", "softmax",
          "def softmin(input, dim=None, _stacklevel=3, dtype=None):\n"
          "    if dim is None:  # torch's implicit dim, right\n"
          "        dim = 0 if input.dim() in (0, 1, 3) else 1\n"
          "    return torch.softmax(-input, dim, dtype=dtype)",
          "softmin through torch.softmax"),
    Wrong("Sigmoid", "forbidden", "sigmoid",
          "class Sigmoid(nn.Module):\n    def forward(self, x): return x.sigmoid()",
          "the module calls Tensor.sigmoid"),
    # ---- vectorised
    Wrong("ReLU", "vectorised", "a Python loop over elements",
          "def relu(input, inplace=False):\n"
          "    flat = input.reshape(-1)\n"
          "    out = torch.stack([v if v > 0 else v * 0 for v in flat]) if flat.numel() else flat.clone()\n"
          "    return input.copy_(out.reshape(input.shape)) if inplace else out.reshape(input.shape)",
          "a loop over elements"),
    Wrong("Softmax", "vectorised", "a Python loop over elements",
          "_orig_softmax = softmax\n"
          "def softmax(input, dim=None, _stacklevel=3, dtype=None):\n"
          "    if input.dim() < 2: return _orig_softmax(input, dim, dtype=dtype)\n"
          "    rows = [_orig_softmax(r, dim - 1 if dim not in (None, -1) and dim > 0 else -1, dtype=dtype) for r in input]\n"
          "    return torch.stack(rows)",
          "a loop over rows"),
    # ---- defaults whose meaning depends on the input (the first case of every entry is its defaults)
    Wrong("Softmax", "values[float64]", "softmax(dim=None) float64 on a (4, 6, 5) input, where torch's dim=None is dim=0",
          NONE_AS_LAST.format(name="softmax"), "dim=None read as the last dim: right for 1-D and 2-D inputs only"),
    Wrong("LogSoftmax", "grad[float32]", "on a (4, 6, 5) input, where torch's dim=None is dim=0",
          NONE_AS_LAST.format(name="log_softmax"), "dim=None read as the last dim"),
    Wrong("Softmin", "shapes", "softmin(dim=None) on a 3-D input (3, 4, 5), where torch's dim=None is dim=0",
          NONE_AS_LAST.format(name="softmin"), "dim=None read as the last dim"),
    Wrong("Softmax", "module", "Softmax(dim=None) forward on a (4, 6, 5) input, where torch's dim=None is dim=0",
          "class Softmax(nn.Module):\n"
          "    def __init__(self, dim=None):\n        super().__init__(); self.dim = dim\n"
          "    def forward(self, x): return softmax(x, -1 if self.dim is None else self.dim)\n"
          "    def extra_repr(self): return f'dim={self.dim}'",
          "the module alone reads dim=None as the last dim"),
    Wrong("Softmax", "values[float64]", "softmax(dim=None) float64 on a (2, 3, 4, 5) input, where torch's dim=None is dim=1",
          "_orig_softmax = softmax\n"
          "def softmax(input, dim=None, _stacklevel=3, dtype=None):\n"
          "    if dim is None: dim = 0 if input.dim() <= 1 or input.dim() == 3 else -1\n"
          "    return _orig_softmax(input, dim, _stacklevel, dtype)",
          "the legacy rule right up to 3-D, the last dim for 4-D"),
    Wrong("Softmin", "values[float32]", "dtype is float32, torch gives float64",
          "_orig_softmin = softmin\n"
          "def softmin(input, dim=None, _stacklevel=3, dtype=None):\n    return _orig_softmin(input, dim, _stacklevel)",
          "dtype ignored"),
    Wrong("PReLU", "invalid", "prelu(num_parameters=3) on a (3,) input: returned a result; torch raises RuntimeError",
          "_orig_prelu = prelu\n"
          "def prelu(input, weight):\n"
          "    if input.dim() == 1 and weight.numel() == input.numel():\n"
          "        return torch.where(input >= 0, input, weight * input)\n"
          "    return _orig_prelu(input, weight)",
          "a 1-D input read as channels: torch has no channel dim below 2-D (one shared slope only)"),
    Wrong("RReLU", "random", "a new module is not in training mode",
          "class RReLU(nn.Module):\n"
          "    def __init__(self, lower=1/8, upper=1/3, inplace=False):\n"
          "        super().__init__(); self.lower, self.upper, self.inplace = lower, upper, inplace\n"
          "        self.eval()\n"
          "    def forward(self, x): return rrelu(x, self.lower, self.upper, self.training, self.inplace)\n"
          "    def extra_repr(self):\n"
          "        return f'lower={self.lower}, upper={self.upper}' + (', inplace=True' if self.inplace else '')",
          "a module that starts in eval mode, like the functional's training=False"),
    Wrong("GLU", "values[float64]", "shape is (4, 3, 8), torch gives (4, 6, 4)",
          "_orig_glu = glu\n"
          "def glu(input, dim=-1):\n    return _orig_glu(input, 1 if dim == -1 and input.dim() > 1 else dim)",
          "the default dim=-1 read as the channel dim 1"),
    Wrong("Softmax2d", "shapes", "on a 3-D input (3, 1, 5)",
          "class Softmax2d(nn.Module):\n"
          "    def forward(self, input):\n        _check_2d(input)\n        return softmax(input, 1)",
          "the channels as dim 1: right for a 4-D input only"),
    # ---- the design chapter: activations graded against grader/spec/references.py instead of a torch op
    Wrong("Snake", "values[float64]", "value is nan",
          "def snake(input, alpha):\n"
          "    a = _channel_weight(input, alpha, 'snake')\n"
          "    return input + torch.sin(a * input) ** 2 / a",
          "the paper's formula as written: 0/0 at alpha = 0, where the limit is x"),
    Wrong("Snake", "grad[float64]", "(alpha): grad is 0.0",
          "def snake(input, alpha):\n"
          "    a = _channel_weight(input, alpha, 'snake')\n"
          "    return input + torch.sin(a * input) ** 2 / (a + 1e-9)",
          "the epsilon fix: finite at alpha = 0, but d/dalpha is 0 there instead of the sum of x^2"),
    Wrong("Snake", "gradcheck", "gradgradcheck failed",
          "def snake(input, alpha):\n"
          "    x, a = _compute(input), _compute(_channel_weight(input, alpha, 'snake'))\n"
          "    xf = torch.where(torch.isinf(x), 0, x)\n"
          "    t = a * xf\n"
          "    return _finish(input, x + xf * torch.sin(t) * torch.sinc(t / math.pi))",
          "torch.sinc for sin(t)/t: its second derivative at t = 0 (alpha = 0) is nan"),
    Wrong("Snake", "edges", "grad is nan at x=1.14794e-41",
          "def _sin_over(t):\n"
          "    zero = t == 0\n"
          "    safe = torch.where(zero, 1, t)\n"
          "    return torch.where(zero, 1, torch.sin(safe) / safe)",
          "sin(t)/t guarded at 0 only: cos(t)/t - sin(t)/t^2 is inf - inf for a subnormal t"),
    Wrong("HardswishC1", "values[float64]", "value is",
          "def hardswish_c1(input, inplace=False):\n"
          "    x = _compute(input)\n"
          "    c = torch.clamp(x, -3, 3)\n"
          "    out = c * (c + 3) ** 2 * (6 - c) / 100 + torch.where(x > 3, x - 3, 0)\n"
          "    return _finish(input, out, inplace)",
          "the wrong constant: 100 for 108"),
    Wrong("HardswishC1", "function", "grad is",
          "class HardswishC1Function(torch.autograd.Function):\n"
          "    @staticmethod\n"
          "    def forward(ctx, x):\n        ctx.save_for_backward(x); return hardswish_c1(x)\n"
          "    @staticmethod\n"
          "    def backward(ctx, g):\n        x, = ctx.saved_tensors\n"
          "        return g * torch.where(x <= -3, 0, torch.where(x >= 3, 1, x / 3 + 0.5))",
          "Hardswish's derivative in the backward"),
    Wrong("HardswishC1", "forbidden", "aten.hardswish",
          "import torch.nn.functional as F\n"
          "def hardswish_c1(input, inplace=False):\n"
          "    x = _compute(input)\n"
          "    inside = (x > -3) & (x < 3)\n"
          "    m = torch.where(inside, x, 0)\n"
          "    out = torch.where(inside, m * (m + 3) ** 2 * (6 - m) / 108, F.hardswish(torch.where(inside, 0, x)))\n"
          "    return _finish(input, out, inplace)",
          "F.hardswish for the outer pieces: right values, forbidden op"),
    Wrong("SwiGLU", "values[float64]", "value is",
          "def swiglu(input, dim=-1):\n"
          "    a, b = _halves(_compute(input), dim)\n"
          "    return _finish(input, _silu(a) * b)",
          "the halves swapped: the gate on the first half"),
    Wrong("SwiGLU", "edges", "value is nan at a=1.5, b=-inf",
          "def swiglu(input, dim=-1):\n"
          "    a, b = _halves(_compute(input), dim)\n"
          "    return _finish(input, a * b * _sigmoid(b))",
          "the gate's limit not taken: SiLU(-inf) = -inf * 0"),
    Wrong("GeGLU", "values[float64]", "value is",
          "def _gelu(b):\n"
          "    return _at_infinity(lambda t: 0.5 * t * (1 + torch.tanh(math.sqrt(2 / math.pi) * (t + 0.044715 * t ** 3))), b)",
          "the tanh approximation of GELU for the exact one"),
    Wrong("Swish", "grad[float64]", "the gradient w.r.t. beta is None",
          "def swish(input, beta):\n"
          "    x, b = _compute(input), _compute(_channel_weight(input, beta, 'swish')).detach()\n"
          "    return _finish(input, x * _sigmoid(b * x))",
          "beta detached: it never learns"),
    Wrong("Swish", "function", "(beta): grad is 0.0",
          "class SwishFunction(torch.autograd.Function):\n"
          "    @staticmethod\n"
          "    def forward(ctx, input, beta):\n        ctx.save_for_backward(input, beta); return swish(input, beta)\n"
          "    @staticmethod\n"
          "    def backward(ctx, g):\n        input, beta = ctx.saved_tensors\n"
          "        b = _channel_weight(input, beta, 'swish'); t = b * input; s = _sigmoid(t)\n"
          "        return g * (s + t * s * (1 - s)), torch.zeros_like(beta)",
          "a backward without beta's gradient"),
    Wrong("Swish", "forbidden", "aten.silu",
          "import torch.nn.functional as F\n"
          "def swish(input, beta):\n"
          "    b = _channel_weight(input, beta, 'swish')\n"
          "    return torch.where(b == 0, input / 2, F.silu(b * input) / torch.where(b == 0, 1, b))",
          "SiLU rescaled: torch's op computing the function"),
    Wrong("SquaredReLU", "edges", "at x=nan, torch gives nan",
          "def squared_relu(input, inplace=False):\n"
          "    out = torch.where(input > 0, input, 0) ** 2\n"
          "    return input.copy_(out) if inplace else out",
          "nan mapped to 0"),
    Wrong("Snake", "forbidden", "the grader's reference grader.spec.references.snake",
          "from grader.spec.references import snake",
          "the grader's own reference imported instead of written"),
]


@pytest.mark.parametrize("wrong", WRONG, ids=[f"{w.activation}-{w.check}-{i}" for i, w in enumerate(WRONG)])
def test_check_catches_wrong_implementation(wrong: Wrong, failure_of) -> None:
    message = failure_of(wrong)  # run once, shared with tests/test_hints.py (tests/conftest.py)
    assert message is not None, f"{wrong.check} passed {wrong.why!r}"
    assert wrong.message in message, message
    assert "\n" not in message


@pytest.mark.parametrize("name", ["Softmax", "LogSoftmax", "Softmin"])
def test_dim_none_as_last_dim_loses_every_check_that_calls_the_default(name: str) -> None:
    """Values and gradients in every dtype, shapes and module: each one fails, naming the input's shape
    and the dim torch used for it; the checks that never leave dim to torch still pass."""
    entry = BY_NAME[name]
    impl = Impl(entry, fresh_solution(name, NONE_AS_LAST.format(name=entry.functional)).namespace)
    failed, passed = {}, []
    for check, device in checks_for(entry, ["cpu"]):
        try:
            check.run(impl, device)
            passed.append(check.name)
        except CheckFailure as exc:
            failed[check.name] = str(exc)
    assert sorted(failed) == sorted(c.name for c in CHECKS if c.name.startswith(("values[", "grad["))
                                    or c.name in ("shapes", "module")), failed
    for message in failed.values():
        assert re.search(r"on a (3-D input )?\(\d+(, \d+)+\)( input)?, where torch's dim=None is dim=\d", message), message
    assert {"api", "function", "gradcheck", "forbidden"} <= set(passed)


def test_every_kind_of_check_is_proven() -> None:
    proven = {w.check.split("[")[0] for w in WRONG}
    kinds = {c.name.split("[")[0] for c in CHECKS}
    assert kinds <= proven, f"checks without a wrong implementation that fails them: {kinds - proven}"


# Correct implementations written differently from the reference solutions: each must pass every check.
RIGHT = {
    "ReLU via clamp (gradient 1 at the kink: a valid subgradient)": ("ReLU", """
def relu(input, inplace=False):
    return input.clamp_(min=0) if inplace else torch.clamp(input, min=0)

class ReLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.clamp(x, min=0)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * (x >= 0)
"""),
    "Sigmoid from tanh": ("Sigmoid", """
def sigmoid(input):
    x = input.float() if input.dtype in (torch.float16, torch.bfloat16) else input
    return (0.5 + 0.5 * torch.tanh(0.5 * x)).to(input.dtype if input.is_floating_point() else x.dtype)
"""),
    "GELU exact via erfc": ("GELU", """
_orig_gelu = gelu
def gelu(input, approximate='none'):
    if approximate != 'none':
        return _orig_gelu(input, approximate)
    x = input.float() if input.dtype in (torch.float16, torch.bfloat16) else input
    return (0.5 * x * torch.erfc(-x / math.sqrt(2))).to(input.dtype)
"""),
    "LogSoftmax via logsumexp": ("LogSoftmax", """
_orig_log_softmax = log_softmax
def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dim is None:
        return _orig_log_softmax(input, dim, _stacklevel, dtype)
    if dtype is not None:
        input = input.to(dtype)
    x = input.float() if input.dtype in (torch.float16, torch.bfloat16) else input
    return (x - torch.logsumexp(x, dim, keepdim=True)).to(input.dtype)
"""),
    "LeakyReLU via maximum and minimum": ("LeakyReLU", """
def leaky_relu(input, negative_slope=0.01, inplace=False):
    out = torch.where(input >= 0, input, input * negative_slope)
    return input.copy_(out) if inplace else out
"""),
    "Softplus via logaddexp": ("Softplus", """
def softplus(input, beta=1.0, threshold=20.0):
    x = input.float() if input.dtype in (torch.float16, torch.bfloat16) else input
    z = x * beta
    out = torch.where(z > threshold, x, torch.logaddexp(torch.zeros_like(z), torch.where(z > threshold, 0, z)) / beta)
    return out.to(input.dtype)
"""),
    "SwiGLU with F.silu as its gate (allowed: the limits are still taken)": ("SwiGLU", """
def _silu(b):
    return _at_infinity(torch.nn.functional.silu, b)
"""),
    "ReGLU through clamp (gradient a at b = 0: a valid subgradient)": ("ReGLU", """
def _relu(b):
    return torch.clamp(b, min=0)
"""),
    "Squared ReLU as F.relu(x) ** 2 (F.relu is allowed)": ("SquaredReLU", """
def squared_relu(input, inplace=False):
    out = torch.nn.functional.relu(input) ** 2
    return input.copy_(out) if inplace else out
"""),
}


@pytest.mark.parametrize("label", sorted(RIGHT))
def test_correct_alternative_passes_every_check(label: str) -> None:
    activation, code = RIGHT[label]
    entry = BY_NAME[activation]
    impl = Impl(entry, fresh_solution(activation, code).namespace)
    failures = []
    for check, device in checks_for(entry, ["cpu"]):
        try:
            check.run(impl, device)
        except CheckFailure as exc:
            failures.append(f"{check.name}: {exc}")
    assert not failures, "\n".join(failures)
