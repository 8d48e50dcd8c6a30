"""Generate exercise notebooks from the solution notebooks.

``python -m grader.authoring.exercises [--check]``: every ``### BEGIN SOLUTION`` ... ``### END SOLUTION``
region of ``solutions/NN_*.ipynb`` becomes ``raise NotImplementedError`` (nbgrader's convention) in
``exercises/NN_*.ipynb``. A cell tagged ``check`` (the solution's quick test of the activation its
preceding cells define) becomes ``check("<Activation>")``, the grader's checks of that activation on
the live kernel; it reports and does not raise, so nbval runs it as any cell. In the MLX and 8-bit
chapters it names the exercise's key (``check("MLX ReLU")``, ``check("Quantized ReLU6")``); a check
cell there that follows no exercise (a quick test of helpers, or of every stub) stays as it is,
tagged ``raises-exception``. Each exercise also
gets a Colab set-up cell first (the grader's address comes from ``_config.yml``, see
:mod:`grader.authoring.launch`) and a cell that grades it last. ``--check`` writes nothing and fails if an
exercise is out of date.
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

from grader.authoring.launch import TAG, code_cell, exercise_cell, repository, with_setup
from grader.core.paths import ROOT
from grader.authoring.notebooks import dumps, write_or_check
from grader.spec.frameworks import TORCH
from grader.submission.framework import framework_of_sources

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = "raise NotImplementedError"


class MarkerError(ValueError):
    pass


def strip_solutions(source: str, where: str = "") -> str:
    """Replace each solution region by a stub at the marker's indentation."""
    out, inside, indent = [], False, ""
    for n, line in enumerate(source.split("\n"), start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise MarkerError(f"{where} line {n}: {BEGIN} inside another solution region")
            inside, indent = True, line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}{STUB}")
        elif stripped == END:
            if not inside:
                raise MarkerError(f"{where} line {n}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise MarkerError(f"{where}: {BEGIN} is never closed")
    return "\n".join(out)


def clean(nb: dict) -> dict:
    """No outputs, no execution counts: notebooks are committed clean."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return nb


def grade_cells(filename: str) -> list[dict]:
    """The closing cells: how to grade, and a cell that does it."""
    text = ("## Grade yourself\n\nSave the notebook, then run the cell below (in Colab it grades what you "
            "see). It runs every check of the course's grader on this notebook, in a sandbox, as your "
            "instructor would; `grade(\"-v\")` lists them all. It finds this notebook's file itself in "
            "Jupyter, VS Code and Colab; if it cannot, it says so: then pass the file name, "
            f"`grade(\"{filename}\")`. From a terminal: `python -m grader {filename}`.")
    code = "from grader.notebook import grade\n\ngrade()"
    return [{"cell_type": "markdown", "id": "grade-intro", "metadata": {}, "source": text},
            {**code_cell(code, ["grade"]), "id": "grade"}]


def check_source(activation: str) -> str:
    """The check cell of one activation."""
    return (f"# The grader's checks of {activation}, on what this kernel defines now (no need to save)\n"
            f"from grader.notebook import check\n\ncheck(\"{activation}\")")


def defined_activations(sources: list[str], where: str = "") -> list[str]:
    """The catalogue activations whose module classes these cells define (the cells above a check
    cell), in the order they are defined: each gets a check cell of its own."""
    from grader.spec.catalog import BY_NAME

    names = [m for src in sources for m in re.findall(r"^class (\w+)\b", src, re.M) if m in BY_NAME]
    names = list(dict.fromkeys(names))
    if not names:
        raise MarkerError(f"{where}: a check cell must follow the cells of an activation's module class, found none")
    return names


def defined_exercises(sources: list[str], framework: str, where: str = "") -> list[str]:
    """What the check cells after these cells name: torch's activations (:func:`defined_activations`),
    or the keys of the MLX or 8-bit exercises whose names the cells define, in the course's order."""
    if framework == TORCH.name:
        return defined_activations(sources, where)
    from grader.spec.assignment import EXERCISES

    defined = {m for src in sources for m in re.findall(r"^(?:class|def) (\w+)\b", src, re.M)}
    return [e.key for e in EXERCISES if e.framework == framework and defined & set(e.names)]


def make_exercise(solution: dict, name: str = "", repository: tuple[str, str] | None = None) -> dict:
    """The exercise for ``solution`` (named ``name``): stubs for the solutions and, given the
    repository's (url, branch), a Colab set-up cell and the grading cells."""
    nb = clean(copy.deepcopy(solution))
    for i, cell in enumerate(nb["cells"]):  # before check cells multiply: ids follow the solution's cells
        cell.setdefault("id", f"cell-{i}")
    since_check: list[str] = []  # the code above the next check cell
    framework = framework_of_sources(["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"])
    cells = []
    for i, cell in enumerate(nb["cells"]):
        cells.append(cell)
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        tags = cell.setdefault("metadata", {}).get("tags", [])
        if "check" in tags:
            names = defined_exercises(since_check, framework, f"{name} cell {i + 1}")
            if not names:  # another framework's quick test of what no exercise is: it calls the stubs
                if "raises-exception" not in tags:
                    cell["metadata"]["tags"] = tags + ["raises-exception"]
            else:
                first, *more = names
                cell["source"] = check_source(first)
                cells += [{**code_cell(check_source(other), tags), "id": f"check-{_slug(other)}"} for other in more]
                since_check = []
                continue
        since_check.append(source)
        stub = strip_solutions(source, f"{name} cell {i + 1}")
        cell["source"] = stub if isinstance(cell["source"], str) else stub.splitlines(keepends=True)
    nb["cells"] = cells
    if repository:
        with_setup(nb, exercise_cell(*repository))
        for cell in nb["cells"]:
            if TAG in cell["metadata"].get("tags", []):
                cell["id"] = TAG
        nb["cells"] += grade_cells(name)
    return with_ids(nb, name)


def _slug(key: str) -> str:
    """A cell id from an exercise's key (ids take no spaces): ``MLX ReLU`` -> ``MLX-ReLU``."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", key)


def with_ids(nb: dict, name: str = "") -> dict:
    """nbformat 4.5, every cell with an id that regeneration keeps: a front end that finds a cell
    without one adds a random id and marks the notebook changed the moment it opens. A solution
    cell's id is its own (or ``cell-<position in the solution>``), a generated cell's its role."""
    nb["nbformat"], nb["nbformat_minor"] = 4, max(5, nb.get("nbformat_minor", 0))
    nb["cells"] = [{"cell_type": c["cell_type"], "id": c["id"],
                    **{k: v for k, v in c.items() if k not in ("cell_type", "id")}} for c in nb["cells"]]
    seen = [c["id"] for c in nb["cells"]]
    if len(set(seen)) != len(seen):
        raise MarkerError(f"{name}: cell ids repeat: {sorted({i for i in seen if seen.count(i) > 1})}")
    return nb


def exercise_path(solution: Path, root: Path = ROOT) -> Path:
    return root / "exercises" / solution.name


def solutions(root: Path = ROOT) -> list[Path]:
    return sorted(p for p in (root / "solutions").glob("*.ipynb") if re.match(r"\d\d_", p.name))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m grader.authoring.exercises", description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="fail if an exercise differs from its generated form")
    p.add_argument("--root", type=Path, default=ROOT, help="the course repository (default: this checkout)")
    args = p.parse_args(argv)
    repo, generated = repository(args.root), []
    for sol in solutions(args.root):
        try:
            text = dumps(make_exercise(json.loads(sol.read_text(encoding="utf-8")), sol.name, repo))
        except (MarkerError, json.JSONDecodeError) as exc:
            print(f"error: {sol}: {exc}", file=sys.stderr)
            return 2
        generated.append((exercise_path(sol, args.root), text))
    return write_or_check(generated, args.check, args.root, "python -m grader.authoring.exercises")


if __name__ == "__main__":
    sys.exit(main())
