"""Which framework a submission is written for, read from its code, never run (the parent uses
it too): a submission that imports mlx is graded by the MLX checks; one that defines a function of
the 8-bit chapter (``quantized_relu6``, ``fp8_gelu``, ...: names no other chapter uses) by the
quint8 and fp8 checks; any other by torch's."""
from __future__ import annotations

import ast
from pathlib import Path

from grader.core.errors import SubmissionError
from grader.spec.frameworks import MLX, QUANTIZED, TORCH
from grader.spec.quantized_catalog import NAMES as QUANTIZED_NAMES
from grader.submission.reading import SubmissionFile, parse_cells, read, top_level_names


def _imports_mlx(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "mlx" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "mlx" and not node.level:
            return True
    return False


def framework_of_trees(trees: list[ast.Module]) -> str:
    """The name of the submission's :class:`~grader.spec.frameworks.Framework` (as reports record it)."""
    if any(_imports_mlx(t) for t in trees):
        return MLX.name
    if any(top_level_names(t) & QUANTIZED_NAMES for t in trees):
        return QUANTIZED.name
    return TORCH.name


def framework_of_file(submission: SubmissionFile) -> str:
    return framework_of_trees(list(submission.trees))


def framework_of_sources(sources: list[str]) -> str:
    """:func:`framework_of` for code cells' sources (the exercise generator's notebooks)."""
    return framework_of_trees(parse_cells(sources))


def framework_of(path: str | Path) -> str:
    """``mlx`` for a submission whose code imports mlx, ``quantized`` for one that defines the 8-bit
    chapter's functions (read, never run), else ``torch`` (also for a file that cannot be read)."""
    try:
        return framework_of_file(read(path))
    except SubmissionError:
        return TORCH.name


