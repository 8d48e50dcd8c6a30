"""The 8-bit checks: quint8 activations against torch's quantized kernels, fp8 ones against torch's
float32 computation rounded once, every representable input.

quint8: each (scale, zero point) of the exercise's cases and of the sampled grids
(grader/spec/quantized_catalog.py) on all 256 inputs, the output's dtype, q_scale, q_zero_point and
every value, against the kernels of the quantized engine the grading machine runs
(``torch.backends.quantized.engine``). torch's kernels compute in float32, and how depends on
the input's layout: on a contiguous tensor the x86 kernels dequantize with a fused multiply-add
(x = q·scale + (−zp·scale)) and round y·(1/scale) half to even before adding the zero point; on
the grader's transposed input they go element by element and add the zero point before rounding.
A table computed another correct way in float32 (``(q − zp)·scale``, ``y / scale``) differs from
them by one step only where the exact result lies within float32's error of a rounding boundary.
There either neighbour is accepted: the float64 value decides, within ``TIE`` LSB. At an exact tie
either neighbour is accepted too where float32 arithmetic cannot reach the tie exactly (an input or
an output that float32 does not hold, an output scale that is no power of two: torch itself lands on
either side, by layout); where it can, the rounding mode shows, and round half to even is required,
with the zero point added before or after (torch does both).
fp8 the same way: torch's float32 result rounded once, a neighbour accepted within ``TIE8`` (relative)
of the midpoint between the two.

Student code runs only in taped interactions (grader/checks/replay.py) that hand back plain tensors
(a quantized output as its integers, scale and zero point; an fp8 output as its bits), so the
parent re-judges from the tape with torch alone.
"""
from __future__ import annotations

import functools
import math
import struct
import warnings
from typing import Callable, NamedTuple

import torch
import torch.ao.nn.quantized.functional  # noqa: F401  (the kernels graded against; resolve() walks attributes)

from grader.checks.compare import fmt
from grader.checks.harness import Impl, Notes, raised, student_call
from grader.checks.inputs import seed_of
from grader.checks.signatures import assert_signature
from grader.checks.recorder import Recorder, resolve
from grader.checks.base import Check
from grader.checks.torch_adapter import callable_name, forbidden
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


@functools.cache
def _order() -> torch.Tensor:
    return torch.randperm(256, generator=torch.Generator().manual_seed(seed_of("quint8 order"))).to(torch.uint8)


def every_quint8(case: QCase) -> torch.Tensor:
    """All 256 integers, shuffled into a transposed (non-contiguous) 16 x 16 tensor: a gather that
    flattens or assumes a layout shows."""
    return _every_quint8((case,))[0]


def _every_quint8(cases: tuple[QCase, ...]) -> list[torch.Tensor]:
    ints = _order().reshape(16, 16)  # copied into each quantized tensor
    with warnings.catch_warnings():  # once for all the cases: entering it costs as much as a kernel
        warnings.simplefilter("ignore", UserWarning)
        return [torch._make_per_tensor_quantized_tensor(ints, c.scale, c.zero_point).t() for c in cases]


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
    return struct.unpack("f", struct.pack("f", v))[0]


def _truth(ex: Exercise8, x: torch.Tensor, kwargs: dict) -> torch.Tensor:
    """The activation in float64 (torch's own float functional), with its parameters (alpha,
    negative_slope) as the quantized kernels hold them, in float32: with 0.01 itself, a position
    such as −1.5 would read as an exact tie that torch's 0.01f misses."""
    held = {k: _f32(v) if isinstance(v, float) and ex.kind == QUINT8 else v for k, v in kwargs.items()
            if k in ex.float_args}
    return ex.activation.torch_functional()(x, **held)


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
    student_call(f"{ex.name} on every input", _call, fn, x, kwargs)
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
    """Every input of every chosen case and sampled grid: dtype, q_scale, q_zero_point and each integer
    as torch's kernel."""
    ex = _exercise(impl)
    quint8_values_on(impl, ex, ex.graded_cases)
    return []


