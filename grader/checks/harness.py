"""How the checks meet student code and torch: calls into student code (any exception a one-line
failure, taped in the worker), the three forms of an activation (``Impl``), torch's side computed once
per process, forward and backward, and the rule at a kink."""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch

from grader.core import hangs
from grader.spec.catalog import Activation, quiet_implicit_dim
from grader.spec.frameworks import TORCH, Framework
from grader.checks.compare import (Locate, assert_close, assert_half_close, check_tensor, failing_inputs, fmt,
                                   locate_index)
from grader.core.errors import CheckFailure, one_line
from grader.checks.replay import interact, type_name
from grader.checks.inputs import upstream_for

Notes = list[str]

# The checks' tensors are small: one intra-op thread computes torch's side and runs the student's calls
# for less CPU than torch's pool, which spins between tiny parallel regions (08_normalization's solution
# graded on 2 cores: 10.4 s of CPU with two threads, 6.1 s with one, and 5.6 s of wall against 7.4), and
# a batch already grades files side by side (--jobs). One count everywhere also keeps the last digits of
# torch's values in messages the same in check() and in the grader: torch's Softmax differs in its tenth
# digit between one thread and two.
GRADING_THREADS = 1


def use_grading_threads() -> None:
    """The grader's own processes (its command line, the worker) compute with :data:`GRADING_THREADS`."""
    torch.set_num_threads(GRADING_THREADS)


@contextlib.contextmanager
def grading_threads() -> Iterator[None]:
    """:data:`GRADING_THREADS` for the block only: check() runs in the student's kernel, whose thread
    count is the student's again after it."""
    before = torch.get_num_threads()
    use_grading_threads()
    try:
        yield
    finally:
        torch.set_num_threads(before)


_after_student_code: Callable[[], None] = lambda: None


def after_student_code(hook: Callable[[], None]) -> None:
    """Have ``hook`` called after every piece of student code: the worker undoes monkeypatching there
    (grader/run/guard.py)."""
    global _after_student_code
    _after_student_code = hook


def student_code_returned() -> None:
    _after_student_code()


def student_call(what: str, fn: Callable, *args, **kwargs):
    """Call student code; any exception, even SystemExit or KeyboardInterrupt, becomes a one-line failure.
    Taped in the worker, replayed in the parent (replay.py)."""
    return interact(what, lambda: _run_student(what, fn, args, kwargs))


def _run_student_direct(what: str, fn: Callable, *args, **kwargs):
    return _run_student(what, fn, args, kwargs)


def observe(label: str, thunk: Callable[[], object]) -> object:
    """Look at a student object (repr, attributes, signature): taped like a call."""
    return student_call(label, thunk)


def _run_student(what: str, fn: Callable, args: tuple, kwargs: dict):
    try:
        with hangs.calling():
            return fn(*args, **kwargs)
    except CheckFailure as exc:
        hangs.remember(exc)  # a timeout: the functions that were running are not waited for again
        raise
    except (Exception, SystemExit, KeyboardInterrupt) as exc:
        raise CheckFailure(raised(what, exc)) from None
    finally:
        _after_student_code()


def raised(what: str, exc: BaseException) -> str:
    """The failure of a call of student code that raised ``exc``."""
    if isinstance(exc, NotImplementedError):
        return f"{what}: not implemented (raises NotImplementedError)"
    return f"{what}: raised {one_line(exc)}"


