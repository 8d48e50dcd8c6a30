"""Draw :class:`~grader.feedback.curves.Curves` as a PNG: f and f' of the student against torch's, the failing
inputs marked. matplotlib's object API with the Agg canvas, so a notebook's own backend and pyplot
state are left alone; without matplotlib there is simply no picture."""
from __future__ import annotations

import importlib.util
import io
import math
from typing import TYPE_CHECKING

from grader.checks.compare import fmt
from grader.feedback.curves import Curves, describe_inputs

if TYPE_CHECKING:  # matplotlib is optional
    from matplotlib.figure import Figure

TORCH, STUDENT, FAIL = "#333333", "#d55e00", "#c00000"


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


# a symmetric log axis whose linear part is as wide on screen, per unit, as the log part's first
# decade at its start: the mapping is then smooth (C1) at ±linthresh, so a smooth curve has no corner
# there (matplotlib's default, linscale 1, changes the slope there by a factor of 2.6)
LINSCALE = (1 - 1 / 10) / math.log(10)


def png(c: Curves) -> bytes | None:
    """The picture of one failure, or None without matplotlib."""
    fig = figure(c)
    if fig is None:
        return None
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def figure(c: Curves) -> Figure | None:
    """The matplotlib Figure of :func:`png`, or None without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    sides = [("f(x)", c.torch_y, c.student_y, "value"), ("f'(x)", c.torch_g, c.student_g, "grad")]
    # a difference too small to see (half-precision rounding, a rounded constant): draw it too
    failing = sides[0] if c.kind == "value" else sides[1]
    rows = 2 if _invisible(failing[1], failing[2]) else 1
    fig = Figure(figsize=(10, 3.6 * rows + 0.4), dpi=90)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.13 / rows, top=1 - 0.16 / rows, wspace=0.25,
                        hspace=0.5)
    panels = fig.subplots(rows, 2, squeeze=False)
    for ax, (name, theirs, mine, kind) in zip(panels[0], sides):
        _panel(ax, c, name, theirs, mine, emphasised=(kind == c.kind))
    for ax in panels[0]:
        ax.legend(loc="best", fontsize=8)
    if rows == 2:
        for ax, (name, theirs, mine, kind) in zip(panels[1], sides):
            _difference(ax, c, name, theirs, mine, emphasised=(kind == c.kind))
    fig.suptitle(f"{c.activation} {c.check}: {c.title}, fails at x = {describe_inputs(c.inputs, 3)}", fontsize=10)
    return fig


def _invisible(theirs: list[float] | None, mine: list[float] | None) -> bool:
    if not theirs or not mine:
        return False
    pairs = [(t, m) for t, m in zip(theirs, mine) if math.isfinite(t) and math.isfinite(m)]
    if len(pairs) < len(theirs) or not pairs:
        return False
    span = max(t for t, _ in pairs) - min(t for t, _ in pairs) or 1.0
    return max(abs(m - t) for t, m in pairs) < 0.01 * span


def _difference(ax, c: Curves, name: str, theirs: list[float] | None, mine: list[float] | None,
                emphasised: bool) -> None:
    """Half precision: yours and torch's error against the float64 truth; otherwise yours − torch."""
    exact = c.exact_y if name == "f(x)" else c.exact_g
    base = exact if exact else theirs
    if theirs and mine and base:
        if exact:
            ax.plot(c.x, _minus(theirs, exact), ".", color=TORCH, ms=3, label="torch − exact")
        ax.plot(c.x, _minus(mine, base), ".", color=STUDENT, ms=3, label="yours − exact" if exact else "yours − torch")
        ax.legend(loc="best", fontsize=8)
    ax.axhline(0, color=TORCH, lw=0.8)
    for v in _marked(c):
        ax.axvline(v, color=FAIL, lw=0.9, ls=":")
    if c.log_x:
        _symlog_x(ax, c)
    ax.set_xlabel("x")
    ax.set_ylabel("error" if exact else "difference")
    what = "values" if name == "f(x)" else "derivative"
    ax.set_title(f"{what}: the {'error' if exact else 'difference'}, too small to see above"
                 + (" (failing)" if emphasised else ""), fontsize=9)
    ax.grid(alpha=0.3)


