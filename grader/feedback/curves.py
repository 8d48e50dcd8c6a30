"""What a failed values, grad, edges or kinks check looks like: the student's f and f' against
torch's on a range around the failing inputs.

Data only (drawing is :mod:`grader.feedback.plots`), and never a verdict: a curve illustrates a failure the
check has already decided. The failing inputs, parameter set, dtype and form come from the
:class:`~grader.checks.compare.CheckFailure` itself, not from its message.

In a notebook, ``check()`` evaluates the student's functions here, in the kernel. Under ``python -m
grader`` the parent never runs student code: the worker evaluates them on the range after the check
has failed and appends the numbers to the check's tape (:func:`record`); the parent validates them
(:func:`from_tape`) and computes torch's side itself (:func:`build`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from grader.spec.catalog import BY_NAME, Activation
from grader.core.errors import CheckFailure
from grader.checks.compare import dtype_name, fmt
from grader.checks.replay import recorded
from grader.core.results import check_kind

PLOTTED = ("values", "grad", "edges", "kinks")
LABEL = "feedback: the student's curves around the failing inputs"
DTYPES = {dtype_name(d): d for d in (torch.float64, torch.float32, torch.float16, torch.bfloat16)}
LOG_FROM = 10.0  # failing inputs this large (±20, ±88.8, ±100, ±1e4) are shown on a symmetric log axis
BENT = 0.02  # a curve bends where its slope differs from its far slope by this share of the largest difference


@dataclass
class Curves:
    """f and f' of the student and of torch on ``x``; ``None`` where a side could not be computed."""

    activation: str
    check: str  # as in reports: ``grad[float32]``, ``edges@cuda``
    title: str  # ``sigmoid() float32``
    kind: str  # what differed: value or grad
    inputs: list[float]  # the failing inputs, the one the message names first
    x: list[float]
    log_x: bool
    linthresh: float = 1.0  # the symmetric log axis is linear on [-linthresh, linthresh] (see linear_range)
    torch_y: list[float] | None = None
    torch_g: list[float] | None = None
    student_y: list[float] | None = None
    student_g: list[float] | None = None
    student_error: str = ""  # why the student's side is missing
    # half precision: torch in float64 at the same points, the truth both are judged against
    exact_y: list[float] | None = None
    exact_g: list[float] | None = None
    notes: list[str] = field(default_factory=list)


def plottable(entry: Activation, check: str, failure: CheckFailure) -> bool:
    kind = check_kind(check)
    return (entry.elementwise and kind in PLOTTED and failure.case is not None and failure.dtype is not None
            and any(math.isfinite(v) for v in failure.inputs))


def grid(inputs: list[float]) -> tuple[list[float], bool]:
    """Points around the finite failing inputs (which are included): a linear range around them, or
    symmetric-log spacing when one is large, so that ±1e4 and the shape near 0 both show: evenly
    spaced up to ±LOG_FROM, where the curves of the catalogue bend (the axis's linear range is then
    chosen from the curves, :func:`linear_range`), log-spaced beyond."""
    finite = [v for v in inputs if math.isfinite(v)]
    top = max(abs(v) for v in finite)
    if top >= LOG_FROM:
        edge = 2 * top
        n = 100
        outer = [LOG_FROM * (edge / LOG_FROM) ** (i / (n - 1)) for i in range(n)]  # LOG_FROM .. edge
        inner = [LOG_FROM * (-1 + i / 100) for i in range(201)]
        points = [-v for v in outer] + inner + outer
        log_x = True
    else:
        pad = max(2.0, 0.3 * (max(finite) - min(finite)))
        lo, hi = min(finite) - pad, max(finite) + pad
        points = [lo + (hi - lo) * i / 400 for i in range(401)]
        log_x = False
    return sorted(set(points) | set(finite)), log_x


