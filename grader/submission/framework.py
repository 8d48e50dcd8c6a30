"""Which framework a submission is written for, read from its code, never run (the parent uses
it too): a submission that imports mlx is graded by the MLX checks."""
from __future__ import annotations

import ast
from pathlib import Path

from grader.core.errors import SubmissionError
from grader.submission.loader import read_cells, strip_ipython


def imports_mlx(path: str | Path) -> bool:
    """An MLX submission: one whose code imports ``mlx`` (read, not run: the parent uses it too)."""

    try:
        cells = read_cells(Path(path))
    except (SubmissionError, OSError):
        return False
    for source in cells:
        try:
            tree = ast.parse(strip_ipython(source)[0])
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "mlx" for a in node.names):
                return True
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "mlx" and not node.level:
                return True
    return False


def framework_of(path: str | Path) -> str:
    """``mlx`` for a submission whose code imports mlx (read, never run), else ``torch``."""
    return "mlx" if imports_mlx(path) else "torch"
