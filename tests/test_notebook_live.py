"""In a live kernel (nbclient), as a student works: fill one stub, run its check cell, see the checks
with the right verdicts; a wrong implementation shows its hint and a picture; grade() at the end
finds the notebook by itself and grades it in the sandbox."""
from __future__ import annotations

import base64
from pathlib import Path

import nbclient
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NAIVE_SIGMOID = "\n\ndef sigmoid(input: Tensor) -> Tensor:\n    return 1 / (1 + torch.exp(-input))\n"


def _text(cell) -> str:
    return "\n".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in cell.outputs)


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> dict[str, nbformat.NotebookNode]:
    """The standard chapter's exercise with ReLU filled in correctly and Sigmoid with the naive formula
    (its module and Function from the solution), Tanh left a stub; executed top to bottom."""
    tmp = tmp_path_factory.mktemp("live")
    nb = nbformat.read(ROOT / "exercises" / "01_standard.ipynb", 4)
    solution = nbformat.read(ROOT / "solutions" / "01_standard.ipynb", 4)
    solved = {name: next(c.source for c in solution.cells if c.cell_type == "code" and f"def {name}(" in c.source)
              for name in ("relu", "sigmoid")}
    for cell in nb.cells:
        if cell.cell_type == "code" and "def relu(" in cell.source:
            cell.source = solved["relu"]
        elif cell.cell_type == "code" and "def sigmoid(" in cell.source:
            cell.source = solved["sigmoid"] + NAIVE_SIGMOID
    nbformat.write(nb, tmp / "01_standard.ipynb")
    nbclient.NotebookClient(nb, resources={"metadata": {"path": str(tmp)}}, timeout=900,
                            allow_errors=False).execute()
    cells = {}
    for cell in nb.cells:
        if "check" in cell.metadata.get("tags", []):
            cells[cell.source.splitlines()[-1]] = cell
        elif "grade" in cell.metadata.get("tags", []):
            cells["grade"] = cell
    return cells


def test_a_filled_stub_shows_its_checks_passing(ran: dict) -> None:
    cell = ran['check("ReLU")']
    kinds = [sorted(o.get("data", {})) for o in cell.outputs]
    assert kinds == [["text/html", "text/plain"]], kinds  # the table; no picture without a failure
    html = cell.outputs[0]["data"]["text/html"]
    assert "<table" in html and html.count("✓") == 18 and "✗" not in html
    assert "ReLU: 18 of 18 checks pass" in _text(cell)


def test_a_wrong_implementation_shows_its_hint_and_a_picture(ran: dict) -> None:
    cell = ran['check("Sigmoid")']
    text = _text(cell)
    assert "✗ edges" in text and "sigmoid() float32: grad is nan at x=-100.0, torch gives 0.0" in text
    assert "Hint:" in text and "✓ api" in text and "✓ module" in text
    html = cell.outputs[0]["data"]["text/html"]
    assert html.index("<table") < html.index("Hint:") < html.index("checks pass")
    pictures = [o for o in cell.outputs if "image/png" in o.get("data", {})]
    assert len(pictures) == 1 and base64.b64decode(pictures[0]["data"]["image/png"]).startswith(b"\x89PNG")


def test_a_stub_says_not_implemented(ran: dict) -> None:
    text = _text(ran['check("Tanh")'])
    assert "Tanh: 0 of " in text and "not implemented (raises NotImplementedError)" in text
    assert "replace `raise NotImplementedError`" in text  # the stub's hint


def test_grade_finds_the_notebook_and_grades_it(ran: dict) -> None:
    # the report as the cell's display, and no value (the exit status once showed as `1` under it)
    assert [o.output_type for o in ran["grade"].outputs] == ["display_data"], ran["grade"].outputs
    assert "<table" in ran["grade"].outputs[0]["data"]["text/html"]
    text = _text(ran["grade"])
    assert "saved file differs" not in text  # the kernel ran what the file holds
    assert "01_standard.ipynb" in text and "cannot tell which notebook" not in text, text
    lines = {l.split()[0]: l.split()[1] for l in text.splitlines() if l.startswith("  ") and len(l.split()) > 1}
    assert lines["ReLU"] == "18/18" and lines["Tanh"].startswith("0/"), text
    sigmoid, out_of = lines["Sigmoid"].split("/")
    assert 0 < int(sigmoid) < int(out_of)
