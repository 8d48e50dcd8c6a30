"""What an activation costs: the measurements that the chapter "What an activation costs"
(``book/12_cost.ipynb``), the guidelines' cost column and ``python bench/activation_cost.py`` share.

Timings, with ``torch.utils.benchmark`` (median and quartiles over timed blocks, threads fixed), of
torch's own op, the from-scratch solution read from ``solutions/`` and ``torch.compile`` of that
solution, forward and forward+backward, next to copy kernels of the same size measured in the same
run (the memory floor). And exact counts that do not depend on timing: the ops an implementation
dispatches, the full-size tensors it allocates, the bytes autograd saves for backward.

Timings are kept in a JSON file keyed by the configuration, the device, the machine and torch (see
:func:`results`), so that the two chapters that show them read one measurement instead of timing
twice and disagreeing, and a rebuild re-reads it instead of waiting for it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import hashlib
import json
import math
import os
import platform
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch.utils import benchmark
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from grader.catalog import ACTIVATIONS, Activation, chapter_stem
from grader.submission.loader import load
from grader.checks.recorder import Recorder

ROOT = Path(__file__).resolve().parent.parent
DEVICE_ENV = "ACTIVATIONS_DEVICE"          # cpu, cuda or auto (default: CUDA when present)
CONFIG_ENV = "ACTIVATIONS_COST_CONFIG"     # the configuration a chapter runs (default: book)
CACHE_ENV = "ACTIVATIONS_COST_CACHE"       # where measurements are kept (default: _build/cost)

PASSES = ("forward", "forward+backward")
IMPLS = ("native", "scratch", "compiled")
# The floor of an elementwise op, the traffic it cannot avoid, timed into tensors that already exist so
# that the allocator is not part of it: forward, read the input and write an output (`copy`, a copy_
# into an existing tensor, which also gives the bandwidth); forward+backward, that plus reading the
# incoming gradient and one saved tensor and writing a gradient (`copy+add`, an add with out=). The same
# traffic into new tensors, as an out-of-place op allocates its output (`clone`, `clone+add`), is timed
# beside them: its excess over the floor is what allocating costs, reported apart.
FLOORS = ("copy", "copy+add", "clone", "clone+add")
FLOOR_OF = {"forward": "copy", "forward+backward": "copy+add"}
ALLOCATING = {"copy": "clone", "copy+add": "clone+add"}
# The primitives from-scratch activations are made of, timed alone at the largest size: x is the
# input, y a positive tensor of the same size, m the boolean mask x > 0 (random, as the input's signs
# are), t a mask of the same size that is true everywhere.
PRIMITIVES: dict[str, Callable] = {
    "x * y": lambda x, y, m, t: x * y,
    "x / y": lambda x, y, m, t: x / y,
    "clamp_min(x, 0)": lambda x, y, m, t: x.clamp_min(0),
    "x > 0": lambda x, y, m, t: x > 0,
    "where(m, x, y)": lambda x, y, m, t: torch.where(m, x, y),
    "where(t, x, y)": lambda x, y, m, t: torch.where(t, x, y),
    "exp(x)": lambda x, y, m, t: torch.exp(x),
    "log1p(y)": lambda x, y, m, t: torch.log1p(y),
    "tanh(x)": lambda x, y, m, t: torch.tanh(x),
    "erf(x)": lambda x, y, m, t: torch.erf(x),
}
# Timed through torch.compile too, at the largest size when anything is compiled: the comparison whose
# boolean result a compiled ReLU's forward stores for its backward.
COMPILED_PRIMITIVES: dict[str, Callable] = {"x > 0": lambda x: x > 0}
# A claim about where an op's time goes needs the whole measured interval on one side:
# at the memory floor when even its slowest quartile over the floor's fastest is within AT_FLOOR;
# compute-bound when even its fastest quartile takes COMPUTE_BOUND times the floor's slowest, i.e.
# more than half its time is not explained by moving its bytes. Anything else: no claim.
AT_FLOOR = 1.5
COMPUTE_BOUND = 2.0


@dataclass(frozen=True)
class Config:
    """What a run measures. At the largest size: every activation in ``every_dtypes``, torch's op
    and the from-scratch one. At every size: the ``sweep`` activations in every dtype. Also through
    torch.compile: the ``compiled`` activations in ``compiled_dtypes``. None: all of them."""

    name: str
    sizes: tuple[int, ...]
    sweep: tuple[str, ...] | None
    compiled: tuple[str, ...] | None
    dtypes: tuple[str, ...] = ("float32", "bfloat16")
    every_dtypes: tuple[str, ...] | None = None
    compiled_dtypes: tuple[str, ...] | None = None
    gpu_sizes: tuple[int, ...] = ()        # added on a GPU, where 10^7 elements take microseconds
    # Larger sizes at which only the floors and torch's ReLU are timed: what a large output costs to
    # allocate, without the from-scratch forms' seconds per call.
    floor_sizes: tuple[int, ...] = ()
    threads: int = 1
    rounds: int = 7                        # timed blocks per statement, one per round
    block_time: float = 0.005              # seconds a block lasts at least (one call when a call is longer)

    def sizes_on(self, device: str) -> tuple[int, ...]:
        """The sizes every measured activation is timed at on ``device``."""
        return self.sizes + (self.gpu_sizes if device == "cuda" else ())

    def floor_sizes_on(self, device: str) -> tuple[int, ...]:
        return tuple(n for n in self.floor_sizes if n > self.largest_on(device))

    def largest_on(self, device: str) -> int:
        return max(self.sizes_on(device))

    def describe(self, device: str) -> str:
        """One sentence of Markdown: what a run of this configuration measures on ``device``."""
        every = "every elementwise activation"
        sizes = ", ".join(f"${_power(n)}$" for n in self.sizes_on(device))
        dtypes = " and ".join(self.dtypes)
        if self.sweep is None:
            what = f"{every} at {sizes} elements in {dtypes}, torch's op and the from-scratch one"
        else:
            what = (f"{every} at ${_power(self.largest_on(device))}$ elements in "
                    f"{' and '.join(self.every_dtypes or self.dtypes)}, torch's op and the from-scratch one; "
                    f"{', '.join(self.sweep)} also at {sizes} elements in {dtypes}")
        if self.compiled is None and self.compiled_dtypes is None:
            what += "; all of them also through `torch.compile`"
        else:
            what += (f"; {_names(self.compiled, every)} also through `torch.compile`, in "
                     f"{' and '.join(self.compiled_dtypes or self.dtypes)}")
        what += "; forward and forward+backward; "
        what += "".join(f"the copies and torch's ReLU also at ${_power(n)}$ elements; "
                        for n in self.floor_sizes_on(device))
        return f"`{self.name}`: {what}{self.threads} thread{'s' if self.threads > 1 else ''}"


def _power(n: int) -> str:
    return f"10^{{{round(math.log10(n))}}}"


def _names(names: tuple[str, ...] | None, every: str) -> str:
    return every if names is None else ", ".join(names)


# The chapter's configuration, so that the book builds in minutes (about a minute for this page on
# two cores): torch.compile costs seconds per activation, dtype and pass, and the from-scratch forms
# tens of milliseconds per call at 10^6 elements. The size sweep and compilation cover four
# activations that span the range: a comparison (ReLU), erf (GELU), an exponential (SiLU), the longest
# chain of primitives (Mish).
FOUR = ("ReLU", "GELU", "SiLU", "Mish")
BOOK = Config("book", sizes=(10**3, 10**4, 10**5, 10**6), sweep=FOUR, compiled=FOUR,
              every_dtypes=("float32",), compiled_dtypes=("float32",), gpu_sizes=(10**7, 10**8),
              floor_sizes=(10**7,))
# python bench/activation_cost.py: everything, from 10^3 to 10^7 elements (10^8 on a GPU).
FULL = Config("full", sizes=(10**3, 10**4, 10**5, 10**6, 10**7), sweep=None, compiled=None,
              gpu_sizes=(10**8,), rounds=15, block_time=0.05)
# The tests: the same code path in seconds.
TINY = Config("tiny", sizes=(10**3, 10**4), sweep=FOUR, compiled=("ReLU",), every_dtypes=("float32",),
              compiled_dtypes=("float32",), rounds=3, block_time=0.001)
CONFIGS = {c.name: c for c in (BOOK, FULL, TINY)}


def config_from_env(default: Config = BOOK) -> Config:
    name = os.environ.get(CONFIG_ENV)
    if not name:
        return default
    if name not in CONFIGS:
        raise ValueError(f"{CONFIG_ENV}={name!r}: expected one of {', '.join(CONFIGS)}")
    return CONFIGS[name]


def resolve_device(requested: str | None = None) -> str:
    """``cpu`` or ``cuda``: ``requested``, else ``$ACTIVATIONS_DEVICE``, else CUDA when present."""
    want = (requested or os.environ.get(DEVICE_ENV) or "auto").lower()
    if want == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if want not in ("cpu", "cuda"):
        raise ValueError(f"device {want!r}: expected cpu, cuda or auto")
    if want == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda: CUDA is not available on this machine")
    return want


def elementwise() -> list[Activation]:
    """torch.nn's elementwise activations: those with a native op to time against (the design
    chapter's have a float64 reference, not a kernel)."""
    return [a for a in ACTIVATIONS if a.elementwise and a.in_torch]


