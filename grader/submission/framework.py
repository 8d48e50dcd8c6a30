"""Which framework a submission is written for, read from its code, never run (the parent uses
it too): a submission that imports mlx is graded by the MLX checks; one that defines a function of
the 8-bit chapter (``quantized_relu6``, ``fp8_gelu``, ...: names no other chapter uses) by the
quint8 and fp8 checks; any other by torch's."""
from __future__ import annotations

import ast
from pathlib import Path

from grader.core.errors import SubmissionError
from grader.spec.quantized_catalog import NAMES as QUANTIZED_NAMES
from grader.submission.loader import read_cells, strip_ipython


def _parse(sources: list[str]) -> list[ast.AST]:
    trees = []
    for source in sources:
        try:
            trees.append(ast.parse(strip_ipython(source)[0]))
        except (SyntaxError, ValueError):
            continue
    return trees


def _trees(path: str | Path) -> list[ast.AST]:
    try:
        return _parse(read_cells(Path(path)))
    except (SubmissionError, OSError):
        return []


def _imports_mlx(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "mlx" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "mlx" and not node.level:
            return True
    return False


def _defines_quantized(tree: ast.AST) -> bool:
    """A top-level ``def``, assignment or import binding one of the 8-bit chapter's names."""
    for node in getattr(tree, "body", []):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in QUANTIZED_NAMES:
            return True
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []
        if any(isinstance(n, ast.Name) and n.id in QUANTIZED_NAMES for t in targets for n in ast.walk(t)):
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and \
                any((a.asname or a.name.split(".")[0]) in QUANTIZED_NAMES for a in node.names):
            return True
    return False


def imports_mlx(path: str | Path) -> bool:
    """An MLX submission: one whose code imports ``mlx`` (read, not run: the parent uses it too)."""
    return any(_imports_mlx(t) for t in _trees(path))


def framework_of_sources(sources: list[str]) -> str:
    """:func:`framework_of` for code cells' sources (the exercise generator's notebooks)."""
    return _framework(_parse(sources))


def _framework(trees: list[ast.AST]) -> str:
    if any(_imports_mlx(t) for t in trees):
        return "mlx"
    if any(_defines_quantized(t) for t in trees):
        return "quantized"
    return "torch"


def framework_of(path: str | Path) -> str:
    """``mlx`` for a submission whose code imports mlx, ``quantized`` for one that defines the 8-bit
    chapter's functions (read, never run), else ``torch``."""
    return _framework(_trees(path))