class Impl:
    """A student's (or torch's) three forms of one activation, called the same way."""

    def __init__(self, entry: Activation, namespace: dict | None, student: bool = True,
                 framework: Framework = TORCH) -> None:
        self.entry = entry
        self.ns = namespace  # None in the parent, which replays the worker's tape
        self.student = student
        self.framework = framework  # whose names and arrays the forms are written in

    def get(self, name: str, kind: type | None = None, what: str = "") -> object:
        def lookup() -> object:
            if name not in self.ns:
                raise CheckFailure(f"{name} is not defined")
            obj = self.ns[name]
            if kind is not None and not (isinstance(obj, type) and issubclass(obj, kind)):
                raise CheckFailure(f"{name} is not a subclass of {what}")
            if kind is None and not callable(obj):
                raise CheckFailure(f"{name} is not callable")
            return obj
        return self.observe(f"look up {name}", lookup)

    def observe(self, label: str, thunk: Callable[[], object]) -> object:
        """A look at student code (taped), or at torch's (direct)."""
        return interact(label, thunk) if self.student else thunk()

    def module_class(self) -> type:
        return self.get(self.entry.name, torch.nn.Module, "torch.nn.Module")

    def function_class(self) -> type:
        return self.get(self.entry.function_name, torch.autograd.Function, "torch.autograd.Function")

    def make_module(self, case: dict, inplace: bool = False) -> torch.nn.Module:
        kwargs = self.entry.module_args(case)
        if inplace:
            kwargs["inplace"] = True
        label = f"{self.entry.name}({', '.join(f'{k}={fmt_arg(v)}' for k, v in kwargs.items())})"
        module = self.call(label, self.module_class(), **kwargs)
        if self.entry.random:
            self.observe(f"{label}.eval()", lambda: module.eval() and None)
        return module

    def call(self, what: str, fn: Callable, *args, **kwargs):
        return student_call(what, fn, *args, **kwargs) if self.student else _run_student(what, fn, args, kwargs)

    def functional(self) -> Callable:
        """``f(x, *args, **kwargs)``; Softmax2d, which has no functional form, goes through its module."""
        if self.entry.functional:
            return self.get(self.entry.functional)
        return lambda x, *a, **k: self.make_module({})(x)

    def function(self) -> Callable:
        return self.function_class().apply


def torch_impl(entry: Activation) -> Impl:
    """torch itself, seen through the same interface: the reference of every check."""
    ns = {entry.name: entry.torch_module()}
    if entry.functional:
        fn = entry.torch_functional()
        ns[entry.functional] = _quiet(fn) if entry.implicit_dim_shapes else fn
    return Impl(entry, ns, student=False)


def _quiet(fn: Callable) -> Callable:
    """torch's reference without its dim=None deprecation warning, which is not part of the grade."""
    def reference(*args, **kwargs):
        with quiet_implicit_dim():
            return fn(*args, **kwargs)
    return reference


def _reference_call(what: str, fn: Callable, *args, **kwargs):
    with quiet_implicit_dim():
        return _run_student_direct(what, fn, *args, **kwargs)


def on_input(entry: Activation, case: dict, shape: tuple[int, ...]) -> str:
    """`` on a (4, 6, 5) input, where torch's dim=None is dim=0``, for a case that leaves the dim to
    torch; empty otherwise (the messages' locations name the shape)."""
    dim = entry.implicit_dim(case, len(shape))
    return "" if dim is None else f" on a {tuple(shape)} input, where torch's dim=None is dim={dim}"


def fmt_arg(v: object) -> str:
    return fmt(v) if isinstance(v, float) else repr(v)


# ---------------------------------------------------------------------------------- autograd

def torch_vjp(y: torch.Tensor, inputs: Sequence[torch.Tensor], up: torch.Tensor, *, retain_graph: bool = False,
              allow_unused: bool = False) -> tuple[torch.Tensor | None, ...]:
    """``torch.autograd.grad(y, inputs, up)``, for torch's side of a check: the same gradients bit for
    bit, since the gradient of ``sum(y * up)`` w.r.t. y is ``1 * up``, exactly ``up``. What it saves:
    ``torch.autograd.grad`` checks an ``up`` it is given with torch's symbolic shapes, whose first use
    imports sympy, a third of a second of CPU at the start of every process of the grader's that
    computes torch's side (the worker needs sympy anyway: a student's backward and gradcheck run there
    through ``torch.autograd.grad`` itself). An ``up`` of another shape or dtype goes to it as given."""
    if up.shape != y.shape or up.dtype != y.dtype or not y.dtype.is_floating_point:
        return torch.autograd.grad(y, inputs, up, retain_graph=retain_graph, allow_unused=allow_unused)
    return torch.autograd.grad((y * up).sum(), inputs, retain_graph=retain_graph, allow_unused=allow_unused)