def evaluate(call: Callable[[torch.Tensor], torch.Tensor], entry: Activation, case: dict, dtype: torch.dtype,
             device: str, xs: list[float]) -> tuple[list[float] | None, list[float] | None, str]:
    """(f, f', error) of ``call`` at ``xs``, computed in ``dtype``: f' by autograd with an upstream
    gradient of ones (the derivative itself, the functions being elementwise)."""
    try:
        x = entry.elementwise_tensor(case, xs, dtype).to(device).requires_grad_()
        y = call(x)
        if not isinstance(y, torch.Tensor) or y.shape != x.shape:
            return None, None, f"returned {type(y).__name__} of another shape" if isinstance(y, torch.Tensor) \
                else f"returned {type(y).__name__}"
        values = _column(y)
        if not y.requires_grad:
            return values, None, "the output does not require grad"
        (g,) = torch.autograd.grad(y, x, torch.ones_like(y), allow_unused=True)
        return values, (_column(g) if g is not None else None), ""
    except (Exception, SystemExit, KeyboardInterrupt) as exc:  # student code: anything may happen
        lines = str(exc).strip().splitlines()
        return None, None, f"raised {type(exc).__name__}: {lines[0][:160]}" if lines else f"raised {type(exc).__name__}"


def _column(t: torch.Tensor) -> list[float]:
    """One value per input point (PReLU's inputs have a column per channel, all equal)."""
    t = t.detach().cpu().double()
    return (t[:, 0] if t.dim() == 2 else t.reshape(-1)).tolist()