def _minus(a: list[float], b: list[float]) -> list[float]:
    return [u - v if math.isfinite(u - v) else math.nan for u, v in zip(a, b)]


def _symlog_x(ax, c: Curves) -> None:
    """Symmetric log x axis with a readable number of ticks (every other decade beyond 10^3)."""
    from matplotlib.ticker import FixedLocator

    ax.set_xscale("symlog", linthresh=c.linthresh, linscale=LINSCALE)
    top = max(abs(v) for v in c.x)
    decades = int(math.log10(top)) if top >= 1 else 0
    step = 2 if decades > 3 else 1
    first = math.ceil(math.log10(c.linthresh))
    ticks = [10.0 ** k for k in range(first, decades + 1, step)]
    ticks = ([c.linthresh] if 3 * c.linthresh <= 10.0 ** first else []) + ticks  # the linear part's end, unless crowded
    ax.xaxis.set_major_locator(FixedLocator(sorted([-t for t in ticks] + [0.0] + ticks)))
    ax.xaxis.set_minor_locator(FixedLocator([]))


def _marked(c: Curves) -> list[float]:
    """The failing inputs drawn: the finite ones, at most 8 (the message names the first)."""
    return [v for v in c.inputs if math.isfinite(v)][:8]


def _finite(values: list[float] | None) -> list[float]:
    return [v if math.isfinite(v) else math.nan for v in values or []]


def _panel(ax, c: Curves, name: str, theirs: list[float] | None, mine: list[float] | None, emphasised: bool) -> None:
    if theirs:
        ax.plot(c.x, _finite(theirs), color=TORCH, lw=2.2, label="torch")
    if mine:
        ax.plot(c.x, _finite(mine), color=STUDENT, lw=1.4, ls="--", label="yours")
    elif c.student_error:
        ax.text(0.5, 0.5, f"yours: {c.student_error}"[:90], transform=ax.transAxes, ha="center", va="center",
                fontsize=8, color=STUDENT, wrap=True)
    finite = [abs(v) for v in _finite(theirs) + _finite(mine) if not math.isnan(v)]
    if c.log_x:
        _symlog_x(ax, c)
    if finite and max(finite) > 100:
        ax.set_yscale("symlog", linthresh=1, linscale=LINSCALE)
    low, high = ax.get_ylim()
    top = high - 0.04 * (high - low)
    # where yours is nan or inf and torch's is not: a cross at the top, since there is nothing to draw
    if mine and theirs:
        bad = [x for x, m, t in zip(c.x, mine, theirs) if not math.isfinite(m) and math.isfinite(t)]
        if bad:
            ax.plot(bad, [top] * len(bad), "x", color=STUDENT, ms=5, label="yours is nan/inf", clip_on=False)
    for n, v in enumerate(_marked(c)):
        ax.axvline(v, color=FAIL, lw=0.9, ls=":")
        if emphasised and mine and v in c.x:
            m = mine[c.x.index(v)]
            if math.isfinite(m):
                ax.plot([v], [m], "o", mfc="none", mec=FAIL, ms=9, mew=1.6)
            elif n == 0:  # the input the message names
                ax.annotate(f"{fmt(m)} at x = {fmt(v)}", (v, top), color=FAIL, fontsize=9, ha="center", va="top",
                            xytext=(0, -9), textcoords="offset points")
    ax.set_ylim(low, high)
    ax.set_xlabel("x (symmetric log scale)" if c.log_x else "x")
    ax.set_ylabel(name)
    ax.set_title(("values" if name == "f(x)" else "derivative") + (" (failing)" if emphasised else ""), fontsize=9)
    ax.grid(alpha=0.3)