def quint8_values_on(impl: Impl, ex: Exercise8, cases: tuple[QCase, ...]) -> None:
    """The values check on these cases only (the tests grade the chosen ones alone with it). It fails
    at the first case that differs, as if each were judged in turn. But the student's function is
    called on every case in one taped interaction (the worker restores what student code may have
    patched after each interaction, a millisecond or more here, more than the function costs); and
    the cases are compared as one batch of integers, judging in float64 only those where a code
    differs from torch's: an object per case and per input, hundreds of cases, cost the parent more in
    garbage collections than the comparison itself."""
    inputs = _every_quint8(cases)
    got, stopped = _student_on_every(impl, ex, cases, inputs)
    kernel = resolve(ex.kernel)
    theirs = [kernel(x, **case.arguments) for case, x in zip(cases, inputs[:len(got["kind"])])]
    if not theirs:
        raise stopped if stopped is not None else CheckFailure(f"{ex.name}: nothing to grade")
    same = describe_output(theirs[0])  # what every torch output is but its qparams and integers
    for key in ("ints", "scale", "zero_point"):
        same.pop(key, None)
    ok = len(theirs)
    for n, (y, k) in enumerate(zip(theirs, got["kind"].tolist())):
        if got["kinds"][k] != same or not bool(got["qparams"][n]) or int(got["zero_point"][n]) != y.q_zero_point() \
                or not math.isclose(float(got["scale"][n]), y.q_scale(), rel_tol=1e-6):
            try:  # only here: the message's words
                _agree(ex, cases[n].describe(ex.name), _output(got, n), describe_output(y))
            except CheckFailure as failure:  # judged after the values of the cases before it
                stopped, ok = failure, n
                break
    if ok:
        # every case before ``ok`` has torch's shape: 256 integers each, in order
        ours = got["ints"][:ok * 256].reshape(ok, 256)
        mine = torch.stack([y.int_repr() for y in theirs[:ok]]).reshape(ok, 256)
        differ = (ours != mine).any(dim=1).nonzero()[:, 0]
        if len(differ):  # only the cases where a code differs are judged in float64
            done = tuple(cases[int(n)] for n in differ)
            ours, mine = (v.index_select(0, differ).index_select(1, _by_code()).long() for v in (ours, mine))
            grids = _grids(ex, done)
            exact = grids.y / grids.scale + grids.zero_point
            bad = (ours != mine) & ~_also_right(grids, exact, ours, mine)
            if bool(bad.any()):
                n = int(bad.any(dim=1).nonzero()[0, 0])
                case, wrong = done[n], bad[n]
                raise CheckFailure(_quint8_message(ex, case, case.describe(ex.name), ours[n], mine[n], exact[n], wrong),
                                   tuple(float((int(i) - case.zero_point) * case.scale) for i in wrong.nonzero()[:8, 0]),
                                   "value")
    if stopped is not None:
        raise stopped


def _student_on_every(impl: Impl, ex: Exercise8, cases: tuple[QCase, ...],
                      inputs: list[torch.Tensor]) -> tuple[dict, CheckFailure | None]:
    """The student's outputs on the cases, up to the first case where the function raises (and that
    failure); a timeout ends the whole interaction. They cross the tape as a few tensors (one row per
    case) and the distinct descriptions (``describe_output`` without qparams and integers): the
    parent's unpickler pays per object, and a dict per case cost it more than judging them."""
    def every() -> dict:
        fn = impl.get(ex.name)  # inside the interaction: no restore of its own
        kinds: list[dict] = []
        kind, qparams, scale, zero_point, at, ints, failure = [], [], [], [], [], [], None
        for case, x in zip(cases, inputs):
            try:
                out = describe_output(fn(x, **case.arguments))
            except CheckFailure:
                raise
            except (Exception, SystemExit, KeyboardInterrupt) as exc:
                failure = raised(case.describe(ex.name), exc)
                break
            data, _ = out.pop("ints", None), out.pop("bits", None)  # fp8 bits: the dtype check fails first
            qparams.append("scale" in out)
            scale.append(float(out.pop("scale", 0.0)))
            zero_point.append(int(out.pop("zero_point", 0)))
            at.append(-1 if data is None else sum(v.numel() for v in ints))
            if data is not None:
                ints.append(data.reshape(-1))
            if out not in kinds:
                kinds.append(out)
            kind.append(kinds.index(out))
        return {"kinds": kinds, "kind": torch.tensor(kind, dtype=torch.long),
                "qparams": torch.tensor(qparams, dtype=torch.bool), "scale": torch.tensor(scale, dtype=torch.float64),
                "zero_point": torch.tensor(zero_point, dtype=torch.long), "at": torch.tensor(at, dtype=torch.long),
                "ints": torch.cat(ints) if ints else torch.zeros(0, dtype=torch.uint8), "raised": failure}

    got = student_call(f"{ex.name} on every case", every)
    return got, None if got["raised"] is None else CheckFailure(got["raised"])