def caller(fn: Callable, entry: Activation, case: dict, form: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> f(x, ...)`` with the case's arguments, for the functional or the ``<Module>Function`` form."""
    if form == "function":
        return lambda x: fn(x, *entry.function_arguments(case, x))

    def functional(x: torch.Tensor) -> torch.Tensor:
        args, kwargs = entry.functional_arguments(case, x)
        return fn(x, *args, **kwargs)

    return functional


def _torch_side(entry: Activation, case: dict, dtype: torch.dtype, device: str, xs: list[float]):
    fn = entry.torch_functional()
    return evaluate(caller(fn, entry, case, "functional"), entry, case, dtype, device, xs)


def build(entry: Activation, check: str, failure: CheckFailure, device: str,
          student: tuple[list[float] | None, list[float] | None, str] | None,
          student_of: Callable[[list[float]], tuple] | None = None) -> Curves:
    """The curves of a plottable failure: torch's computed here; the student's given (from the
    worker) or computed by ``student_of(xs)`` (in the notebook's kernel)."""
    xs, log_x = grid(list(failure.inputs))
    case, dtype = failure.case or {}, failure.dtype
    form = f" ({entry.function_name})" if failure.form == "function" else ""
    title = f"{entry.describe(case)} {dtype_name(dtype)}{form}"
    shown = torch.tensor(xs, dtype=torch.float64).to(dtype).double().tolist()  # as the dtype holds them
    out = Curves(entry.name, check, title, failure.kind or "value", list(failure.inputs), shown, log_x)
    out.torch_y, out.torch_g, error = _torch_side(entry, case, dtype, device, xs)
    if error:
        out.notes.append(f"torch: {error}")
    if log_x:
        out.linthresh = linear_range(xs, [out.torch_y, out.torch_g])
    if dtype in (torch.float16, torch.bfloat16):
        out.exact_y, out.exact_g, _ = _torch_side(entry, case, torch.float64, device, shown)
    if student is None and student_of is not None:
        student = student_of(xs)
    if student is not None:
        sy, sg, out.student_error = student
        if sy is not None and len(sy) == len(xs):
            out.student_y = sy
        if sg is not None and len(sg) == len(xs):
            out.student_g = sg
    return out


def linear_range(xs: list[float], curves: list[list[float] | None]) -> float:
    """How far from 0 a symmetric log x axis stays linear: past where torch's curves bend (their
    slope still differs from its value at that side's far end by more than BENT of the largest such
    difference), so that a smooth curve is drawn with its bend on the linear part and only straight
    stretches are squeezed by the log part. At least 1, rounded up to one significant digit."""
    reach = 0.0
    for ys in curves:
        points = [(x, y) for x, y in zip(xs, ys or []) if math.isfinite(y)]
        slopes = [((x0 + x1) / 2, (y1 - y0) / (x1 - x0)) for (x0, y0), (x1, y1) in zip(points, points[1:]) if x1 > x0]
        differences = []  # (x, the slope there minus the slope at that side's far end)
        for sign in (-1, 1):
            side = [(m, s) for m, s in slopes if m * sign > 0]
            if len(side) > 1:
                far = max(side, key=lambda ms: abs(ms[0]))[1]
                differences += [(m, s - far) for m, s in side]
        # rounding (float32 values) is no bend: differences under 1e-3 of the steepest slope are none
        floor = 1e-3 * max((abs(s) for _, s in slopes), default=0.0)
        spread = max((abs(d) for _, d in differences), default=0.0)
        bent = [abs(m) for m, d in differences if abs(d) > max(BENT * spread, floor)]
        reach = max(reach, max(bent, default=0.0))
    reach *= 1.2  # a margin, so the bend ends inside the linear part
    if reach <= 1:
        return 1.0
    digit = 10 ** math.floor(math.log10(reach))
    return math.ceil(reach / digit) * digit


def student_side(fn: Callable, entry: Activation, failure: CheckFailure, device: str) -> Callable[[list[float]], tuple]:
    """How to evaluate the student's form on a grid (called in the kernel or in the worker)."""
    call = caller(fn, entry, failure.case or {}, failure.form)
    return lambda xs: evaluate(call, entry, failure.case or {}, failure.dtype, device, xs)


# ---------------------------------------------------------------------------------- across processes

def record(form_fn: Callable[[], Callable], entry: Activation, check: str, device: str,
           failure: CheckFailure, interact: Callable, after: Callable[[], None] = lambda: None) -> None:
    """In the worker, after ``check`` failed: evaluate the student's form on the grid and append the
    numbers to the check's tape (``interact`` records them). ``after`` runs after student code (the
    worker's guard). Any trouble just leaves the curves out."""
    if not plottable(entry, check, failure):
        return
    xs, _ = grid(list(failure.inputs))

    def probe() -> dict:
        try:
            y, g, error = student_side(form_fn(), entry, failure, device)(xs)
        finally:
            after()
        return {"activation": entry.name, "check": check, "case": dict(failure.case or {}),
                "dtype": dtype_name(failure.dtype), "form": failure.form, "kind": failure.kind,
                "inputs": [float(v) for v in failure.inputs],
                "y": torch.tensor(y, dtype=torch.float64) if y is not None else None,
                "g": torch.tensor(g, dtype=torch.float64) if g is not None else None,
                "error": error}

    try:
        interact(LABEL, probe)
    except (Exception, SystemExit, KeyboardInterrupt):
        pass


def has_curves(entries: list) -> bool:
    return any(isinstance(item, (list, tuple)) and item and item[0] == LABEL for item in entries)


def from_tape(entries: list) -> list[tuple[str, str, CheckFailure, tuple]]:
    """The curves a worker recorded on a (decoded) tape, validated: (activation, check, failure as
    data, the student's (f, f', error)). Everything is checked against the catalogue, so a forged
    entry can at worst draw a wrong picture of its own submission, never make the parent compute
    something else."""
    try:
        payloads = recorded(entries, LABEL)
    except (ValueError, TypeError, KeyError, AttributeError):
        return []
    found = []
    for data in payloads:
        try:
            entry = BY_NAME[str(data["activation"])]
            case = next(c for c in entry.cases if _same_case(c, data["case"]))
            dtype = DTYPES[str(data["dtype"])]
            inputs = [float(v) for v in data["inputs"]][:16]
            failure = CheckFailure("", tuple(inputs), "grad" if data["kind"] == "grad" else "value")
            failure.case, failure.dtype = dict(case), dtype
            failure.form = "function" if data["form"] == "function" else "functional"
            y, g = (_floats(data[k]) for k in ("y", "g"))
            found.append((entry.name, str(data["check"]), failure, (y, g, str(data.get("error", ""))[:200])))
        except (KeyError, TypeError, ValueError, StopIteration, AttributeError):
            continue
    return found


def _same_case(ours: dict, theirs: object) -> bool:
    return isinstance(theirs, dict) and set(ours) == set(theirs) and all(
        repr(ours[k]) == repr(theirs[k]) for k in ours)


def _floats(t: object) -> list[float] | None:
    if not isinstance(t, torch.Tensor) or t.dim() != 1 or t.numel() > 10_000:
        return None
    return t.double().tolist()


def describe_inputs(inputs: list[float], most: int = 6) -> str:
    shown = ", ".join(fmt(v) for v in inputs[:most])
    return shown + (", ..." if len(inputs) > most else "")
