"""check() in a notebook: the grader's checks and messages on a live namespace, its result object and
displays, the picture of a failure (from structured failure data), and finding the notebook for grade()."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
import torch

from grader.catalog import ACTIVATIONS, quiet_implicit_dim
from grader.feedback import curves
from grader.checks import harness, replay
from grader.core.errors import CheckFailure
from grader.checks.compare import assert_close, locate_elementwise, locate_index
from grader.checks.inputs import edge_input, random_input, upstream_for
from grader.report.model import ExerciseResult
from grader.run.live import run
from grader.submission.loader import load
from grader.core.env import RUNNING
from grader.notebook import check, notebook_path

ROOT = Path(__file__).resolve().parent.parent

NAIVE = {
    "Sigmoid": "def sigmoid(input):\n    return 1 / (1 + torch.exp(-input))\n",
    "Tanh": "def tanh(input):\n    return (torch.exp(input) - torch.exp(-input)) / (torch.exp(input) + torch.exp(-input))\n",
}


def submission(tmp: Path, *extra: str) -> Path:
    """Chapter 1's solution notebook with cells appended, as a student's notebook would redefine names."""
    nb = nbformat.read(ROOT / "solutions" / "01_standard.ipynb", 4)
    nb.cells += [nbformat.v4.new_code_cell(code) for code in extra]
    path = tmp / "mine.ipynb"
    nbformat.write(nb, path)
    return path


def test_check_gives_the_verdicts_and_messages_of_the_command_line(tmp_path: Path) -> None:
    """The same notebook graded by `python -m grader` (sandboxed worker, verdicts judged by the
    parent) and by check() on a namespace that ran its cells: the same checks, verdicts, messages
    and notes, for a correct activation and two wrong ones."""
    path = submission(tmp_path, NAIVE["Sigmoid"], NAIVE["Tanh"])
    report = tmp_path / "r.json"
    r = subprocess.run([sys.executable, "-m", "grader", str(path), "--device", "cpu", "--json", str(report)],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 1, r.stdout + r.stderr
    (graded,) = json.loads(report.read_text())["submissions"]
    namespace = load(path).namespace
    assert [e["name"] for e in graded["exercises"]] == ["ReLU", "Sigmoid", "Tanh"]
    for exercise in graded["exercises"]:
        live = run(exercise["name"], namespace, "cpu")
        cli = [(c["name"], c["passed"], c["message"], c["notes"]) for c in exercise["checks"]]
        assert [(c.name, c.passed, c.message, c.notes) for c in live.checks] == cli
        assert (live.score, live.max_score) == (exercise["score"], exercise["max_score"])
    assert {e["name"]: e["score"] < e["max_score"] for e in graded["exercises"]} == \
        {"ReLU": False, "Sigmoid": True, "Tanh": True}


def test_check_computes_with_the_grader_s_thread_count_and_gives_the_kernel_its_own_back() -> None:
    """As the grader computes (one intra-op thread: the same last digits in messages); after check(),
    the student's torch has the threads it had."""
    namespace = load(ROOT / "solutions" / "01_standard.ipynb").namespace
    seen: list[int] = []
    relu = namespace["relu"]

    def counting_relu(input, inplace=False):
        seen.append(torch.get_num_threads())
        return relu(input, inplace)

    namespace["relu"] = counting_relu
    torch.set_num_threads(2)
    try:
        report = check("ReLU", namespace=namespace, device="cpu")
        assert torch.get_num_threads() == 2
    finally:
        harness.use_grading_threads()
    assert report.score == report.max_score > 0 and set(seen) == {harness.GRADING_THREADS}


_BITS = {torch.float64: torch.int64, torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}


@pytest.mark.parametrize("dtype", list(_BITS), ids=str)
def test_torch_s_vjp_is_autograd_grad_bit_for_bit(dtype: torch.dtype) -> None:
    """Every activation (each case of an elementwise one), on random and on edge inputs (infinities, NaN, zeros, the largest
    values): the same gradients, NaN payloads and signed zeros included, w.r.t. the input and PReLU's
    weight, under ones and under random upstream gradients."""
    compared = 0
    for entry in ACTIVATIONS:
        for case in (entry.cases if entry.elementwise else entry.cases[:1]):  # as the edges check takes them
            edges = edge_input(entry, case, dtype)[0]  # in the layout the case needs (GLU halves a dim)
            inputs = [random_input(entry, dtype, "cpu", 7, tuple(edges.shape)), edges]
            for x in inputs:
                args, kwargs = entry.functional_arguments(case, x)
                x = x.clone().requires_grad_()
                args = tuple(a.detach().clone().requires_grad_() if isinstance(a, torch.Tensor) else a for a in args)
                with quiet_implicit_dim():
                    y = harness.torch_impl(entry).functional()(x, *args, **kwargs)
                wrt = (x,) + tuple(a for a in args if isinstance(a, torch.Tensor))
                up = upstream_for(entry, y, 11)
                expected = torch.autograd.grad(y, wrt, up, retain_graph=True, allow_unused=True)
                for a, b in zip(harness.torch_vjp(y, wrt, up, allow_unused=True), expected, strict=True):
                    assert a.dtype == b.dtype and torch.equal(a.view(_BITS[dtype]), b.view(_BITS[dtype])), \
                        (entry.name, case)
                    compared += 1
    assert compared >= 2 * len(ACTIVATIONS)  # two inputs at least for every activation