def _output(got: dict, n: int) -> dict:
    """Case ``n``'s ``describe_output``, back from the batch."""
    out = dict(got["kinds"][int(got["kind"][n])])
    if bool(got["qparams"][n]):
        out.update(scale=float(got["scale"][n]), zero_point=int(got["zero_point"][n]))
    start = int(got["at"][n])
    if start >= 0:
        out["ints"] = got["ints"][start:start + math.prod(out["shape"])].reshape(out["shape"])
    return out


@functools.cache
def _by_code() -> torch.Tensor:
    """The positions, in every_quint8's (row-major) order, of the integers 0, 1, ..., 255."""
    return torch.argsort(_order().reshape(16, 16).t().reshape(-1).long())


class _Grids(NamedTuple):
    x: torch.Tensor  # each case's input values, one row of 256 per case
    y: torch.Tensor  # the truth at them
    scale: torch.Tensor  # the output's, one row per case
    zero_point: torch.Tensor


def _grids(ex: Exercise8, cases: tuple[QCase, ...]) -> _Grids:
    """In float64 from the scales as float32, as torch uses them."""
    grids = [(_f32(c.scale), c.zero_point, *output_qparams(ex, c)) for c in cases]
    s_in, z_in, s_out, z_out = (torch.tensor(v, dtype=torch.float64)[:, None] for v in zip(*grids))
    x = (torch.arange(256, dtype=torch.float64) - z_in) * s_in
    y = torch.empty_like(x)
    rows: dict[tuple, list[int]] = {}  # cases that share the float functional's arguments go together
    for n, c in enumerate(cases):
        rows.setdefault(tuple((k, v) for k, v in c.kwargs if k in ex.float_args), []).append(n)
    for kwargs, at in rows.items():
        index = torch.tensor(at)
        y.index_copy_(0, index, _truth(ex, x.index_select(0, index), dict(kwargs)))
    return _Grids(x, y, s_out.float().double(), z_out)


def exact_positions(ex: Exercise8, cases: tuple[QCase, ...]) -> torch.Tensor:
    """``exact_q`` of every integer, one row per case."""
    grids = _grids(ex, cases)
    return grids.y / grids.scale + grids.zero_point


def _held_by_float32(v: torch.Tensor) -> torch.Tensor:
    return v.float().double() == v