def forward_backward(what: str, fn: Callable, x: torch.Tensor, args: tuple, kwargs: dict,
                     upstream_seed: int, entry: Activation, *, grads: bool = True, student: bool = True):
    """Run ``fn(x, *args, **kwargs)`` with gradients w.r.t. x and tensor args; returns (y, grads).
    ``student=False``: torch's reference, computed here and never taped."""
    call = student_call if student else _reference_call
    x = x.detach().clone().requires_grad_(grads and x.is_floating_point())
    args = tuple(a.detach().clone().requires_grad_(grads) if isinstance(a, torch.Tensor) else a for a in args)
    y = call(what, fn, x, *args, **kwargs)
    if not isinstance(y, torch.Tensor):
        raise CheckFailure(f"{what}: returned {type_name(y)}, torch returns a Tensor")
    if not grads or y.numel() == 0:
        return y, x, ()
    inputs = (x,) + tuple(a for a in args if isinstance(a, torch.Tensor))
    if not y.requires_grad:
        raise CheckFailure(f"{what}: the output does not require grad: is it detached from the input?")
    up = upstream_for(entry, y, upstream_seed)
    g = call(f"{what} backward", torch.autograd.grad if student else torch_vjp, y, inputs, up, allow_unused=True)
    for i, gi in enumerate(g):
        if gi is None:
            name = "input" if i == 0 else entry.weight_name
            raise CheckFailure(f"{what}: the gradient w.r.t. {name} is None: is the output connected to it?")
    return y, x, g


# ---------------------------------------------------------------------------------- torch's side, once

# torch's answer for given inputs never changes within a process: the notebook's check() asks for the
# same references at every call, and the parent judges every submission against the same ones
_REFERENCES: dict[tuple, object] = {}
_MAX_REFERENCES = 8192


def _key(part: object) -> object:
    """A hashable key that is equal only for equal inputs (tensors by dtype, shape, device and bytes)."""
    if isinstance(part, torch.Tensor):
        t = part.detach()
        raw = t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        return ("tensor", t.dtype, tuple(t.shape), str(t.device), raw)
    if isinstance(part, (tuple, list)):
        return (type(part).__name__, tuple(_key(p) for p in part))
    if isinstance(part, dict):
        return ("dict", tuple((k, _key(v)) for k, v in part.items()))
    return (type(part).__name__, repr(part))


def _remember(key: tuple, compute: Callable[[], object]) -> object:
    # threads judge side by side (batch, --jobs): never look the value up again after storing it,
    # another thread may have emptied the cache in between
    value = _REFERENCES.get(key, _ABSENT)
    if value is _ABSENT:
        value = compute()
        if len(_REFERENCES) >= _MAX_REFERENCES:
            _REFERENCES.clear()
        _REFERENCES[key] = value
    return value


_ABSENT = object()
_exported: tuple[int, bytes] = (-1, b"")


def export_references() -> bytes:
    """torch's references computed in this process so far, serialised for a worker to start with
    (grader/run/worker_main.py): every student's checks ask for the same ones. Serialised again only
    when there are more."""
    global _exported
    snapshot = _REFERENCES.copy()  # other threads add to it while they judge
    if _exported[0] != len(snapshot):
        buffer = io.BytesIO()
        torch.save(list(snapshot.items()), buffer)
        _exported = (len(snapshot), buffer.getvalue())
    return _exported[1]


def import_references(data: bytes) -> None:
    """Start with the references :func:`export_references` wrote (only tensors and plain data are
    read: ``weights_only``). They only spare a worker the computing: the verdicts that count are
    the grader's own, against the references it computes itself."""
    for item in torch.load(io.BytesIO(data), weights_only=True):
        if isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], tuple):
            if len(_REFERENCES) < _MAX_REFERENCES:
                _REFERENCES[item[0]] = item[1]


def torch_forward(entry: Activation, x: torch.Tensor, args: tuple, kwargs: dict) -> torch.Tensor:
    """torch's ``f(x, *args, **kwargs)``, computed once per distinct input."""
    def compute() -> torch.Tensor:
        return torch_impl(entry).functional()(x.clone(), *args, **kwargs).detach()
    return _remember(("forward", entry.name, _key(x), _key(args), _key(kwargs)), compute)


def torch_forward_backward(entry: Activation, x: torch.Tensor, args: tuple, kwargs: dict,
                           upstream_seed: int) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """:func:`forward_backward` of torch itself (detached results), computed once per distinct input."""
    def compute() -> tuple:
        y, xr, g = forward_backward("torch", torch_impl(entry).functional(), x, args, kwargs, upstream_seed,
                                    entry, student=False)
        return y.detach(), xr.detach(), tuple(gi.detach() for gi in g)
    return _remember(("forward-backward", entry.name, _key(x), _key(args), _key(kwargs), upstream_seed), compute)


@contextlib.contextmanager
def about(case: dict, dtype: torch.dtype, form: str = "functional") -> Iterator[None]:
    """A failure inside says which parameter set, dtype and form it was testing (feedback plots them)."""
    try:
        yield
    except CheckFailure as exc:
        if exc.case is None:
            exc.case, exc.dtype, exc.form = dict(case), dtype, form
        raise