def test_the_grader_s_process_does_not_import_sympy(tmp_path: Path) -> None:
    """torch's side of every check (random and ones upstreams, PReLU's parameters) goes without
    torch.autograd.grad's check of its upstream gradient, whose first use imports sympy: a third of
    a second at every start of the grader's process. The worker is another process."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "grader", "solutions/02_relu_variants.ipynb",
                        "solutions/08_normalization.ipynb", "--device", "cpu"], capture_output=True, text=True,
                       cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]
    imported = {line.rsplit("|", 1)[1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert "torch" in imported and "sympy" not in imported


def test_result_object_and_its_displays() -> None:
    namespace = load(ROOT / "solutions" / "01_standard.ipynb").namespace
    exec(NAIVE["Sigmoid"], namespace)
    report = check("Sigmoid", namespace=namespace, device="cpu")
    assert isinstance(report, ExerciseResult)
    failed = [c for c in report.checks if c.passed is False]
    assert failed and report.score == len(report.checks) - len(failed) and report.max_score == len(report.checks)
    edges = next(c for c in report.checks if c.name == "edges")
    assert edges.passed is False and "grad is nan at x=-100.0" in edges.message and "exp(-|x|)" in edges.hint
    first = report.first_failure
    text = str(report)
    assert repr(report) == text
    assert text.splitlines()[-1] == f"{report.score} of {report.max_score} checks pass"
    assert text.index(f"First failure: {first.name}") < text.index(f"Hint: {first.hint}") < text.rindex("checks pass")
    page = report._repr_html_()
    assert page.index("<table") < page.index("Hint:") < page.index(f"{report.score} of {report.max_score} checks pass")
    assert page.count("✗") == len(failed) and page.count("✓") == report.score
    # the picture: the first failure a picture can show, drawn as a PNG
    assert report.figure is not None and report.figure.startswith(b"\x89PNG")
    assert report.figure_caption.startswith("Sigmoid ")


def test_ipython_display_shows_the_table_then_the_picture(monkeypatch) -> None:
    pytest.importorskip("IPython")
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append(obj))
    namespace = load(ROOT / "solutions" / "01_standard.ipynb").namespace
    exec(NAIVE["Sigmoid"], namespace)
    check("Sigmoid", namespace=namespace, device="cpu")._ipython_display_()
    assert [sorted(s) for s in shown] == [["text/html", "text/plain"], ["image/png", "text/plain"]]
    assert shown[0]["text/plain"].endswith("checks pass")


def test_check_with_the_callers_globals_outside_ipython(tmp_path: Path) -> None:
    """A plain Python script: check() reads the definitions of the module that calls it."""
    solution = load(ROOT / "solutions" / "01_standard.ipynb")  # only to find ReLU's source below
    assert "relu" in solution.namespace
    cells = [c for c in nbformat.read(ROOT / "solutions" / "01_standard.ipynb", 4).cells if c.cell_type == "code"]
    script = "\n\n".join(c.source for c in cells if "check" not in c.metadata.get("tags", []))
    script += "\n\nfrom grader.notebook import check\nr = check('ReLU', device='cpu')\nprint(r)\nprint('score', r.score, r.max_score)\n"
    (tmp_path / "mine.py").write_text(script)
    r = subprocess.run([sys.executable, "mine.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ReLU: 18 of 18 checks pass" in r.stdout and "score 18 18" in r.stdout, r.stdout


def test_check_does_nothing_while_the_notebook_is_graded(monkeypatch) -> None:
    monkeypatch.setenv(RUNNING, "1")
    assert check("ReLU", namespace={}) is None


def test_check_names_an_unknown_activation() -> None:
    with pytest.raises(ValueError, match="unknown activation 'Swoosh'"):
        check("Swoosh", namespace={})
    assert run("leaky_relu", {}, "cpu", plot=False).activation == "LeakyReLU"


def test_a_check_that_runs_too_long_fails_with_the_grader_s_message() -> None:
    namespace = load(ROOT / "solutions" / "01_standard.ipynb").namespace
    exec("def relu(input, inplace=False):\n    while True:\n        pass\n", namespace)
    report = run("ReLU", namespace, "cpu", timeout=0.2, plot=False)
    api = report.checks[0]
    assert api.passed is False and api.message == "ReLU api: `relu` did not return within 0.2 s (an infinite loop?)"
    assert "infinite loop" in api.hint


# ---------------------------------------------------------------------------------- failures as data

def test_a_failed_comparison_carries_its_failing_inputs() -> None:
    x = torch.tensor([-100.0, 0.0, 5.0, -1e4, math.nan])
    mine = torch.tensor([math.nan, 0.0, 5.0, math.nan, math.nan])
    with pytest.raises(CheckFailure) as failure:
        assert_close(mine, torch.tensor([0.0, 0.0, 5.0, 0.0, math.nan]), "f", locate_elementwise(x), kind="grad")
    assert str(failure.value) == "f: grad is nan at x=-100.0, torch gives 0.0"
    assert failure.value.inputs == (-100.0, -10000.0) and failure.value.kind == "grad"
    with pytest.raises(CheckFailure) as failure:  # not elementwise: no input value to name
        assert_close(torch.ones(2, 3), torch.zeros(2, 3), "f", locate_index(torch.ones(2, 3)))
    assert failure.value.inputs == ()


def test_the_grid_shows_the_failing_inputs_on_a_log_scale_when_large() -> None:
    xs, log_x = curves.grid([-100.0, -1e4, -math.inf])
    assert log_x and -100.0 in xs and -1e4 in xs and min(xs) <= -2e4 and max(xs) >= 2e4 and 0.0 in xs
    xs, log_x = curves.grid([0.5, 3.0, math.nan])
    assert not log_x and 0.5 in xs and 3.0 in xs and min(xs) <= -1.5 and max(xs) >= 5


def _edges_failure(name: str, x: float) -> tuple:
    from grader.catalog import BY_NAME

    entry = BY_NAME[name]
    failure = CheckFailure("", (x,), "grad")
    failure.case, failure.dtype, failure.form = dict(entry.cases[0]), torch.float32, "functional"
    return entry, failure


def test_the_symlog_axis_is_linear_where_the_curve_bends() -> None:
    """Where f' is still over 1% of its peak (sigmoid' = 1/(4 cosh(x/2)^2): |x| < 2 acosh(10) = 6.0;
    tanh' = 1/cosh(x)^2: |x| < acosh(10) = 3.0), the axis is linear, and not much wider: the linear
    range follows the curve."""
    for name, reach in {"Sigmoid": 2 * math.acosh(10), "Tanh": math.acosh(10)}.items():
        entry, failure = _edges_failure(name, -100.0)
        shown = curves.build(entry, "edges", failure, "cpu", None)
        assert shown.log_x and reach <= shown.linthresh <= 2 * reach, (name, shown.linthresh, reach)
    entry, failure = _edges_failure("ReLU", -1e4)
    assert curves.build(entry, "edges", failure, "cpu", None).linthresh == 1.0  # its only bend is at 0


def test_a_smooth_curve_has_no_corner_where_the_axis_turns_logarithmic() -> None:
    """The torch curve as drawn, in pixels: where the axis changes from linear to log (±linthresh)
    the line turns by at most 3 degrees between neighbouring points (matplotlib's default symlog
    bent the sigmoid there by about 25 degrees)."""
    pytest.importorskip("matplotlib")
    import numpy as np

    from grader.feedback import plots

    for name in ("Sigmoid", "Tanh", "Softplus"):
        entry, failure = _edges_failure(name, -100.0)
        shown = curves.build(entry, "edges", failure, "cpu", None)
        fig = plots.figure(shown)
        fig.canvas.draw()
        for ax in fig.axes[:2]:
            line = ax.lines[0]  # torch's
            xy = line.get_xydata()
            steps = np.diff(ax.transData.transform(xy), axis=0)
            turns = np.abs(np.diff(np.degrees(np.arctan2(steps[:, 1], steps[:, 0]))))
            near = np.abs(np.abs(xy[1:-1, 0]) - shown.linthresh) <= 0.15 * shown.linthresh
            assert near.any() and turns[near].max() < 3, (name, ax.get_title(), turns[near].max())


def test_curves_from_a_tape_are_validated_against_the_catalogue() -> None:
    """What a (possibly forged) worker recorded can only draw a picture of a catalogue case."""
    def entry(**changes) -> list:
        payload = {"activation": "ELU", "check": "edges", "case": {}, "dtype": "float32", "form": "functional",
                   "kind": "grad", "inputs": [100.0], "y": torch.zeros(3, dtype=torch.float64),
                   "g": torch.zeros(3, dtype=torch.float64), "error": ""}
        payload.update(changes)
        return [curves.LABEL, True, replay._portable(payload)]

    (found,) = curves.from_tape([["elu(alpha=1.0) float32", True, None], entry()])
    activation, check_name, failure, (y, g, error) = found
    assert (activation, check_name, failure.case, failure.dtype, failure.inputs) == ("ELU", "edges", {}, torch.float32, (100.0,))
    assert curves.from_tape([entry(case={"alpha": 1e9})]) == []
    assert curves.from_tape([entry(dtype="int64")]) == []
    assert curves.from_tape([entry(activation="Nope")]) == []
    assert curves.from_tape([entry(y=torch.zeros(2, 2))])[0][3][0] is None


def test_watching_collects_the_tapes_the_parent_replays() -> None:
    with replay.watching() as seen, replay.watching(lambda tape: curves.has_curves(tape.entries)) as drawn:
        with replay.using(replay.Tape("replay", [])), replay.using(replay.Tape("direct")):
            pass
        with replay.using(replay.Tape("replay", [["relu() float32", True, None], [curves.LABEL, True, None]])):
            pass
    assert [t.mode for t in seen] == ["replay", "replay"] and len(drawn) == 1
    with replay.using(replay.Tape("replay", [])):  # no longer watched
        pass
    assert len(seen) == 2


# ---------------------------------------------------------------------------------- finding the notebook

def test_notebook_path_from_the_front_end(tmp_path: Path, monkeypatch) -> None:
    nb = tmp_path / "01_standard.ipynb"
    nb.write_text("{}")
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert notebook_path({"__vsc_ipynb_file__": str(nb)}, tmp_path) == nb
    monkeypatch.setenv("JPY_SESSION_NAME", str(nb))  # recent jupyter-server: the full path
    assert notebook_path({}, tmp_path) == nb
    monkeypatch.setenv("JPY_SESSION_NAME", "course/exercises/01_standard.ipynb")  # older: relative to the root
    assert notebook_path({}, tmp_path) == tmp_path / "01_standard.ipynb"


def test_notebook_path_from_what_the_kernel_ran(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    for name, cells in [("a.ipynb", ["x = 1", "y = 2"]), ("b.ipynb", ["x = 1", "z = 3"])]:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
        nbformat.write(nb, tmp_path / name)
    assert notebook_path({"In": ["", "x = 1", "z = 3\n"]}, tmp_path) == tmp_path / "b.ipynb"
    assert notebook_path({"In": ["", "x = 1"]}, tmp_path) is None  # both: ask for the name
    assert notebook_path({"In": ["", "w = 0"]}, tmp_path) is None


def test_grade_without_a_name_it_cannot_find_asks_for_it(tmp_path: Path) -> None:
    code = "from grader.notebook import grade; raise SystemExit(grade().returncode)"
    env = {k: v for k, v in os.environ.items() if k != "JPY_SESSION_NAME"}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "pass its file name" in r.stdout, r.stdout + r.stderr


def test_the_exercises_check_cells_name_their_activations_in_catalogue_order() -> None:
    from grader.catalog import CHAPTERS, by_chapter, chapter_stem

    for chapter in CHAPTERS:
        cells = json.loads((ROOT / "exercises" / f"{chapter_stem(chapter)}.ipynb").read_text())["cells"]
        checks = [c for c in cells if "check" in c["metadata"].get("tags", [])]
        assert [c["source"].splitlines()[-1] for c in checks] == [f'check("{a.name}")' for a in by_chapter(chapter)]
        assert all("raises-exception" not in c["metadata"]["tags"] for c in checks)
        assert all("from grader.notebook import check" in c["source"] for c in checks)


def test_the_import_is_cheap() -> None:
    """Every exercise imports grader.notebook: it must not pull torch or the grader in."""
    code = textwrap.dedent("""
        import sys
        import grader.notebook
        heavy = [m for m in ("torch", "grader.checks.torch_checks", "grader.run.live", "matplotlib", "pytest") if m in sys.modules]
        print(heavy)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.strip() == "[]", r.stdout + r.stderr


def test_an_interrupt_stops_check_although_student_code_swallows_it() -> None:
    """Jupyter's stop button raises KeyboardInterrupt inside student code, where checks turn any
    exception into a failure: check() still stops."""
    namespace = load(ROOT / "solutions" / "01_standard.ipynb").namespace
    exec("import signal\ndef relu(input, inplace=False):\n    signal.raise_signal(signal.SIGINT)\n", namespace)
    with pytest.raises(KeyboardInterrupt):
        run("ReLU", namespace, "cpu", plot=False)
