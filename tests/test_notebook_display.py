"""What a student sees in a notebook front end: check()'s and grade()'s tables aligned left whatever
the front end's stylesheet says, grade()'s cell showing its report and no bare exit status, a saved
file that lags behind the kernel said before the report, the skipped CUDA checks said once, and
grade() listing every note that check() shows."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from grader import notebook
from grader.run.live import run
from grader.submission.loader import load
from grader.notebook import UNSAVED, GradeReport, differing, from_json, grade

ROOT = Path(__file__).resolve().parent.parent

# grad 1 at 0 (clamp's), a valid subgradient that is not torch's: notes on edges and on kinks, more
# than the two per activation that python -m grader's table shows
CLAMP_RELU = ("def relu(input, inplace=False):\n    out = input.clamp(min=0)\n"
              "    return input.copy_(out) if inplace else out\n")
WRONG_RELU = "def relu(input, inplace=False):\n    return input.abs()\n"


def _cells(tmp: Path, *extra: str) -> Path:
    nb = nbformat.read(ROOT / "solutions" / "01_standard.ipynb", 4)
    nb.cells += [nbformat.v4.new_code_cell(code) for code in extra]
    path = tmp / "mine.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> tuple[Path, GradeReport]:
    """grade() from a script (no IPython) on chapter 1's solution with ReLU overridden by CLAMP_RELU."""
    path = _cells(tmp_path_factory.mktemp("graded"), CLAMP_RELU)
    return path, grade(str(path), "--device", "cpu")


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.styles: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("th", "td"):
            self.styles.append((tag, dict(attrs).get("style") or ""))


def _styles(page: str) -> list[tuple[str, str]]:
    parser = _Cells()
    parser.feed(page)
    return parser.styles


def test_check_and_grade_tables_set_their_own_left_alignment(graded) -> None:
    _, report = graded
    checked = run("ReLU", load(ROOT / "solutions" / "01_standard.ipynb").namespace, "cpu")._repr_html_()
    for page in (checked, report._repr_html_()):
        styles = _styles(page)
        assert len(styles) > 3 and {tag for tag, _ in styles} == {"th", "td"}
        assert all("text-align:left" in style.replace(" ", "") for _, style in styles), styles


# The front ends' own rules for output tables: JupyterLab 4 and the classic Notebook right-align the
# cells of any HTML output and centre the table; VS Code and Colab have rules of their own.
FRONT_END_CSS = {
    "jupyterlab": ".jp-RenderedHTMLCommon table { margin-left: auto; margin-right: auto; table-layout: fixed; }"
                  ":not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td,"
                  ":not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon th { text-align: right; vertical-align: middle; }",
    "classic": ".rendered_html table { margin-left: auto; margin-right: auto; }"
               ".rendered_html td, .rendered_html th { text-align: right; vertical-align: middle; }",
    "centred": "table { margin: auto; } td, th { text-align: center; }",
}


@pytest.mark.parametrize("front_end", sorted(FRONT_END_CSS))
def test_tables_render_left_aligned_under_a_front_end_s_stylesheet(graded, browser, front_end: str) -> None:
    _, report = graded
    checked = run("ReLU", load(ROOT / "solutions" / "01_standard.ipynb").namespace, "cpu")._repr_html_()
    tab = browser.new_page(viewport={"width": 1200, "height": 900})
    for page in (checked, report._repr_html_()):
        tab.set_content(f"<style>{FRONT_END_CSS[front_end]}</style><div class='jp-RenderedHTMLCommon rendered_html' "
                        f"style='width:1100px'>{page}</div>")
        aligned = tab.eval_on_selector_all("th, td", "cells => cells.map(c => getComputedStyle(c).textAlign)")
        assert aligned and set(aligned) == {"left"}, aligned
        left = tab.eval_on_selector_all("table", "ts => ts.map(t => t.getBoundingClientRect().left - "
                                        "t.parentElement.getBoundingClientRect().left)")
        assert left and all(abs(x) < 1 for x in left), left  # against the output's left edge, not centred
    tab.close()


def test_grade_returns_its_report_not_the_exit_status(graded, monkeypatch) -> None:
    path, report = graded
    assert isinstance(report, GradeReport) and report.returncode == 0  # full marks, with notes
    assert report.score == sum(a.score for a in report.exercises) == report.max_score > 0
    assert [a.name for a in report.exercises] == ["ReLU", "Sigmoid", "Tanh"]
    assert str(report).splitlines()[0].startswith(str(path)) and repr(report) == str(report)
    # a notebook shows it through _ipython_display_: the report as a display, with no `Out[n]: 1`
    shown = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append(obj))
    report._ipython_display_()
    assert [sorted(s) for s in shown] == [["text/html", "text/plain"]]
    assert shown[0]["text/plain"] == str(report) and "<table" in shown[0]["text/html"]


def test_grade_in_ipython_displays_instead_of_printing_and_shows_no_value(tmp_path: Path) -> None:
    """A real IPython shell: the cell `grade(...)` displays the report once, and its displayhook
    gets nothing it would show as `Out[n]` (the exit status was shown as `1`)."""
    path = _cells(tmp_path, WRONG_RELU)
    script = textwrap.dedent(f"""
        from IPython.core.interactiveshell import InteractiveShell
        import IPython.display
        shell = InteractiveShell.instance()
        shown = []
        IPython.display.display = lambda obj, raw=False: shown.append(obj)
        shell.displayhook.write_format_data = lambda data, md=None: shown.append(("Out", data))
        shell.run_cell("from grader.notebook import grade")
        shell.run_cell("grade({str(path)!r}, '--device', 'cpu')")
        print("SHOWN", [sorted(s) if isinstance(s, dict) else s[0] for s in shown])
        print("TEXT", shown[0]["text/plain"].splitlines()[1] if isinstance(shown[0], dict) else shown)
    """)
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "SHOWN [['text/html', 'text/plain']]" in r.stdout, r.stdout + r.stderr
    assert "ReLU" in r.stdout and "mine.ipynb" not in r.stdout.split("SHOWN")[0], r.stdout  # not printed