@dataclass
class KinkRule:
    """At a kink any value between the one-sided derivatives is a valid (Clarke) subgradient."""

    mask: torch.Tensor
    lo: torch.Tensor
    hi: torch.Tensor
    torch_value: torch.Tensor


def _one_sided(entry: Activation, case: dict, k: float) -> tuple[float, float]:
    return _remember(("one-sided", entry.name, _key(case), k), lambda: _one_sided_now(entry, case, k))


def _one_sided_now(entry: Activation, case: dict, k: float) -> tuple[float, float]:
    ref = torch_impl(entry).functional()
    delta = 1e-7 * max(1.0, abs(k))
    out = []
    for p in (k - delta, k + delta):
        x = entry.elementwise_tensor(case, [p], torch.float64).requires_grad_()
        args, kwargs = entry.functional_arguments(case, x)
        (g,) = torch.autograd.grad(ref(x, *args, **kwargs).sum(), x)
        out.append(g.reshape(-1)[0].item())
    return out[0], out[1]


def kink_rule(entry: Activation, case: dict, x: torch.Tensor, torch_grad: torch.Tensor) -> KinkRule | None:
    kinks = sorted(set(entry.kinks(entry.resolve(case)))) if entry.elementwise else []
    if not kinks:
        return None
    xd = x.detach().cpu().double()
    mask = torch.zeros_like(xd, dtype=torch.bool)
    lo, hi = torch.zeros_like(xd), torch.zeros_like(xd)
    for k in kinks:
        at = xd == float(torch.tensor(k, dtype=x.dtype))
        if bool(at.any()):
            left, right = _one_sided(entry, case, k)
            mask |= at
            lo = torch.where(at, min(left, right), lo)
            hi = torch.where(at, max(left, right), hi)
    if not bool(mask.any()):
        return None
    return KinkRule(mask, lo, hi, torch_grad.detach().cpu().double())


def check_kinks_subgradient(g: torch.Tensor, rule: KinkRule, what: str, where: Locate,
                            entry: Activation, case: dict) -> Notes:
    notes = []
    gd = g.detach().cpu().double()
    tol = 1e-3 * (1 + rule.hi.abs())
    ok = ((gd >= rule.lo - tol) & (gd <= rule.hi + tol)) | ((gd - rule.torch_value).abs() <= tol)
    bad = rule.mask & ~ok
    if bool(bad.any()):
        i = tuple(int(v) for v in bad.nonzero()[0])
        raise CheckFailure(
            f"{what}: grad is {fmt(gd[i].item())} {where(i)}, a kink: any value in "
            f"[{fmt(rule.lo[i].item())}, {fmt(rule.hi[i].item())}] is accepted (torch gives {fmt(rule.torch_value[i].item())})",
            failing_inputs(where, bad), "grad")
    differs = rule.mask & ((gd - rule.torch_value).abs() > tol)
    if bool(differs.any()):
        i = tuple(int(v) for v in differs.nonzero()[0])
        notes.append(
            f"{what}: grad {fmt(gd[i].item())} {where(i)} is a valid subgradient, but torch's convention "
            f"is {fmt(rule.torch_value[i].item())}")
    return notes


def compare_grads(student: tuple, reference: tuple, x: torch.Tensor, what: str, where: Locate,
                  entry: Activation, case: dict, skip: torch.Tensor | None = None,
                  truth: tuple | None = None) -> Notes:
    """Gradients w.r.t. input (kink-aware) and tensor arguments; half precision against ``truth``."""
    notes: Notes = []
    for i, (gs, gr) in enumerate(zip(student, reference)):
        label = what if i == 0 else f"{what} ({entry.weight_name})"
        check_tensor(gs, gr, f"{label} grad")
        rule = kink_rule(entry, case, x, gr) if i == 0 else None
        local_skip = skip if i == 0 else None
        if rule is not None:
            notes += check_kinks_subgradient(gs, rule, label, where, entry, case)
            local_skip = rule.mask if local_skip is None else (local_skip | rule.mask)
        loc = where if i == 0 else locate_index(gr)
        if truth is not None:
            assert_half_close(gs, gr, truth[i], label, loc, kind="grad", skip=local_skip)
        else:
            assert_close(gs, gr, label, loc, kind="grad", skip=local_skip)
    return notes
