"""Hints for the usual mistakes: what a failure message most likely means, and the idea that fixes it.

Keyed by the catalogue's activation names (``"*"``: any activation) and matched on a failed check's
name and message, the same message whether it comes from ``python -m grader``, from ``check()`` in a
notebook or from a JSON report. A hint names the idea; it never gives the solution's code. Only a
failed check gets a hint: a correct implementation never sees one.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable
from grader.core.results import check_kind

_POS = r"(?:[0-9.]+(?:e[+-]?[0-9]+)?|inf|nan)"
_NUM = "-?" + _POS


@dataclass(frozen=True)
class Hint:
    id: str
    checks: tuple[str, ...]  # check kinds (the name before "[" and "@"); empty: any check
    pattern: str  # searched in the message; named groups feed ``when``
    text: str
    when: Callable[[dict[str, str]], bool] | None = None

    def matches(self, kind: str, message: str) -> bool:
        if self.checks and kind not in self.checks:
            return False
        found = re.search(self.pattern, message)
        if found is None:
            return False
        try:
            return self.when is None or bool(self.when(found.groupdict()))
        except (ValueError, TypeError, ZeroDivisionError):
            return False


def _number(text: str) -> float:
    """A number as a check's message quotes it (``nan`` and ``inf`` included)."""
    return float(text)


def _close_but_not_equal(g: dict[str, str], low: float = 1e-7, high: float = 2e-3) -> bool:
    """A small difference from torch: a constant or an approximation, not a wrong formula."""
    a, b = _number(g["got"]), _number(g["torch"])
    return math.isfinite(a) and math.isfinite(b) and low < abs(a - b) / max(1.0, abs(b)) < high


# "value is 0.88 at x=1.04, torch gives 0.89" (or "grad is ...")
_DIFF = rf"(?:value|grad) is (?P<got>{_NUM}) at x=(?P<x>{_NUM}), torch gives (?P<torch>{_NUM})"
_LARGE = r"(?:100\.0|10000\.0|88\.8|20\.0|inf)"

# The gated units (SwiGLU, GeGLU, ReGLU) split their input as F.glu does: the same mistakes, the same hints.
_GATED: tuple[Hint, ...] = (
    Hint("glu-halves", ("values", "module", "shapes"), r"value is .* at index",
         "Split the input along dim as F.glu does: the first half is passed through, the second half "
         "goes through the gate. Swapped halves still give a plausible-looking function."),
    Hint("gate-limit", ("edges", "grad", "function"), r"is nan at a=\S+, b=-?inf",
         "At b = ±inf a naive gate is inf * 0: take its limit (0 at -inf, b itself at +inf), e.g. by "
         "computing the gate only where b is finite."),
)

# The 8-bit chapter (grader/checks/quantized_checks.py): its checks' messages state what the table
# looks like (a tie, a shift, a missing zero point); these name the idea behind each.
_Q = ("quint8 values",)
_EIGHT_BIT: tuple[Hint, ...] = (
    Hint("quantized-rounding", _Q, r"a tie: torch rounds half to even",
         "At an exact tie (y/scale ending in .5) torch rounds half to even, as torch.round does: adding "
         "0.5 and flooring, or rounding halves away from zero, lands one step off at every tie."),
    Hint("quantized-zero-point", _Q, r"zero point is missing",
         "A quint8 integer q stands for (q − zero_point)·scale: subtract the input's zero point before "
         "scaling, and add the output's after dividing by its scale."),
    Hint("quantized-shift", _Q, r"shifted by one entry",
         "Entry q of the table must be f of the value of integer q itself: build it over the integers 0 "
         "to 255 exactly (256 entries, the first for q = 0) and index it with the input's integers."),
    Hint("quantized-truncated", _Q, r"truncated toward the zero point",
         "Every code is round(value / scale) + zero_point, a bound's (relu6's 6) and a constant's too: int() "
         "truncates, one step short wherever value / scale ends in .5 or more, which round scales such as "
         "0.05 hide. Round it (half to even, as the table's other entries), or let the table's requantizing "
         "do it."),
    Hint("quantized-kink", _Q, r"within one input step of the kink",
         "Choose each code's branch (hardswish's x <= -3, x >= 3) from its value x = (q − zero_point)·scale, "
         "compared with the kink itself: a threshold code computed with int(kink / scale) is truncated, and "
         "the code next to the kink then takes the other branch."),
    Hint("quantized-clip", _Q, r"clipped to",
         "quint8's integers are 0 to 255: clip the rounded integers (after adding the zero point) to "
         "that range, no narrower, before converting to uint8, which would wrap around."),
    Hint("quantized-qparams", _Q, r"wrong output qparams",
         "The output's scale and zero point are torch's: the input's (relu6; leaky_relu without scale), "
         "the arguments' (hardswish, elu) or fixed by the function's range (sigmoid: 1/256 and 0); "
         "requantize the table with them and wrap the result with the same ones."),
    Hint("quantized-float", _Q + ("fp8 values",), r"dtype is \w+, torch gives",
         "Return torch's dtype: a quint8 tensor made from the table's uint8 integers with the output's "
         "scale and zero point, or for fp8 the float32 result converted once to float8_e4m3fn."),
    Hint("quantized-table", ("quint8 table",), r"not on a table",
         "Compute the activation in float on the 256 possible inputs only, requantize those, then "
         "answer each element by indexing that table with its integer: no float tensor the size of "
         "the input."),
    Hint("fp8-double-rounding", ("fp8 values",), r"rounding twice",
         "Compute in float32 and round once, at the end, to float8_e4m3fn: a conversion through float16 "
         "or bfloat16 first rounds twice, which differs where the first rounding lands on an fp8 tie."),
    Hint("eight-bit-forbidden", ("quint8 forbidden", "fp8 forbidden"), r"write it from float primitives",
         "Build the table (or the fp8 result) from float primitives (exp, expm1, erf, clamp, where): "
         "torch's quantized kernel is the answer itself, and dequantizing to call torch's float "
         "activation hides the arithmetic the exercise is about."),
    Hint("eight-bit-signature", ("quint8 api", "fp8 api"), r"expected \w+\(",
         "Use the signature the chapter gives (torch's quantized function's parameter names, order and "
         "defaults): the grader calls it by keyword."),
)

