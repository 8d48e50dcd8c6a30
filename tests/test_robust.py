"""Grading does not depend on what students do to a notebook besides its code: cell order beyond
execution order, cell ids, metadata, outputs, extra cells, the file's name, extra imports and prints,
a deleted grading cell or set-up cell. Each edit of a student's exercise notebook keeps its grade."""
from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
PNG = base64.b64encode(bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                                     "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082")).decode()


def student() -> dict:
    """The standard chapter's exercise with ReLU filled in from the solution: ReLU earns full marks,
    Sigmoid and Tanh are still stubs."""
    exercise = json.loads((ROOT / "exercises" / "01_standard.ipynb").read_text())
    solution = json.loads((ROOT / "solutions" / "01_standard.ipynb").read_text())
    done = next(c for c in solution["cells"] if c["cell_type"] == "code" and "def relu(" in _src(c))
    for i, cell in enumerate(exercise["cells"]):
        if cell["cell_type"] == "code" and "def relu(" in _src(cell):
            exercise["cells"][i] = copy.deepcopy(done)
    return exercise


def _src(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _code(source: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}


def _tagged(cell: dict, tag: str) -> bool:
    return tag in cell.get("metadata", {}).get("tags", [])


def reorder(nb: dict) -> dict:
    """Markdown moved to the end, the check cells and the grading cell to the top: only the code
    that defines things keeps its execution order."""
    cells = nb["cells"]
    moved = [c for c in cells if _tagged(c, "check") or _tagged(c, "grade")]
    code = [c for c in cells if c["cell_type"] == "code" and c not in moved]
    nb["cells"] = moved + code + [c for c in cells if c["cell_type"] != "code"][::-1]
    return nb


def cell_ids(nb: dict) -> dict:
    nb["nbformat_minor"] = 5
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"student-{i:03d}-x"
    return nb


def metadata(nb: dict) -> dict:
    nb["metadata"] = {"kernelspec": {"name": "something-else", "display_name": "Py", "language": "python"},
                      "language_info": {"name": "python", "version": "3.12.1"},
                      "colab": {"provenance": [], "name": "copy.ipynb"}, "widgets": {"state": {}}}
    for cell in nb["cells"]:
        cell["metadata"] = {**cell.get("metadata", {}), "collapsed": True, "scrolled": "auto", "editable": False,
                            "jupyter": {"source_hidden": True}}
    return nb


def outputs(nb: dict) -> dict:
    for n, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            cell["execution_count"] = n + 7
            cell["outputs"] = [
                {"output_type": "stream", "name": "stdout", "text": "old output\n"},
                {"output_type": "display_data", "metadata": {}, "data": {"image/png": PNG, "text/plain": "<Figure>"}},
                {"output_type": "execute_result", "execution_count": n + 7, "metadata": {}, "data": {"text/plain": "42"}},
                {"output_type": "error", "ename": "NotImplementedError", "evalue": "", "traceback": ["..."]},
            ]
    return nb


def extra_cells(nb: dict) -> dict:
    cells = nb["cells"]
    at = next(i for i, c in enumerate(cells) if "def relu(" in _src(c)) + 1
    cells[at:at] = [
        {"cell_type": "markdown", "metadata": {}, "source": "My notes: relu is max(0, x)."},
        {"cell_type": "raw", "metadata": {}, "source": "raw text"},
        _code("scratch = relu(torch.tensor([-1.0, 2.0]))\nscratch"),
        _code("x = torch.randn(3)\ny = ReLU()(x)"),
    ]
    cells.append(_code("# TODO: sigmoid"))
    return nb


def imports_and_prints(nb: dict) -> dict:
    cells = nb["cells"]
    first = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    cells.insert(first, _code(
        "import os, sys, random\nimport numpy as np\nimport torch.nn.functional as F\nprint('starting', sys.version)"))
    for cell in cells:
        if "def relu(" in _src(cell):
            cell["source"] = "import numpy\nprint('defining relu')\n" + _src(cell) + "\nprint('done', relu)\n"
    return nb


def without(tag: str) -> Callable[[dict], dict]:
    def edit(nb: dict) -> dict:
        nb["cells"] = [c for c in nb["cells"] if not _tagged(c, tag)]
        return nb
    return edit


def everything(nb: dict) -> dict:
    for edit in (without("grade"), without("colab-setup"), imports_and_prints, extra_cells, reorder, outputs,
                 metadata, cell_ids):
        nb = edit(nb)
    return nb


EDITS: dict[str, tuple[Callable[[dict], dict], str]] = {
    "cell order beyond execution order": (reorder, "01_standard.ipynb"),
    "cell ids": (cell_ids, "01_standard.ipynb"),
    "metadata": (metadata, "01_standard.ipynb"),
    "outputs": (outputs, "01_standard.ipynb"),
    "extra cells": (extra_cells, "01_standard.ipynb"),
    "renamed file": (lambda nb: nb, "Copy of 01_standard (1).ipynb"),
    "extra imports and prints": (imports_and_prints, "01_standard.ipynb"),
    "grading cell deleted": (without("grade"), "01_standard.ipynb"),
    "set-up cell deleted": (without("colab-setup"), "01_standard.ipynb"),
    "all of these at once": (everything, "mine.ipynb"),
}


@pytest.fixture(scope="module")
def grades(tmp_path_factory) -> dict[str, dict]:
    """Every variant graded by one run of the command line."""
    tmp = tmp_path_factory.mktemp("robust")
    paths = {}
    for n, (label, (edit, name)) in enumerate([("as handed in", (lambda nb: nb, "01_standard.ipynb")), *EDITS.items()]):
        folder = tmp / f"student{n}"
        folder.mkdir()
        nb = edit(student())
        nbformat.validate(nbformat.from_dict(nb))
        (folder / name).write_text(json.dumps(nb, indent=1))
        paths[label] = folder / name
    report = tmp / "report.json"
    r = subprocess.run([sys.executable, "-m", "grader", *map(str, paths.values()), "--device", "cpu",
                        "--json", str(report)], capture_output=True, text=True, cwd=ROOT, timeout=1200)
    assert r.returncode == 1, r.stdout + r.stderr
    graded = json.loads(report.read_text())["submissions"]
    return {label: {k: s[k] for k in ("score", "max_score", "error", "notes", "exercises")}
            for label, s in zip(paths, graded)}


def test_the_student_notebook_is_partly_right(grades: dict) -> None:
    base = grades["as handed in"]
    scores = {e["name"]: (e["score"], e["max_score"]) for e in base["exercises"]}
    assert scores["ReLU"][0] == scores["ReLU"][1] > 10
    assert scores["Sigmoid"][0] == scores["Tanh"][0] == 0
    assert not base["error"] and not base["notes"], base["notes"]


@pytest.mark.parametrize("edit", list(EDITS))
def test_the_grade_does_not_change(edit: str, grades: dict) -> None:
    assert grades[edit] == grades["as handed in"]
