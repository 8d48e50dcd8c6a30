"""A submission read, never run: its bytes, SHA-256, code cells, the names its code binds at the
top level and the framework it is written for. The parent reads each file once, with this, and
plans its grading from what it read (grader/checks/plan.py): nothing the worker says about the file
is believed. Every way the reading can fail is a :class:`SubmissionError` of one line, whatever the
file holds (a notebook nested 200,000 levels deep, an expression of 300,000 terms)."""
from __future__ import annotations

import ast
import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

from grader.core.errors import SubmissionError

MAX_BYTES = 50 * 2**20  # a notebook with huge outputs is refused before it is parsed


@dataclass(frozen=True)
class SubmissionFile:
    path: str
    sha256: str
    cells: tuple[str, ...]  # code cells' sources (a .py: one)
    trees: tuple[ast.Module, ...]  # the cells Python can parse, magics stripped
    defined: frozenset[str]  # names bound at the top level of some cell
    notes: tuple[str, ...] = ()  # the cells Python cannot parse, as the loader words it


def read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise SubmissionError(f"{path}: no such file")
    if path.is_dir():
        raise SubmissionError(f"{path}: is a directory, expected an .ipynb or .py file")
    if path.stat().st_size > MAX_BYTES:
        raise SubmissionError(f"{path}: {path.stat().st_size:,} bytes is too large for a submission "
                              f"(limit {MAX_BYTES:,}; clear the notebook's outputs)")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SubmissionError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def cells_of(path: Path, raw: bytes) -> list[str]:
    """The code cells of a notebook, or the whole file of a .py, as source strings."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubmissionError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if path.suffix == ".py":
        return [text]
    if path.suffix != ".ipynb":
        raise SubmissionError(f"{path}: expected an .ipynb or .py file")
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SubmissionError(f"{path}: not a notebook (invalid JSON at line {exc.lineno})") from None
    except (RecursionError, MemoryError) as exc:
        raise SubmissionError(f"{path}: not a notebook (JSON nested too deeply to read: {type(exc).__name__})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise SubmissionError(f"{path}: not a notebook (no list of cells)")
    if nb.get("nbformat") != 4:
        raise SubmissionError(f"{path}: nbformat {nb.get('nbformat')!r} is not supported, save it as nbformat 4")
    cells = []
    for cell in nb["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        cells.append("".join(map(str, src)) if isinstance(src, list) else str(src))
    return cells


def read_cells(path: Path) -> list[str]:
    """The code cells of the file at ``path`` (the worker's loader reads them with this)."""
    return cells_of(path, read_bytes(path))


def strip_ipython(source: str) -> tuple[str, list[str]]:
    """Drop notebook magics and shell escapes, which only a kernel understands."""
    lines, dropped = [], []
    if source.lstrip().startswith("%%"):
        return "", [source.lstrip().splitlines()[0]]
    for line in source.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            dropped.append(stripped)
            lines.append(line[: len(line) - len(stripped)] + "pass")
        else:
            lines.append(line)
    return "\n".join(lines), dropped


# CPython 3.11 keeps the AST constructor's recursion depth per interpreter, not per thread: two of a
# batch's threads parsing at once can fail one with "SystemError: AST constructor recursion depth
# mismatch" (python/cpython#106905), which cost a student a "grader error" in CI
_PARSING = threading.Lock()


def parse_cells(sources: list[str], where: str = "", notes: list[str] | None = None,
                cell: str = "code cell") -> list[ast.Module]:
    """The cells Python can parse (a cell with a syntax error is left out, as the loader skips it,
    and said in ``notes``). A cell too deep for the parser is an error of the whole file: the grader
    cannot know what it defines, and Python could not run it either."""
    trees = []
    for number, source in enumerate(sources, start=1):
        name = f"{cell} {number}" if cell == "code cell" else cell
        try:
            code = strip_ipython(source)[0]  # plain string work: only the parse needs the lock
            with _PARSING:
                trees.append(ast.parse(code))
        except SyntaxError as exc:
            if notes is not None:
                notes.append(f"{name}: SyntaxError: {exc.msg} (line {exc.lineno}); the cell was skipped")
        except ValueError:
            continue
        except (RecursionError, MemoryError) as exc:
            raise SubmissionError(f"{where}{name} is nested too deeply to read "
                                  f"({type(exc).__name__}): split the expression") from None
    return trees


def top_level_names(tree: ast.Module) -> set[str]:
    """The names a module's code binds in its own namespace: definitions, assignments, imports,
    loop and ``with`` targets, at the top level or inside top-level ``if``/``try``/``for``/``with``
    blocks (not inside functions or classes)."""
    names: set[str] = set()

    def targets(node: ast.AST) -> None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                names.add(sub.id)

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
                continue  # what its body binds is its own
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    targets(t)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets(node.target)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name.split(".")[0]) for a in node.names if a.name != "*")
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                targets(node.target)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if item.optional_vars is not None:
                        targets(item.optional_vars)
            elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
                for handler in node.handlers:
                    if handler.name:
                        names.add(handler.name)
            for field in ("body", "orelse", "finalbody"):
                visit(getattr(node, field, None) or [])
            for handler in getattr(node, "handlers", None) or []:
                visit(handler.body)
            if isinstance(node, ast.Match):
                for case in node.cases:
                    visit(case.body)
            if isinstance(node, ast.Expr | ast.Assign | ast.If | ast.While):  # walrus at the top level
                for sub in ast.walk(node.value if isinstance(node, (ast.Expr, ast.Assign)) else node.test):
                    if isinstance(sub, ast.NamedExpr):
                        targets(sub.target)
    visit(tree.body)
    return names


def read(path: str | Path, raw: bytes | None = None) -> SubmissionFile:
    """Read ``path`` once: bytes, SHA-256, code cells, what they define; ``raw``: its bytes, already
    read. Raises :class:`SubmissionError` (one line) for a file that cannot be graded."""
    path = Path(path)
    raw = read_bytes(path) if raw is None else raw
    cells = cells_of(path, raw)
    notes: list[str] = []
    trees = parse_cells(cells, f"{path}: ", notes, "code cell" if path.suffix == ".ipynb" else "file")
    try:
        defined = frozenset(set().union(*(top_level_names(t) for t in trees)))
    except RecursionError:
        raise SubmissionError(f"{path}: code nested too deeply to read (RecursionError)") from None
    return SubmissionFile(str(path), hashlib.sha256(raw).hexdigest(), tuple(cells), tuple(trees), defined,
                          tuple(notes))
