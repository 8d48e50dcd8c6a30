"""What the book's chapters share: the reference solutions (run, and shown as written), torch's
signatures, the tabs of each activation, and derivative plots.

One source of truth: the code a chapter shows is read from ``solutions/``, the parameters and kinks
from the catalogue (``grader/spec/catalog.py``); nothing is copied by hand.
"""
from __future__ import annotations

import inspect
import json
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

try:
    from myst_nb import glue
except ImportError:  # Colab and plain Jupyter: show the value where the book would glue it into prose
    def glue(name: str, variable: object, display: bool = True) -> None:  # noqa: D103
        _show(name, variable)

from grader.catalog import BY_NAME, Activation, chapter_stem, format_params, quiet_implicit_dim
from grader.authoring.exercises import BEGIN, END
from grader.submission.loader import load

ROOT = Path(__file__).resolve().parent.parent
# bench/ (the measurements the cost chapter and the guidelines share with `python -m bench`) is no
# part of the installed grader: chapters, which run from book/, import it from the repository's root.
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

# Where each activation lives in mlx.nn (the MLX chapter maps them in detail); None: not in mlx.nn.
MLX = {
    "ReLU": "nn.relu / nn.ReLU", "Sigmoid": "nn.sigmoid / nn.Sigmoid", "Tanh": "nn.tanh / nn.Tanh",
    "LeakyReLU": "nn.leaky_relu / nn.LeakyReLU", "PReLU": "nn.prelu / nn.PReLU (slopes on the last axis)",
    "ReLU6": "nn.relu6 / nn.ReLU6",
    "ELU": "nn.elu / nn.ELU", "CELU": "nn.celu / nn.CELU", "SELU": "nn.selu / nn.SELU", "RReLU": None,
    "Threshold": None, "GELU": "nn.gelu, nn.gelu_approx / nn.GELU", "SiLU": "nn.silu / nn.SiLU",
    "Mish": "nn.mish / nn.Mish", "Hardtanh": "nn.hard_tanh / nn.HardTanh", "Hardsigmoid": None,
    "Hardswish": "nn.hardswish / nn.Hardswish", "Softshrink": "nn.softshrink / nn.Softshrink",
    "Hardshrink": "nn.hard_shrink / nn.HardShrink", "Tanhshrink": None,
    "Softplus": "nn.softplus / nn.Softplus", "Softsign": "nn.softsign / nn.Softsign",
    "LogSigmoid": "nn.log_sigmoid / nn.LogSigmoid", "GLU": "nn.glu / nn.GLU (axis, not dim)",
    "Softmax": "nn.softmax (axis) / nn.Softmax (last axis only)",
    "LogSoftmax": "nn.log_softmax (axis) / nn.LogSoftmax (last axis only)",
    "Softmin": "nn.softmin (axis) / nn.Softmin (last axis only)", "Softmax2d": None,
    # the design chapter's, which torch does not have
    "HardswishC1": None, "Swish": None, "SwiGLU": None, "GeGLU": None, "ReGLU": None,
    "SquaredReLU": "nn.relu2 / nn.ReLU2", "Snake": None,
}


def _show(name: str, value: object) -> None:
    display(Markdown(f"`{name}` = {value}") if isinstance(value, (int, float, str)) else value)


def glue_roles(notebook: str | Path) -> dict[str, str]:
    """Every key the prose of ``notebook`` pastes, and how: ``text`` for {glue:text}, ``md`` for {glue:md}."""
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    return {key: role for cell in nb["cells"] if cell["cell_type"] == "markdown"
            for role, key in re.findall(r"\{glue:(text|md)\}`([^`:]+)", "".join(cell["source"]))}


def solution_path(chapter: str) -> Path:
    return ROOT / "solutions" / f"{chapter_stem(chapter)}.ipynb"


@lru_cache(maxsize=None)
def solutions(chapter: str) -> dict:
    """The namespace of a chapter's reference solutions, executed."""
    sub = load(solution_path(chapter))
    if sub.notes:
        raise RuntimeError(f"{solution_path(chapter)}: {sub.notes}")
    return sub.namespace