def _also_right(grids: _Grids, exact: torch.Tensor, ours: torch.Tensor, theirs: torch.Tensor) -> torch.Tensor:
    """Where a code one step from torch's is right too (one row per case): a near-tie (within ``TIE``
    of the boundary, where float32's error decides), or an exact tie that float32 arithmetic cannot
    reach exactly; at a tie it can reach, round half to even with the zero point added before or
    after rounding."""
    middle = (ours + theirs).double() / 2
    step = (ours - theirs).abs() == 1
    right = step & ((exact - middle).abs() <= TIE) & (exact != middle)
    # the ties alone, picked out: rounding a whole batch starts torch's threads, which a busy
    # machine makes wait milliseconds
    at = (step & (exact == middle)).nonzero(as_tuple=True)
    if len(at[0]):
        zp, code = grids.zero_point[at[0], 0], ours[at]
        power = torch.frexp(grids.scale[at[0], 0]).mantissa == 0.5  # y / scale and y · (1 / scale) exact
        reached = _held_by_float32(grids.x[at]) & _held_by_float32(grids.y[at]) & power
        even = (torch.round(exact[at]) == code) | (torch.round(exact[at] - zp) + zp == code)
        right[at] = ~reached | even
    return right


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
    elif _truncated(ours, exact, zp, bad):
        text += (f"; where yours differs, it is y/scale + zero_point truncated toward the zero point, where "
                 f"torch rounds it to the nearest (here {v:.4f} to {t}): a bound's or a constant's code "
                 f"computed with int()?")
    elif (kink := _kink_next_to(ex, case, bad)) is not None:
        text += (f"; every input that differs lies within one input step of the kink at x={kink:g}: a code "
                 f"takes the branch of its value x; a threshold code of {kink:g} truncated with int() would "
                 f"send the code next to it the wrong way")
    else:
        lo, hi = int(ours.min()), int(ours.max())
        if (lo, hi) != (int(theirs.min()), int(theirs.max())) and _mostly(ours, theirs.clamp(lo, hi)):
            text += f"; your table is torch's clipped to [{lo}, {hi}]"
    return text


def _truncated(ours: torch.Tensor, exact: torch.Tensor, zp: int, bad: torch.Tensor) -> bool:
    """Every differing code is the exact position cut toward the zero point, as int() cuts: not a
    tie, where rounding half up would give the same."""
    cut = torch.trunc(exact[bad] - zp) + zp
    return bool((ours[bad] == cut).all() and (exact[bad] % 1 != 0.5).all())


def _kink_next_to(ex: Exercise8, case: QCase, bad: torch.Tensor) -> float | None:
    """The kink (relu6's 6, hardswish's ±3) that every differing input is less than a step from."""
    x = (bad.nonzero()[:, 0].double() - case.zero_point) * case.scale
    entry = ex.activation
    for kink in entry.kinks(entry.resolve({k: v for k, v in case.kwargs if k in ex.float_args})):
        if bool(((x - kink).abs() < case.scale).all()):
            return kink
    return None


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
    x, fn = every_fp8(), impl.get(ex.name)
    for kw in ex.fp8_cases:
        kwargs = dict(kw)
        what = f"{ex.name}(x{''.join(f', {k}={v!r}' for k, v in kw)}) on every float8_e4m3fn"
        wide = x.float()
        reference = ex.activation.torch_functional()(wide, **kwargs).to(FP8_DTYPE)
        expected = describe_output(reference)
        got = student_call(what, _call, fn, x, kwargs)
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


def _run_all(impl: Impl, ex: Exercise8, *inputs: Callable[[], list[tuple[torch.Tensor, dict]]]) -> list[dict]:
    """Record the ops and torch calls of every call on each set of inputs, set by set, in one
    interaction (the worker's side, one tape entry: the worker restores what student code may have
    patched after each interaction, which costs more than these calls)."""
    def record() -> list[dict]:
        fn = impl.get(ex.name)  # inside the interaction: no restore of its own
        seen = []
        for make in inputs:
            batch, ran = make(), False  # made before recording: making the inputs is not the student's
            with Recorder() as rec:
                for x, kwargs in batch:
                    try:  # what a call makes before it fails counts; its failure is the values checks' business
                        fn(x, **kwargs)
                        ran = True
                    except NotImplementedError:
                        pass
                    except Exception:
                        ran = True
            seen.append({"ran": ran, "ops": dict(rec.ops), "calls": [callable_name(f) for f in rec.calls],
                         "floats": [list(f) for f in rec.floats]})
        return seen

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
    seen, = _run_all(impl, ex, lambda: _inputs(ex))
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
    seen, = _run_all(impl, ex, lambda: [(_random_input(ex, n), ex.cases[0].arguments)])
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
    for seen in _run_all(impl, ex, *(lambda n=n: [(_random_input(ex, n), kwargs)] for n in VECTOR_SIZES)):
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