def test_grade_lists_every_note_that_check_shows(graded) -> None:
    path, report = graded
    # check() in a process of its own: a kernel session remembers functions that hung in another test
    script = (f"import json; from grader.submission.loader import load; from grader.run.live import run\n"
              f"live = run('ReLU', load({str(path)!r}).namespace, 'cpu')\n"
              f"print(json.dumps([f'{{c.name}}: {{n}}' for c in live.checks for n in c.notes]))")
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    notes = json.loads(r.stdout.splitlines()[-1])
    assert any(n.startswith("kinks: ") for n in notes) and any(n.startswith("edges: ") for n in notes), notes
    relu = next(a for a in report.exercises if a.name == "ReLU")
    assert relu.notes == notes
    text, page = str(report), report._repr_html_()
    for note in notes:
        assert f"note: {note}" in text
    assert page.count("note: ") == len(notes)


class FakeShell:
    """IPython as grade() sees it: the kernel's namespace and its history of cells run."""

    def __init__(self, user_ns: dict, ran: list[str]) -> None:
        self.user_ns = user_ns
        self.history_manager = type("History", (), {"input_hist_raw": ["", *ran]})()


def _kernel(monkeypatch, path: Path, ran: list[str]) -> None:
    import IPython

    shell = FakeShell({"__vsc_ipynb_file__": str(path), "In": ["", *ran]}, ran)
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)


def test_an_unsaved_change_is_said_before_the_report(tmp_path: Path, monkeypatch) -> None:
    """Saved: the wrong ReLU. Ran: the saved cells, then the fixed ReLU, not saved. grade() grades
    the file (ReLU fails) and says first that it is not what the kernel ran."""
    path = _cells(tmp_path, WRONG_RELU)
    saved = [c.source for c in nbformat.read(path, 4).cells if c.cell_type == "code"]
    fixed = "def relu(input, inplace=False):\n    return input.clamp(min=0)\n"
    _kernel(monkeypatch, path, [*saved, fixed, "grade()"])
    report = grade(None, "--device", "cpu")
    assert report.warning == UNSAVED
    assert str(report).splitlines()[0] == f"Note: {UNSAVED}"
    assert str(report).splitlines()[1].startswith(str(path))
    page = report._repr_html_()
    assert page.index(UNSAVED) < page.index("<table")
    assert next(a for a in report.exercises if a.name == "ReLU").score < 18  # the saved file is graded
    # saved, and the kernel ran what the file holds: nothing to say
    nb = nbformat.read(path, 4)
    nb.cells.append(nbformat.v4.new_code_cell(fixed))
    nbformat.write(nb, path)
    assert notebook.unsaved(path, [*saved, fixed, "grade()"]) is False
    _kernel(monkeypatch, path, [*saved, fixed, "grade()"])
    assert grade(None, "--device", "cpu").warning == ""


def test_what_counts_as_differing_from_the_saved_file() -> None:
    saved = ["import torch", "%matplotlib inline\ndef relu(x):\n    return x.clamp(min=0)\n", "def helper(x):\n    return x"]
    relu = saved[1]
    # IPython's `In` holds a cell with its magics rewritten: the same cell
    parsed = "get_ipython().run_line_magic('matplotlib', 'inline')\ndef relu(x):\n    return x.clamp(min=0)\n"
    assert differing(saved, [saved[0], parsed, saved[2]]) == []
    assert differing(saved, [relu + "\n\n  ", saved[2]]) == []  # trailing blank lines and spaces
    # an old version redefined by a saved cell, a scratch name the file never defines: nothing
    assert differing(saved, ["def relu(x):\n    return x", relu, "def scratch(x):\n    return 1", "print(1)"]) == []
    # the last relu that ran is not in the file; a helper the file defines changed; a graded name run
    # from a scratch cell the file lacks
    assert differing(saved, [relu, "def relu(x):\n    return x.abs()"]) == ["relu"]
    assert differing(saved, [relu, saved[2], "def helper(x):\n    return -x"]) == ["helper"]
    assert differing(saved, [relu, "class Tanh:\n    pass"]) == ["Tanh"]
    assert differing(saved, ["def relu(x) oops"]) == []  # what does not parse defines nothing


def test_the_grader_s_json_is_the_report(graded) -> None:
    path, report = graded
    out = path.parent / "r.json"
    subprocess.run([sys.executable, "-m", "grader", str(path), "--device", "cpu", "--json", str(out)], cwd=ROOT,
                   capture_output=True, timeout=600)
    (data,) = json.loads(out.read_text())["submissions"]
    again = from_json(data, 1)
    assert (again.score, again.max_score) == (data["score"], data["max_score"]) == (report.score, report.max_score)


def test_skipped_cuda_checks_are_said_once_per_kernel_session() -> None:
    script = textwrap.dedent("""
        import torch
        torch.cuda.is_available = lambda: False   # as on a machine without CUDA
        from grader.submission.loader import load
        from grader.run.live import run
        ns = load("solutions/01_standard.ipynb").namespace
        for name in ("ReLU", "Sigmoid", "ReLU"):
            report = run(name, ns)
            print(name, "skipped" in str(report), "skipped" in report._repr_html_(), report.max_score)
    """)
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split("\n")[:3] == ["ReLU True True 18", "Sigmoid False False 17", "ReLU False False 18"], r.stdout