HINTS: dict[str, tuple[Hint, ...]] = {
    "ReLU": (
        Hint("relu-leak", ("values", "edges"), rf"value is -{_POS} at x=-{_POS}, torch gives 0\.0",
             "ReLU is exactly 0 for every x ≤ 0: there is no slope on the negative side (that is LeakyReLU)."),
    ),
    "Sigmoid": (
        Hint("sigmoid-overflow", ("values", "grad", "edges", "function"), rf"is nan at x=-{_LARGE}",
             "1/(1+exp(-x)) overflows in the backward: exp(-x) is inf for large negative x and the "
             "gradient becomes inf/inf = nan. Compute from exp(-|x|), which is never above 1, and choose "
             "the form by the sign of x."),
        Hint("sigmoid-derivative", ("function", "gradcheck"), r"grad is|gradcheck failed",
             "σ'(x) = σ(x)·(1 − σ(x)): both factors, from the output your forward saved."),
    ),
    "Tanh": (
        Hint("tanh-exp-ratio", ("values", "edges"), rf"is nan at x=-?{_LARGE}",
             "(eˣ − e⁻ˣ)/(eˣ + e⁻ˣ) is inf/inf for large |x|: rewrite it so the only exponential is of "
             "−2|x| (between 0 and 1) and restore the sign afterwards."),
        Hint("tanh-derivative", ("function", "gradcheck"), r"grad is|gradcheck failed",
             "tanh'(x) = 1 − tanh(x)²: square the output your forward saved."),
    ),
    "LeakyReLU": (
        Hint("leaky-max", ("values", "grad", "edges", "kinks", "module"), r"negative_slope=(?P<slope>[0-9.e+-]+)",
             "max(slope·x, x) is only right for slope ≤ 1: torch's negative_slope may be larger, so choose "
             "the branch by the sign of x, not by the larger of the two values.",
             lambda g: _number(g["slope"]) > 1),
    ),
    "ELU": (
        Hint("where-overflow", ("edges", "grad", "function"), rf"grad is nan at x={_LARGE}",
             "torch.where evaluates both branches everywhere: the exponential branch overflows to inf at "
             "large positive x, and its gradient there (inf × 0) is nan although the branch is not "
             "selected. Give the exponential only the inputs where it is used (clamp its argument)."),
    ),
    "CELU": (
        Hint("where-overflow", ("edges", "grad", "function"), rf"grad is nan at x={_LARGE}",
             "torch.where evaluates both branches everywhere: exp(x/α) overflows to inf at large positive "
             "x, and its gradient (inf × 0) is nan although the branch is not selected. Give the "
             "exponential only the inputs where it is used (clamp its argument)."),
    ),
    "SELU": (
        Hint("where-overflow", ("edges", "grad", "function"), rf"grad is nan at x={_LARGE}",
             "torch.where evaluates both branches everywhere: the exponential branch overflows to inf at "
             "large positive x, and its gradient (inf × 0) is nan although the branch is not selected. "
             "Give the exponential only the inputs where it is used (clamp its argument)."),
        Hint("selu-constants", ("values", "grad", "module", "function"), _DIFF,
             "Close, but not torch's: SELU's scale and alpha are fixed constants known to many digits "
             "(torch.nn.SELU's documentation gives them); rounded constants are off by about 1e-4.",
             _close_but_not_equal),
    ),
    "RReLU": (
        Hint("rrelu-range", ("random",), r"outside \[",
             "Every slope must lie in [lower, upper]: map each uniform sample from [0, 1) onto that "
             "interval (shift and scale), not onto [0, upper]."),
        Hint("rrelu-uniform", ("random",), r"slopes are not uniform|mean slope",
             "In training each element draws its own slope, uniformly from [lower, upper]: one uniform "
             "sample per element, mapped onto the interval, not the mean slope, a sum or an average of "
             "samples."),
        Hint("rrelu-training-mode", ("random",), r"a new module is not in training mode",
             "A module starts in training mode, as every nn.Module does: do not call eval() in __init__ "
             "(training=False is the functional's default only)."),
        Hint("rrelu-training", ("random",), r"slopes do not vary",
             "forward must follow self.training: random slopes in training, the fixed mean slope "
             "(lower + upper)/2 in evaluation."),
    ),
    "GELU": (
        Hint("gelu-tanh-approx", ("values", "grad", "module", "function"), r"gelu\(approximate='none'\).*" + _DIFF,
             "You wrote the tanh approximation: approximate='none' is the exact form x·Φ(x), with Φ the "
             "standard normal CDF (through erf); the tanh formula is for approximate='tanh' only and is "
             "off by up to about 5e-4.",
             lambda g: _close_but_not_equal(g, 1e-8, 2e-3)),
    ),
    "Softplus": (
        Hint("softplus-overflow", ("values", "grad", "edges", "function"), rf"is (?:-?inf|nan) at x={_LARGE}",
             "log1p(exp(x)) overflows: exp(x) is inf from x ≈ 89 in float32. Use the threshold form: above "
             "threshold/β softplus is x itself, so exp never sees a large argument."),
        Hint("softplus-threshold", ("values", "grad", "edges", "function"),
             r"softplus\(beta=(?P<beta>[0-9.e+-]+), threshold=(?P<th>[0-9.e+-]+)\).*at x=(?P<x>" + _NUM + ")",
             "torch switches to the linear branch where β·x > threshold: softplus is then x itself (a small "
             "jump that your formula must make too).",
             lambda g: _number(g["beta"]) * _number(g["x"]) > _number(g["th"])),
    ),
    "LogSigmoid": (
        Hint("logsigmoid-overflow", ("values", "grad", "edges", "function"), rf"is (?:-?inf|nan) at x=-?{_LARGE}",
             "log(σ(x)) underflows (σ rounds to 0, log 0 = −inf) and 1 + exp(−x) overflows for large "
             "negative x: write logsigmoid as −softplus(−x) in a form where exp only sees −|x|."),
    ),
    "Softmax": (
        Hint("softmax-jacobian", ("function",), r"grad is",
             "The softmax Jacobian is not diagonal: each output depends on every input of its slice, so "
             "the backward needs a sum over the slice (of grad_output times the output), not only y·(1 − y)."),
    ),
    "Softmin": (
        Hint("softmax-jacobian", ("function",), r"grad is",
             "The softmin Jacobian is not diagonal: each output depends on every input of its slice, so "
             "the backward needs a sum over the slice (of grad_output times the output); mind the sign of "
             "the input."),
    ),
    "Softmax2d": (
        Hint("softmax2d-dim", ("values", "shapes", "module", "edges"), r"on a 3-D input",
             "Softmax2d normalises over the channels, dim -3: dim 1 is the channel dim of a 4-D (N, C, H, W) "
             "input only; a 3-D input is (C, H, W)."),
        Hint("softmax-jacobian", ("function",), r"grad is",
             "The softmax Jacobian is not diagonal: each output depends on every channel at its position, "
             "so the backward needs a sum over the channels (of grad_output times the output)."),
    ),
    "LogSoftmax": (
        Hint("log-of-softmax", ("values", "edges"), r"value is -inf",
             "log(softmax(x)) underflows: softmax rounds tiny probabilities to 0 and log(0) = −inf. Stay in "
             "log space: subtract the maximum and the log of the sum of exponentials (log-sum-exp)."),
        Hint("log-softmax-jacobian", ("function",), r"grad is",
             "The backward of log_softmax is grad_output minus softmax times the sum of grad_output over "
             "the slice: every output depends on every input of its slice."),
    ),
    # ------------------------------------------------------------------ the design chapter
    "HardswishC1": (
        Hint("hardswish-c1-constant", ("values", "module", "shapes"), _DIFF,
             "The quartic piece must meet the outer pieces with the same value and slope at x = ±3: work "
             "its constant out from f(3) = 3 (sympy does it in one line) instead of reusing Hardswish's 6."),
    ),
    "Snake": (
        Hint("snake-limit", ("values", "grad", "edges", "module", "shapes", "function"), r"init=0\.0\).* is nan",
             "sin²(αx)/α is 0/0 at α = 0, where its limit is 0 (Snake is then x): write the term as "
             "x·sin(t)·(sin(t)/t) with t = αx and a sin(t)/t that is 1 at t = 0."),
        Hint("snake-alpha-grad", ("grad", "function", "module"), r"\(alpha\): grad is",
             "The gradient w.r.t. α must be the limit too: near α = 0, sin²(αx)/α ≈ αx², so each element "
             "adds x² at α = 0. An epsilon in the denominator keeps the value finite but not this."),
        Hint("snake-small-t", ("edges", "grad", "function"), r"grad is nan at x=[0-9.]+e-\d\d",
             "Guarding t = 0 alone is not enough: for a tiny (subnormal) t, cos(t)/t − sin(t)/t² is inf − inf. "
             "Use the series of sin(t)/t (1 − t²/6 + …) below a small threshold."),
    ),
    "SwiGLU": _GATED,
    "GeGLU": (
        Hint("geglu-exact", ("values", "grad", "module", "function"), rf"value is (?P<got>{_NUM}) at index .*?, torch gives (?P<torch>{_NUM})",
             "GeGLU's gate here is the exact GELU (the erf form, approximate='none'); the tanh approximation "
             "differs by about 5e-4.", when=_close_but_not_equal),
        *_GATED,
    ),
    "ReGLU": _GATED,
    # ------------------------------------------------------------------ any activation
    "*": _EIGHT_BIT + (
        Hint("implicit-dim", (), r"^(?!.*round once).*where torch's dim=None is dim=\d+: (?:value|grad) is",
             "With dim=None torch does not use the last dim: it picks one from the input's number of "
             "dimensions (measure it on torch for 0-D to 4-D inputs) and warns. Reproduce that rule, and "
             "pass dim explicitly in your own code."),
        Hint("not-implemented", (), r"not implemented \(raises NotImplementedError\)",
             "This form is still the stub: replace `raise NotImplementedError` with your implementation, run "
             "its cell, then check again."),
        Hint("not-defined", ("api",), r"is not defined",
             "Define all three forms with torch's names (the functional, <Module>Function and the module), "
             "and run the cell that defines them before checking."),
        Hint("not-subclass", ("api",), r"is not a subclass of",
             "The module subclasses torch.nn.Module and <Module>Function subclasses torch.autograd.Function."),
        Hint("signature", ("api",), r"torch's signature is",
             "Use torch's parameter names, order and defaults exactly (compare with help() of torch's "
             "function): code that calls an activation passes them by keyword."),
        Hint("init-params", ("api",), r"__init__(?: has no parameter|: default)",
             "The module's constructor takes torch's parameter names and defaults (compare with "
             "inspect.signature of the torch.nn module)."),
        Hint("timeout", (), r"took longer than|did not return within|timed out in an earlier check",
             "A check ran out of time: look for an infinite loop, or a Python loop over the elements of a "
             "large tensor."),
        Hint("half-precision", (), r"compute (?:the derivative )?in float32 and round once",
             "In float16 and bfloat16, convert the input to float32, do every step there, and convert the "
             "result back once at the end: each intermediate rounding to half precision adds error."),
        Hint("dtype", (), r"dtype is \w+, torch gives",
             "Return the input's dtype: Python-number tensors and .double() make float64 intermediates; "
             "create constants with the input's dtype and device."),
        Hint("device", (), r"device is \S+, torch gives",
             "Create every tensor on the input's device (the *_like constructors, or device=input.device)."),
        Hint("detached", (), r"does not require grad|gradient w\.r\.t\. \w+ is None",
             "The output is cut off from the input: no torch.no_grad(), .detach(), .data, .item() or "
             "re-wrapping with torch.tensor() between the input and the output."),
        Hint("nan-propagation", (), r"at x=nan, torch gives nan",
             "nan must stay nan: every comparison with nan is False, so a mask such as x > 0 sends nan to "
             "the other branch; arrange the condition so that nan reaches a branch that returns x."),
        Hint("kink-nan", ("kinks", "function", "edges"), r"grad is nan at x=\S+, a kink",
             "At the kink your derivative is 0/0 (such as x/|x|, or a division by x): select the "
             "derivative with a comparison instead, which is defined at the kink."),
        Hint("kink-range", ("kinks", "function", "edges"), r"a kink: any value in",
             "At a kink use the derivative of one side (or a value between the two): masks that both "
             "include the kink add up to a value outside that range."),
        Hint("nan-overflow", (), rf"is nan at x=-?{_LARGE}",
             "An intermediate overflows at this input (exp of a large number, then inf/inf, inf − inf or "
             "0 × inf) and the result is nan. Find the step that overflows and rewrite it so that every "
             "intermediate stays finite (exp of a number ≤ 0 is at most 1)."),
        Hint("infinite-input", (), r"is (?:-?inf|nan) at x=-?inf, torch gives",
             "At ±inf take the limit torch gives: inf − inf and inf/inf are nan, so give infinite inputs a "
             "branch (or a form) whose result is the limit."),
        Hint("view", ("shapes",), r"view size is not compatible",
             "view() needs contiguous memory: use reshape(), or do not reshape at all (elementwise ops work "
             "on any shape and layout)."),
        Hint("shape", (), r"shape is \(.*\), torch gives",
             "Return torch's shape: no squeeze() or flatten() of the result; reductions keep their dim "
             "(keepdim=True) so they broadcast back."),
        Hint("repr", ("module",), r"repr is",
             "A module's repr shows what its extra_repr() gives: the constructor arguments formatted as torch "
             "shows them (compare with repr of torch's module)."),
        Hint("state-dict", ("module",), r"state_dict keys",
             "Learnable tensors are nn.Parameter attributes with torch's names: state_dict keys are the "
             "attribute names."),
        Hint("attribute", ("module",), r"attribute \w+ is",
             "Store each constructor argument as an attribute with torch's name and value."),
        Hint("param-grad", ("module",), r"grad w\.r\.t\. parameter",
             "Use the parameter itself in forward (not .detach(), .data or a copy), so that its gradient "
             "flows back to it."),
        Hint("function-backward", ("function",), r"grad is",
             "Your backward is not the derivative: differentiate f by hand again, multiply by grad_output, "
             "and compare it with autograd of your functional form on a few inputs."),
        Hint("gradgradcheck", ("gradcheck",), r"gradgradcheck failed",
             "Your backward is not itself differentiable (computed under no_grad, on detached tensors or "
             "with .data): build it from ordinary torch ops so autograd can take second derivatives."),
        Hint("gradcheck", ("gradcheck",), r"gradcheck failed",
             "Your backward does not match finite differences of your forward in float64: re-derive f' "
             "(gradcheck compares the two away from kinks)."),
        Hint("grad-mismatch", ("grad", "edges", "kinks", "shapes"), r"grad is",
             "Autograd differentiates exactly what you computed: if the values are right, part of the "
             "formula is cut off from the graph (.detach(), .data, no_grad) or goes through an op without a "
             "useful derivative; otherwise fix the values first."),
        Hint("inplace-return", ("inplace",), r"must return its input tensor",
             "With inplace=True write the result into the input itself (an in-place op) and return that "
             "same tensor object."),
        Hint("inplace-modified", ("inplace",), r"modified its input",
             "Without inplace=True never write into the input: in-place ops on it change the caller's "
             "tensor."),
        Hint("invalid", ("invalid",), r"torch raises \w+",
             "torch validates this argument before computing: reject it the same way, raising the same "
             "exception type."),
        Hint("forbidden", ("forbidden",), r"write it from scratch",
             "Compose the function from primitives (exp, log1p, where, clamp, ...): calling torch's own op, "
             "or another op that computes the same function, is what the exercise rules out."),
        Hint("loop", ("vectorised", "quint8 vectorised", "fp8 vectorised"), r"a Python loop over elements",
             "A Python loop runs torch ops once per element or row: express the computation on whole "
             "tensors (masks with where, reductions along dim)."),
    ),
}


def find_hint(activation: str, check: str, message: str) -> Hint | None:
    """The first hint of the activation's own, then of the general ones, that matches this failure."""
    kind = check_kind(check)
    for hint in HINTS.get(activation, ()) + HINTS["*"]:
        if hint.matches(kind, message):
            return hint
    return None


def hint_for(activation: str, check: str, message: str) -> str | None:
    """The hint for a failed check (by its name as in reports, e.g. ``grad[float32]``, ``edges``,
    ``values[bfloat16]@cuda``) and its message, or None when no known mistake fits."""
    hint = find_hint(activation, check, message) if message else None
    return hint.text if hint else None