def solution_source(chapter: str, name: str) -> str:
    """The code cell of the solutions that defines ``name``, without the solution markers."""
    nb = json.loads(solution_path(chapter).read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "code" and (f"\ndef {name}(" in f"\n{src}" or f"\nclass {name}(" in f"\n{src}"):
            return "\n".join(line for line in src.split("\n") if line.strip() not in (BEGIN, END))
    raise KeyError(f"{name} is not defined in {solution_path(chapter).name}")


def torch_form(entry: Activation, case: dict | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """torch's functional form of ``entry`` with the parameters of ``case`` (default: its first, the
    defaults; the softmax family's dim=None is torch's implicit dim, without its warning in the page)."""
    fn, case = entry.torch_functional(), entry.cases[0] if case is None else case

    def f(x: torch.Tensor) -> torch.Tensor:
        args, kwargs = entry.functional_arguments(case, x)
        with quiet_implicit_dim():
            return fn(x, *args, **kwargs)
    return f


def md_table(header: Iterable[str], rows: Iterable[Iterable]) -> Markdown:
    """A Markdown table (rendered as MyST) from a header and rows of already formatted cells."""
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return Markdown("\n".join(lines))


def torch_signatures(entry: Activation) -> tuple[str, str]:
    """``torch.nn.functional.elu(input, alpha=1.0, inplace=False)`` and ``torch.nn.ELU(...)``."""
    functional = f"torch.nn.functional.{entry.functional}({format_params(entry.functional_signature())})" \
        if entry.functional else ""
    init = [(p.name, p.default) for p in inspect.signature(entry.torch_module().__init__).parameters.values()
            if p.name not in ("self", "args", "kwargs")]
    return functional, f"torch.nn.{entry.name}({format_params(init)})"


def reference_signatures(entry: Activation) -> tuple[str, str]:
    """``swish(input, beta)`` and ``Swish(num_parameters=1, ...)``: the course's names for an activation
    torch does not have, read from its reference (grader/spec/references.py)."""
    init = [(p.name, p.default) for p in inspect.signature(entry.torch_module().__init__).parameters.values()
            if p.name not in ("self", "args", "kwargs")]
    return (f"{entry.functional}({format_params(entry.functional_signature())})",
            f"{entry.name}({format_params(init)})")


def tabs(name: str) -> Markdown:
    """A sphinx-design tab set: torch's functional and module, the from-scratch code, MLX. For an
    activation torch does not have: its signatures, the from-scratch code, the grader's reference."""
    entry = BY_NAME[name]
    functional, module = torch_signatures(entry) if entry.in_torch else reference_signatures(entry)
    source = solution_source(entry.chapter, entry.functional or entry.name)
    mlx = MLX.get(name)  # an activation added to the catalogue later: not in mlx.nn
    items = []
    if functional:
        items.append(("Functional", f"```python\n{functional}\n```"))
    items.append(("Module", f"```python\n{module}\n```"))
    items.append(("From scratch", f"```python\n{source}\n```"))
    if not entry.in_torch:
        reference = inspect.getsource(entry.reference)
        items.append(("Grader's reference", f"The float64 truth of `grader/spec/references.py`, written from the "
                      f"paper, which the grader compares with:\n```python\n{reference}\n```"))
    items.append(("MLX", f"`mlx.{mlx}`" if mlx else
                  "Not in `mlx.nn`: the MLX chapter writes it from MLX primitives." if entry.in_torch else
                  "Not in `mlx.nn`."))
    body = "\n".join(f":::{{tab-item}} {title}\n{content}\n:::" for title, content in items)
    return Markdown(f"::::{{tab-set}}\n{body}\n::::")


def derivatives(fn: Callable, x: torch.Tensor, order: int = 2) -> list[torch.Tensor]:
    """f(x), f'(x), ... by autograd of an elementwise ``fn``, in float64."""
    x = x.detach().double().requires_grad_()
    out = [fn(x)]
    for _ in range(order):
        # a piecewise-linear fn has a piecewise-constant derivative, with no graph left: the next is 0
        (g,) = torch.autograd.grad(out[-1].sum(), x, create_graph=True) if out[-1].requires_grad else (None,)
        out.append(torch.zeros_like(x) if g is None else g)
    return [t.detach() for t in out]


def plot_derivatives(curves: dict[str, Callable], xlim: tuple[float, float] = (-5, 5), order: int = 1,
                     kinks: list[float] = (), title: str = "", variable: str = "x", name: str = "f") -> plt.Figure:
    """Panels for f, f' (and f''), one line per labelled curve; axes say ``name(variable)``."""
    x = torch.linspace(*xlim, 1001, dtype=torch.float64)
    names = [f"{name}{mark}({variable})" for mark in ("", "′", "″")][: order + 1]
    fig, axes = plt.subplots(1, order + 1, figsize=(4.2 * (order + 1), 3.2), constrained_layout=True)
    for label, fn in curves.items():
        for ax, y in zip(axes, derivatives(fn, x, order)):
            ax.plot(x, y, label=label)
    for ax, label in zip(axes, names):
        ax.set_xlabel(variable)
        ax.set_ylabel(label)
        ax.axhline(0, color="0.7", lw=0.6)
        ax.axvline(0, color="0.7", lw=0.6)
        for k in kinks:
            ax.axvline(k, color="C3", lw=0.6, ls=":")
        ax.set_title(label)
    if len(curves) > 1:
        axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def grad_at(fn: Callable, x: float, dtype: torch.dtype = torch.float32) -> float:
    """The derivative torch's autograd gives for ``fn`` at one point."""
    t = torch.tensor([x], dtype=dtype, requires_grad=True)
    (g,) = torch.autograd.grad(fn(t).sum(), t)
    return g.item()