def machine(device: str) -> dict:
    """What the timings depend on besides the code: processor, cores, accelerator, torch."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "gpu": torch.cuda.get_device_name() if device == "cuda" and torch.cuda.is_available() else None}


# ----------------------------------------------------------------------------- implementations
@lru_cache(maxsize=None)
def solutions(chapter: str) -> dict:
    """The namespace of a chapter's reference solutions, executed (as the book's chapters load them)."""
    sub = load(ROOT / "solutions" / f"{chapter_stem(chapter)}.ipynb")
    if sub.notes:
        raise RuntimeError(f"solutions of {chapter}: {sub.notes}")
    return sub.namespace


def forms(entry: Activation, x: torch.Tensor) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """torch's op, the from-scratch functional and its ``<Module>Function``, each a function of the
    input alone with the catalogue's first case (torch's defaults where it has them)."""
    case = entry.cases[0]
    args, kwargs = entry.functional_arguments(case, x)   # PReLU's weight made once, not timed
    fn_args = entry.function_arguments(case, x)
    native, ns = entry.torch_functional(), solutions(entry.chapter)
    scratch, function = ns[entry.functional], ns[entry.function_name]
    return {"native": lambda t: native(t, *args, **kwargs),
            "scratch": lambda t: scratch(t, *args, **kwargs),
            "function": lambda t: function.apply(t, *fn_args)}


def compiled(entry: Activation, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """torch.compile of the from-scratch functional; dynamic sizes, so one compile serves every size."""
    args, kwargs = entry.functional_arguments(entry.cases[0], x)
    fn = torch.compile(solutions(entry.chapter)[entry.functional], dynamic=True)
    return lambda t: fn(t, *args, **kwargs)


# ----------------------------------------------------------------------------- timing
def _rounds(statements: dict, config: Config) -> dict:
    """Times per call of every statement, ``config.rounds`` blocks each, in interleaved rounds: each
    round times one block of every statement in turn. A change of load on the machine that lasts a
    whole round moves every statement of that round, and the ratio of two statements taken round by
    round (:func:`ratio`) cancels it; one that starts or ends inside a round does not cancel, and
    shows in the spread of those ratios.

    Each statement gets its own ``torch.utils.benchmark.Timer``; a block is ``number`` calls in the
    Timer's timing loop, ``number`` chosen after a warm-up call so that the block lasts at least
    ``config.block_time`` (the timer's own overhead then does not count)."""
    timers = {k: benchmark.Timer("stmt()", globals={"stmt": f}, num_threads=config.threads)
              for k, f in statements.items()}
    number = {}
    with benchmark.utils.common.set_torch_threads(config.threads):
        for k, timer in timers.items():
            timer._timeit(1)                      # warm-up: first-call costs are not the op's
            one = timer._timeit(1)
            number[k] = max(1, math.ceil(config.block_time / max(one, 1e-9)))
        times: dict = {k: [] for k in timers}
        for _ in range(config.rounds):
            for k, timer in timers.items():
                times[k].append(timer._timeit(number[k]) / number[k])
    return times


def _summary(times: list[float]) -> dict:
    """Median and quartiles of the time per call over the rounds, and the rounds themselves."""
    q1, median, q3 = statistics.quantiles(times, n=4, method="inclusive") if len(times) > 1 else times * 3
    return {"median": median, "q1": q1, "q3": q3, "rounds": times}


def _statement(f: Callable, x: torch.Tensor, grad: torch.Tensor, pass_: str) -> Callable[[], object]:
    if pass_ == "forward":
        return lambda: f(x)
    leaf = x.detach().requires_grad_()
    # autograd.grad, not backward(): no accumulation into .grad, which would add a pass
    return lambda: torch.autograd.grad(f(leaf), leaf, grad)


def _floor(kind: str, x: torch.Tensor, grad: torch.Tensor) -> Callable[[], object]:
    out, grad_out = torch.empty_like(x), torch.empty_like(x)
    if kind == "copy":
        return lambda: out.copy_(x)
    if kind == "copy+add":
        return lambda: torch.add(grad, out.copy_(x), out=grad_out)
    if kind == "clone":
        return lambda: x.clone()
    return lambda: torch.add(grad, x.clone())


def measure(config: Config, device: str, progress: Callable[[str], None] | None = None) -> dict:
    """Every timing of ``config`` on ``device``, plus what torch.compile generated."""
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _measure(config, device, progress or (lambda _: None))
    finally:
        torch.set_num_threads(threads)


def _measure(config: Config, device: str, progress: Callable[[str], None]) -> dict:
    entries = elementwise()
    every = [e.name for e in entries]
    swept = set(every if config.sweep is None else config.sweep)
    to_compile = set(every if config.compiled is None else config.compiled)
    unknown = (swept | to_compile) - set(every)
    if unknown:
        raise ValueError(f"configuration {config.name}: not elementwise activations: {sorted(unknown)}")
    gen = torch.Generator(device=device).manual_seed(0)
    timings: list[dict] = []
    compile_seconds: dict[str, float] = {}
    kernels: dict[str, dict[str, int]] = {}
    code: dict[str, str] = {}
    profile: dict[str, list] = {}
    compiled_fns: dict[tuple[str, str], Callable] = {}
    compile_startup: float | None = None
    top = config.largest_on(device)
    floor_only = config.floor_sizes_on(device)
    for dtype_name in config.dtypes:
        dtype = getattr(torch, dtype_name)
        for n in config.sizes_on(device) + floor_only:
            x = torch.randn(n, generator=gen, device=device).mul_(3).to(dtype)   # both sides of the kinks
            grad = torch.ones_like(x)
            progress(f"{dtype_name}, {n:.0e} elements")
            # Everything timed at this size and dtype, timed together in rounds: (activation, impl, pass)
            group: dict[tuple, Callable[[], object]] = {(kind, "floor", None): _floor(kind, x, grad) for kind in FLOORS}
            for entry in entries:
                everyone = n == top and dtype_name in (config.every_dtypes or config.dtypes)
                if n in floor_only:
                    if entry.name != "ReLU":
                        continue
                elif entry.name not in swept and not everyone:
                    continue
                impls = forms(entry, x)
                del impls["function"]
                if n in floor_only:
                    impls = {"native": impls["native"]}
                if entry.name in to_compile and dtype_name in (config.compiled_dtypes or config.dtypes) \
                        and n not in floor_only:
                    key = (entry.name, dtype_name)
                    if compile_startup is None:
                        # Inductor's one-time start-up (imports, toolchain, caches), paid by whichever
                        # function is compiled first: timed on a trivial one, so that it is not
                        # counted as the first activation's compile time
                        start = _now(device)
                        torch.compile(lambda t: t + 1, dynamic=True)(x)
                        compile_startup = _now(device) - start
                    if key not in compiled_fns:
                        compiled_fns[key] = compiled(entry, x)
                    impls["compiled"] = compiled_fns[key]
                for impl, f in impls.items():
                    for pass_ in PASSES:
                        stmt = group[(entry.name, impl, pass_)] = _statement(f, x, grad, pass_)
                        if impl == "compiled":
                            tag = f"{entry.name}/{dtype_name}/{pass_}"
                            if tag not in compile_seconds:   # the first call compiles: timed apart
                                start = _now(device)
                                sources = _generated_code(stmt)
                                compile_seconds[tag] = _now(device) - start
                                kernels.setdefault(entry.name, {})[f"{dtype_name} {pass_}"] = \
                                    sum(_count_kernels(s) for s in sources)
                                code.setdefault(f"{entry.name} {pass_}", "\n\n".join(sources))
                            else:
                                stmt()   # a new size may need a new specialisation: not in the timing
                if n == top and dtype_name == config.dtypes[0] and entry.name in swept:
                    profile[entry.name] = _profile(impls["scratch"], x, device)
            if n == top and dtype_name == config.dtypes[0]:
                y, m, t = x.abs() + 1, x > 0, torch.ones_like(x, dtype=torch.bool)
                for name, op in PRIMITIVES.items():
                    group[(name, "primitive", None)] = functools.partial(op, x, y, m, t)
                if compiled_fns:
                    for name, op in COMPILED_PRIMITIVES.items():
                        fn = functools.partial(torch.compile(op, dynamic=True), x)
                        fn()   # compiled now, not in the timing
                        group[(name, "compiled primitive", None)] = fn
            for (activation, impl, pass_), times in _rounds(group, config).items():
                timings.append(dict(activation=activation, impl=impl, dtype=dtype_name, size=n,
                                    **{"pass": pass_}, **_summary(times)))
    return {"timings": timings, "compile_seconds": compile_seconds, "compile_startup": compile_startup,
            "kernels": kernels, "code": code, "profile": profile}


class _OpTimes(TorchDispatchMode):
    """Wall time spent in each ATen op (synchronised on a GPU), by op name."""

    def __init__(self, device: str) -> None:
        super().__init__()
        self.sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        self.seconds: dict[str, float] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.sync()
        start = time.perf_counter()
        out = func(*args, **(kwargs or {}))
        self.sync()
        name = func.overloadpacket.__name__
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
        return out


PROFILE_CALLS = 3


def _profile(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, device: str) -> list[tuple[str, float]]:
    """Where calls of ``f`` spend their time, by ATen op: (op, seconds), dearest first."""
    f(x)
    with _OpTimes(device) as ops:
        for _ in range(PROFILE_CALLS):
            f(x)
    return sorted(ops.seconds.items(), key=lambda r: -r[1])


def _now(device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def _generated_code(stmt: Callable[[], object]) -> list[str]:
    """Call ``stmt`` and return the modules Inductor generated for it (also when read from its cache)."""
    from torch._inductor.graph import GraphLowering

    sources: list[str] = []
    original = GraphLowering.save_output_code
    GraphLowering.save_output_code = staticmethod(sources.append)
    try:
        stmt()
    finally:
        GraphLowering.save_output_code = original
    return sources


_KERNEL = re.compile(r"async_compile\.(?:cpp_pybinding|cpp|triton)\(")


def _count_kernels(source: str) -> int:
    """Kernels defined in one module Inductor generated (C++ on a CPU, Triton on a GPU)."""
    return len(_KERNEL.findall(source))


def kernel_lines(source: str) -> list[str]:
    """The arithmetic of the generated kernels: one line per value computed, loaded or stored."""
    wanted = re.compile(r"^\s*(auto tmp\d+ =|tmp\d+ =|tmp\d+\.store\(|tl\.store\(|.*= tl\.load\()")
    return [line.strip() for line in source.splitlines() if wanted.match(line)]


# ----------------------------------------------------------------------------- the cache
def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or ROOT / "_build" / "cost")


# Bumped when what a measurement file holds changes, so that an older file is measured again.
# 2: floors into existing tensors (copy, copy+add), where on a uniform mask, a compiled comparison,
# Inductor's start-up apart.
FORMAT = 2


def _fingerprint(config: Config, device: str) -> dict:
    """What a measurement is kept under. Not the code measured: the book's execution cache re-runs a
    chapter only when its notebook changes, so a key that followed the solutions would let the cost
    chapter re-measure while the guidelines kept showing the old numbers. ``make clean`` measures
    everything again."""
    return {"config": dataclasses.asdict(config), "device": device, "machine": machine(device), "format": FORMAT}


def cache_path(config: Config, device: str) -> Path:
    """The file of the measurement ``config`` on ``device`` would be kept in, on this machine."""
    key = hashlib.sha256(json.dumps(_fingerprint(config, device), sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / f"{config.name}-{device}-{key}.json"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One measurer at a time per file: two chapters executed at once (pytest -n 2) wait for one
    measurement instead of making two on a shared machine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:   # Windows: at worst both measure, and the last atomic write wins
        yield
        return
    with open(path.parent / (path.name.rsplit("-", 1)[0] + ".lock"), "w") as lock:   # one per config and device
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def results(config: Config | None = None, device: str | None = None, fresh: bool = False,
            progress: Callable[[str], None] | None = None) -> dict:
    """The timings of ``config`` on ``device``: read from the cache when this measurement (same
    configuration, device, machine and torch) was made before, else measured now and kept. The cost
    chapter and the guidelines both call this: whichever runs first measures, the other reads the same
    numbers, so the two pages cannot disagree. ``make clean`` (or ``fresh``) measures again; deleting
    only ``_build/cost`` would leave the execution cache's copy of an unchanged page with the old
    numbers."""
    config = config or config_from_env()
    device = resolve_device(device)
    path = cache_path(config, device)
    with _locked(path):
        if path.exists() and not fresh:
            with contextlib.suppress(ValueError, OSError):
                return json.loads(path.read_text())
        out = {"fingerprint": _fingerprint(config, device),
               "measured_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
               **measure(config, device, progress)}
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(out, f)
        os.replace(tmp, path)   # atomic: a reader never sees half a file
        for stale in path.parent.glob(f"{config.name}-{device}-*.json"):   # of older code or settings
            if stale != path:
                stale.unlink(missing_ok=True)
        return out


# ----------------------------------------------------------------------------- reading results
def timing(res: dict, activation: str, impl: str, dtype: str, size: int, pass_: str | None) -> dict | None:
    for t in res["timings"]:
        if (t["activation"], t["impl"], t["dtype"], t["size"], t["pass"]) == (activation, impl, dtype, size, pass_):
            return t
    return None


def floor(res: dict, dtype: str, size: int, pass_: str) -> dict:
    """The floor of ``pass_``: the same traffic into tensors that already exist (no allocation)."""
    return timing(res, FLOOR_OF[pass_], "floor", dtype, size, None)


def allocating_floor(res: dict, dtype: str, size: int, pass_: str) -> dict:
    """The floor's traffic into newly allocated tensors, as an out-of-place op allocates its output."""
    return timing(res, ALLOCATING[FLOOR_OF[pass_]], "floor", dtype, size, None)


def ratio(a: dict | None, b: dict | None) -> tuple[float, float, float] | None:
    """a / b as (low, median, high). Two timings of one round-robin (same size and dtype) are
    compared round by round: the median and quartiles of the per-round ratios. Otherwise low and
    high pair one's fastest quartile with the other's slowest."""
    if a is None or b is None:
        return None
    ra, rb = a.get("rounds"), b.get("rounds")
    if ra and rb and len(ra) == len(rb) and (a["size"], a["dtype"]) == (b["size"], b["dtype"]):
        per_round = [x / y for x, y in zip(ra, rb)]
        if len(per_round) == 1:
            return per_round * 3
        q1, median, q3 = statistics.quantiles(per_round, n=4, method="inclusive")
        return q1, median, q3
    return a["q1"] / b["q3"], a["median"] / b["median"], a["q3"] / b["q1"]


def shown(r: tuple[float, float, float] | None) -> str:
    """A ratio's median, to the precision its spread supports: rounded to the decimal place of the
    leading digit of half its interquartile range (7.3 for 7.26 [6.9, 7.7], 30 for 28 [23, 54]), but
    never to less than one significant digit (4, not 0, for 3.6 [0.55, 46])."""
    if r is None:
        return "–"
    low, median, high = r
    half = (high - low) / 2
    if not half > 0 or not median > 0:
        return f"{median:.2g}"
    place = min(math.floor(math.log10(half)), math.floor(math.log10(median)))
    return f"{round(median, -place):.{max(0, -place)}f}"


def largest(res: dict) -> int:
    """The largest size at which the from-scratch forms were timed: the size of the tables."""
    return max(t["size"] for t in res["timings"] if t["impl"] == "scratch")


def sizes(res: dict) -> list[int]:
    return sorted({t["size"] for t in res["timings"]})


def bandwidth(res: dict, dtype: str, size: int) -> float:
    """Bytes per second of a copy into an existing tensor: it reads and writes every byte once."""
    t = timing(res, "copy", "floor", dtype, size, None)
    return 2 * size * torch.empty((), dtype=getattr(torch, dtype)).element_size() / t["median"]


def where_time_goes(res: dict, activation: str, dtype: str, size: int | None = None) -> str | None:
    """``"memory"``, ``"compute"``, or None when the measured spread does not decide (torch's op,
    forward, against the copy into an existing tensor of the same size)."""
    size = size or largest(res)
    r = ratio(timing(res, activation, "native", dtype, size, "forward"), floor(res, dtype, size, "forward"))
    if r is None:
        return None
    if r[2] <= AT_FLOOR:
        return "memory"
    if r[0] >= COMPUTE_BOUND:
        return "compute"
    return None


def relative_cost(res: dict, dtype: str = "float32", size: int | None = None) -> dict[str, tuple[float, float, float]]:
    """torch's forward time of every activation relative to ReLU's, at ``size`` (default the largest):
    the guidelines' cost column."""
    size = size or largest(res)
    relu = timing(res, "ReLU", "native", dtype, size, "forward")
    return {e.name: ratio(timing(res, e.name, "native", dtype, size, "forward"), relu) for e in elementwise()}


# ----------------------------------------------------------------------------- exact counts
class _Allocations(TorchDispatchMode):
    """Counts the full-size tensors (at least ``numel`` elements) that ops create: new storage, not
    a view of an argument, not written in place."""

    def __init__(self, numel: int) -> None:
        super().__init__()
        self.numel, self.count, self.bytes = numel, 0, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        given = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.numel() >= self.numel and t.untyped_storage().data_ptr() not in given:
                self.count += 1
                self.bytes += t.untyped_storage().nbytes()
        return out


def dispatch(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, backward: bool = False) -> dict:
    """What ``f(x)`` asks of torch: ATen ops dispatched (the grader's recorder) and full-size tensors
    allocated; with ``backward``, those of the backward pass alone."""
    if backward:
        leaf = x.detach().requires_grad_()
        y = f(leaf)
        grad = torch.ones_like(y)   # made outside the recorder: it is the caller's, not the backward's
        run = lambda: torch.autograd.grad(y, leaf, grad)  # noqa: E731
    else:
        run = lambda: f(x)  # noqa: E731
    with Recorder() as rec, _Allocations(x.numel()) as alloc:
        run()
    return {"ops": sum(rec.ops.values()), "by_op": dict(rec.ops), "temporaries": alloc.count, "bytes": alloc.bytes}


def saved(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> dict:
    """What autograd keeps for backward after ``f(x)``, seen by saved_tensors_hooks: the tensors
    packed, and the bytes of their distinct storages (a tensor saved twice, or two views of one
    storage, is kept once), in all and beyond the input and output that exist anyway."""
    packed: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        packed.append(t)
        return t

    leaf = x.detach().requires_grad_()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = f(leaf)
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in packed}
    ours = {leaf.untyped_storage().data_ptr(), y.untyped_storage().data_ptr()}
    return {"tensors": len(packed), "bytes": sum(storages.values()),
            "extra": sum(b for p, b in storages.items() if p not in ours)}
