"""The 8-bit checks: quint8 activations against torch's quantized kernels, fp8 ones against torch's
float32 computation rounded once, every representable input.

quint8: each (scale, zero point) of the exercise's cases (grader/spec/quantized_catalog.py) on all
256 inputs, the output's dtype, q_scale, q_zero_point and every value. torch's kernels compute in
float32 (x = q·scale + (−zp·scale) by a fused multiply-add, then y·(1/scale) rounded half to even);
a table computed another correct way in float32 (``(q − zp)·scale``, ``y / scale``) differs from
them by one step only where the exact result lies within float32's error of a rounding boundary.
There either neighbour is accepted: the float64 value decides, within ``TIE`` LSB, but never at an
exact tie, where torch's round-half-to-even is required (that is where the rounding mode shows).
fp8 the same way: torch's float32 result rounded once, a neighbour accepted within ``TIE8`` (relative)
of the midpoint between the two.

Student code runs only in taped interactions (grader/checks/replay.py) that hand back plain tensors
(a quantized output as its integers, scale and zero point; an fp8 output as its bits), so the
parent re-judges from the tape with torch alone.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable

import torch
import torch.ao.nn.quantized.functional  # noqa: F401  (the kernels graded against; resolve() walks attributes)

from grader.checks.compare import fmt
from grader.checks.harness import Impl, Notes, student_call
from grader.checks.inputs import seed_of
from grader.checks.mlx_checks import assert_signature
from grader.checks.recorder import Recorder, resolve
from grader.checks.torch_checks import Check, callable_name, forbidden
from grader.core.errors import CheckFailure
from grader.spec.quantized_catalog import BY_ENTRY, FIXED, FP8, FP8_DTYPE as FP8_NAME, GIVEN, INPUT, QUINT8, Exercise8, QCase

TIE = 1e-3  # LSB: far above float32's error on these tables (about 1e-4 LSB at 255), far below a step
TIE8 = 2.0 ** -16  # relative: float32's error is about 2^-22, fp8's step 2^-3
FP8_DTYPE: torch.dtype = getattr(torch, FP8_NAME)
VECTOR_SIZES = (64, 4096)  # the vectorised and table checks' input sizes: neither is 256


def _exercise(impl: Impl) -> Exercise8:
    return BY_ENTRY[impl.entry.name]


# ------------------------------------------------------------------------ inputs (both sides)

def _quint8(ints: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    with warnings.catch_warnings():  # torch 2.13 deprecates creating quint8 tensors; its kernels remain
        warnings.simplefilter("ignore", UserWarning)
        return torch._make_per_tensor_quantized_tensor(ints, scale, zero_point)


def every_quint8(case: QCase) -> torch.Tensor:
    """All 256 integers, shuffled into a transposed (non-contiguous) 16 x 16 tensor: a gather that
    flattens or assumes a layout shows."""
    order = torch.randperm(256, generator=torch.Generator().manual_seed(seed_of("quint8 order")))
    return _quint8(order.to(torch.uint8).reshape(16, 16), case.scale, case.zero_point).t()


def every_fp8() -> torch.Tensor:
    """All 256 bit patterns of float8_e4m3fn (254 numbers, two nans), as a transposed 16 x 16 tensor."""
    return torch.arange(256, dtype=torch.uint8).view(FP8_DTYPE).reshape(16, 16).t()


def _random_input(ex: Exercise8, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed_of("8-bit vector", n))
    ints = torch.randint(0, 256, (n,), generator=g, dtype=torch.uint8)
    if ex.kind == FP8:
        ints = torch.where((ints & 0x7F) == 0x7F, 0, ints)  # no nans: a loop may be nan-free
        return ints.view(FP8_DTYPE)
    return _quint8(ints, ex.cases[0].scale, ex.cases[0].zero_point)


# ------------------------------------------------------------------------ student side (taped)

def describe_output(y: object) -> dict:
    """What crosses from the worker: the type, dtype and shape, and the data as plain integers."""
    if not isinstance(y, torch.Tensor):
        return {"type": type(y).__name__}
    out: dict = {"type": "Tensor", "dtype": str(y.dtype).removeprefix("torch."), "shape": list(y.shape)}
    if y.is_quantized:
        if y.qscheme() != torch.per_tensor_affine:
            out["qscheme"] = str(y.qscheme()).removeprefix("torch.")
        else:
            out.update(ints=y.int_repr().detach().cpu().clone(), scale=float(y.q_scale()),
                       zero_point=int(y.q_zero_point()))
    elif y.dtype == FP8_DTYPE:
        out["bits"] = y.detach().cpu().contiguous().view(torch.uint8).clone()
    return out


def _call(fn: Callable, x: torch.Tensor, kwargs: dict) -> dict:
    return describe_output(fn(x, **kwargs))


def _student(impl: Impl, ex: Exercise8, x: torch.Tensor, kwargs: dict, what: str) -> dict:
    return student_call(what, _call, impl.get(ex.name), x, kwargs)


# ------------------------------------------------------------------------ torch's side

def torch_quint8(ex: Exercise8, x: torch.Tensor, kwargs: dict) -> torch.Tensor:
    """torch's quantized kernel on ``x`` (its arguments are the student's: the signatures mirror it)."""
    return resolve(ex.kernel)(x, **kwargs)


def output_qparams(ex: Exercise8, case: QCase) -> tuple[float, int]:
    kw = case.arguments
    if ex.output == FIXED:
        return ex.fixed
    if kw.get("scale") is None:
        return case.scale, case.zero_point
    return kw["scale"], kw["zero_point"]


def _f32(v: float) -> float:
    return float(torch.tensor(v, dtype=torch.float32))


def _truth(ex: Exercise8, x: torch.Tensor, kwargs: dict) -> torch.Tensor:
    """The activation in float64 (torch's own float functional)."""
    return ex.activation.torch_functional()(x, **{k: v for k, v in kwargs.items() if k in ex.float_args})


def exact_q(ex: Exercise8, case: QCase, q: torch.Tensor, in_zp: int | None = None, out_zp: int | None = None) -> torch.Tensor:
    """The unclamped output in LSB, y/scale + zero point, from float64 (the scales as float32, as torch
    uses them); ``in_zp``/``out_zp`` replace the zero points (what a forgotten one gives)."""
    scale, zp = output_qparams(ex, case)
    x = (q.double() - (case.zero_point if in_zp is None else in_zp)) * _f32(case.scale)
    return _truth(ex, x, case.arguments) / _f32(scale) + (zp if out_zp is None else out_zp)


def _table(v: torch.Tensor) -> torch.Tensor:
    return torch.round(v).clamp(0, 255).long()


# ------------------------------------------------------------------------ the checks

def check_api(impl: Impl, device: str) -> Notes:
    """The function is defined with the signature of torch's quantized one (as the chapter states),
    and runs: a stub that raises NotImplementedError earns nothing here either."""
    ex = _exercise(impl)
    fn = impl.get(ex.name)
    assert_signature(ex.name, lambda: fn, ex.signature())
    x, kwargs = _inputs(ex)[0]
    _student(impl, ex, x, kwargs, f"{ex.name} on every input")
    return []


def _agree(ex: Exercise8, what: str, got: dict, torch_out: dict) -> None:
    """Type, dtype, shape and (quint8) scale and zero point as torch's."""
    if got.get("type") != "Tensor":
        raise CheckFailure(f"{what}: returned {got.get('type')}, torch returns a Tensor")
    if got["dtype"] != torch_out["dtype"]:
        how = "the table's integers wrapped as a quantized tensor" if ex.kind == QUINT8 else "one rounding at the end"
        raise CheckFailure(f"{what}: dtype is {got['dtype']}, torch gives {torch_out['dtype']} ({how})")
    if got["shape"] != torch_out["shape"]:
        raise CheckFailure(f"{what}: shape is {tuple(got['shape'])}, torch gives {tuple(torch_out['shape'])}")
    if ex.kind == FP8:
        return
    if "qscheme" in got:
        raise CheckFailure(f"{what}: qscheme is {got['qscheme']}, torch gives per_tensor_affine")
    where = {INPUT: "the input's", GIVEN: "the arguments'", FIXED: "fixed for quint8"}.get(
        ex.output, "the arguments', or the input's when scale is None")
    if not math.isclose(got["scale"], torch_out["scale"], rel_tol=1e-6):
        raise CheckFailure(f"{what}: the output's q_scale is {got['scale']!r}, torch's is {torch_out['scale']!r} "
                           f"({where}): wrong output qparams")
    if got["zero_point"] != torch_out["zero_point"]:
        raise CheckFailure(f"{what}: the output's q_zero_point is {got['zero_point']}, torch's is "
                           f"{torch_out['zero_point']} ({where}): wrong output qparams")


def _quint8_values(impl: Impl, device: str) -> Notes:
    """Every input of every case: dtype, q_scale, q_zero_point and each integer as torch's kernel."""
    ex = _exercise(impl)
    for case in ex.cases:
        x = every_quint8(case)
        what = case.describe(ex.name)
        expected = describe_output(torch_quint8(ex, x, case.arguments))
        got = _student(impl, ex, x, case.arguments, what)
        _agree(ex, what, got, expected)
        q, ours, theirs = x.int_repr().reshape(-1).long(), got["ints"].reshape(-1).long(), \
            expected["ints"].reshape(-1).long()
        order = torch.argsort(q)  # indexed by the input's integer from here on
        ours, theirs = ours[order], theirs[order]
        exact = exact_q(ex, case, torch.arange(256))
        middle = (ours + theirs).double() / 2
        near_tie = ((ours - theirs).abs() == 1) & ((exact - middle).abs() <= TIE) & (exact != middle)
        bad = (ours != theirs) & ~near_tie
        if bool(bad.any()):
            raise CheckFailure(_quint8_message(ex, case, what, ours, theirs, exact, bad),
                               tuple(float((int(i) - case.zero_point) * case.scale) for i in bad.nonzero()[:8, 0]),
                               "value")
    return []


def _quint8_message(ex: Exercise8, case: QCase, what: str, ours: torch.Tensor, theirs: torch.Tensor,
                    exact: torch.Tensor, bad: torch.Tensor) -> str:
    scale, zp = output_qparams(ex, case)
    i = int(bad.nonzero()[0, 0])
    g, t = int(ours[i]), int(theirs[i])
    x = (i - case.zero_point) * _f32(case.scale)
    text = (f"{what}: value is q={g} (y={fmt((g - zp) * scale)}) at q={i} (x={fmt(x)}), torch gives q={t} "
            f"(y={fmt((t - zp) * scale)}): {g - t:+d} LSB ({int(bad.sum())} of 256 inputs differ)")
    v = float(exact[i])
    if abs(g - t) == 1 and v == (g + t) / 2:
        text += f"; y/scale + zero_point is exactly {v!r}, a tie: torch rounds half to even"
    elif t in (0, 255) and (v < 0 or v > 255):
        text += f"; torch's q is clipped to quint8's [0, 255] (unclipped: {v:.2f})"
    if bool((ours[:-1] == theirs[1:]).all() or (ours[1:] == theirs[:-1]).all()):
        text += "; your table is torch's shifted by one entry"
    elif case.zero_point and _mostly(ours, _table(exact_q(ex, case, torch.arange(256), in_zp=0))):
        text += "; your table is what x = q·scale gives: the input's zero point is missing"
    elif zp and _mostly(ours, _table(exact_q(ex, case, torch.arange(256), out_zp=0))):
        text += "; your table is what q = round(y/scale) gives: the output's zero point is missing"
    else:
        lo, hi = int(ours.min()), int(ours.max())
        if (lo, hi) != (int(theirs.min()), int(theirs.max())) and _mostly(ours, theirs.clamp(lo, hi)):
            text += f"; your table is torch's clipped to [{lo}, {hi}]"
    return text


def _mostly(a: torch.Tensor, b: torch.Tensor) -> bool:
    """The same table up to float32's ties."""
    return int((a == b).sum()) >= 250


def _ordinal(bits: torch.Tensor) -> torch.Tensor:
    """fp8 values' positions on the number line: neighbours differ by 1 (±0 are one position)."""
    b = bits.long()
    magnitude = b & 0x7F
    return torch.where(b & 0x80 != 0, -magnitude, magnitude)


def _fp8_values(impl: Impl, device: str) -> Notes:
    """All 256 fp8 inputs: dtype float8_e4m3fn and each value as torch's float32 result rounded once."""
    ex = _exercise(impl)
    x = every_fp8()
    for kw in ex.fp8_cases:
        kwargs = dict(kw)
        what = f"{ex.name}(x{''.join(f', {k}={v!r}' for k, v in kw)}) on every float8_e4m3fn"
        wide = x.float()
        reference = ex.activation.torch_functional()(wide, **kwargs).to(FP8_DTYPE)
        expected = describe_output(reference)
        got = _student(impl, ex, x, kwargs, what)
        _agree(ex, what, got, expected)
        ours = got["bits"].reshape(-1).view(FP8_DTYPE).double()
        theirs = reference.reshape(-1).double()
        truth = _truth(ex, wide.double().reshape(-1), kwargs)
        middle = (ours + theirs) / 2
        step = (_ordinal(got["bits"].reshape(-1)) - _ordinal(reference.contiguous().view(torch.uint8).reshape(-1))).abs()
        near_tie = (step == 1) & ((truth - middle).abs() <= TIE8 * middle.abs()) & (truth != middle)
        same = (ours == theirs) | (ours.isnan() & theirs.isnan())
        bad = ~same & ~near_tie
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            xi = float(wide.reshape(-1)[i])
            text = (f"{what}: value is {fmt(float(ours[i]))} at x={fmt(xi)}, torch gives {fmt(float(theirs[i]))} "
                    f"(float32 rounded once to float8_e4m3fn; the exact value is {float(truth[i])!r}): "
                    f"{int(step[i])} fp8 steps ({int(bad.sum())} of 256 inputs differ)")
            for half in (torch.float16, torch.bfloat16):
                twice = ex.activation.torch_functional()(wide, **kwargs).to(half).to(FP8_DTYPE).reshape(-1).double()
                if float(twice[i]) == float(ours[i]):
                    text += f"; it is what rounding twice, through {str(half).removeprefix('torch.')}, gives"
                    break
            raise CheckFailure(text, (xi,), "value")
    return []


def _run_all(impl: Impl, ex: Exercise8, with_input: Callable[[], list[tuple[torch.Tensor, dict]]]) -> dict:
    """Record the ops and torch calls of every call on the inputs (the worker's side, one tape entry)."""
    fn = impl.get(ex.name)

    def record() -> dict:
        ran = False
        with Recorder() as rec:
            for x, kwargs in with_input():
                try:  # what a call makes before it fails counts; its failure is the values checks' business
                    fn(x, **kwargs)
                    ran = True
                except NotImplementedError:
                    pass
                except Exception:
                    ran = True
        return {"ran": ran, "ops": dict(rec.ops), "calls": [callable_name(f) for f in rec.calls],
                "floats": [list(f) for f in rec.floats]}

    return impl.observe(f"record {ex.name}", record)


def _inputs(ex: Exercise8) -> list[tuple[torch.Tensor, dict]]:
    if ex.kind == FP8:
        return [(every_fp8(), dict(kw)) for kw in ex.fp8_cases]
    return [(every_quint8(case), case.arguments) for case in ex.cases]


def check_forbidden(impl: Impl, device: str) -> Notes:
    """No call of torch's op for this activation, quantized or float: not the quantized kernel (that
    is the answer), nor dequantize → torch's float activation → quantize (the float activation does
    the work, and is not the kernel's arithmetic), nor F.gelu on the fp8 input upcast. Float
    primitives (exp, clamp, where, round, ...) and the quantization plumbing (int_repr,
    _make_per_tensor_quantized_tensor, dequantize, quantize_per_tensor) are allowed."""
    ex = _exercise(impl)
    ops, funcs = forbidden(ex.activation)
    funcs = funcs | {callable_name(resolve(ex.kernel))}
    seen = _run_all(impl, ex, lambda: _inputs(ex))
    if not seen["ran"]:
        raise CheckFailure(f"{ex.name}: not implemented (raises NotImplementedError)")
    used = sorted(op for op in seen["ops"] if op in ops)
    if used:
        raise CheckFailure(f"{ex.name}: calls torch's own aten.{used[0]} (the op of {ex.entry}): write it from "
                           "float primitives")
    called = [name for name in seen["calls"] if name in funcs]
    if called:
        raise CheckFailure(f"{ex.name}: calls torch's {called[0]}: write it from float primitives")
    return []


def check_table(impl: Impl, device: str) -> Notes:
    """The float arithmetic runs on the 256 table entries, never on the input: no floating-point tensor
    as large as the input."""
    ex = _exercise(impl)
    n = VECTOR_SIZES[1]
    seen = _run_all(impl, ex, lambda: [(_random_input(ex, n), ex.cases[0].arguments)])
    if not seen["ran"]:
        raise CheckFailure(f"{ex.name}: not implemented (raises NotImplementedError)")
    large = [(op, size) for op, size in seen["floats"] if size >= n]
    if large:
        op, size = large[0]
        raise CheckFailure(f"{ex.name} on {n} inputs: aten.{op} makes a floating-point tensor of {size} elements: "
                           f"it computes on the input, not on a table: build the 256-entry table and gather from it")
    return []


def check_vectorised(impl: Impl, device: str) -> Notes:
    """The number of dispatched ops must not grow with the input: no Python loop over elements."""
    ex = _exercise(impl)
    kwargs = dict(ex.fp8_cases[0]) if ex.kind == FP8 else ex.cases[0].arguments
    counts = []
    for n in VECTOR_SIZES:
        seen = _run_all(impl, ex, lambda: [(_random_input(ex, n), kwargs)])
        if not seen["ran"]:
            raise CheckFailure(f"{ex.name}: not implemented (raises NotImplementedError)")
        counts.append(sum(seen["ops"].values()))
    if counts[1] > counts[0]:
        raise CheckFailure(f"{ex.name}: dispatches {counts[0]} torch ops on {VECTOR_SIZES[0]} elements but "
                           f"{counts[1]:,} on {VECTOR_SIZES[1]:,}: a Python loop over elements? Use tensor ops")
    return []


def _kind(kind: str) -> Callable:
    return lambda entry: entry.name in BY_ENTRY and BY_ENTRY[entry.name].kind == kind


CHECKS: tuple[Check, ...] = (
    Check("quint8 api", check_api, per_device=False, applies=_kind(QUINT8)),
    Check("quint8 values", _quint8_values, per_device=False, applies=_kind(QUINT8)),
    Check("quint8 table", check_table, per_device=False, applies=_kind(QUINT8)),
    Check("quint8 forbidden", check_forbidden, per_device=False, applies=_kind(QUINT8)),
    Check("quint8 vectorised", check_vectorised, per_device=False, applies=_kind(QUINT8)),
    Check("fp8 api", check_api, per_device=False, applies=_kind(FP8)),
    Check("fp8 values", _fp8_values, per_device=False, applies=_kind(FP8)),
    Check("fp8 forbidden", check_forbidden, per_device=False, applies=_kind(FP8)),
    Check("fp8 vectorised", check_vectorised, per_device=False, applies=_kind(FP8)),
)
