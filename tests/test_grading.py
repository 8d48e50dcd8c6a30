"""End to end: the reference solutions earn full marks, the generated exercises earn nothing."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from grader.authoring import exercises
from grader.catalog import ACTIVATIONS, CHAPTERS, chapter_stem
from grader.grading.submissions import grade_many
from grader.report.model import SubmissionResult
from grader.checks.torch_checks import checks_for

ROOT = Path(__file__).resolve().parent.parent
STEMS = [chapter_stem(c) for c in CHAPTERS]


def test_one_solution_and_one_exercise_per_chapter() -> None:
    # and the MLX and 8-bit exercises (tests/test_mlx.py, tests/test_quantized.py), after the torch chapters
    assert sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb")) == STEMS + ["10_mlx", "11_quantized"]
    assert sorted(p.stem for p in (ROOT / "exercises").glob("*.ipynb")) == STEMS + ["10_mlx", "11_quantized"]


@pytest.fixture(scope="module")
def graded() -> dict[str, SubmissionResult]:
    """Every torch chapter's solution and exercise, graded as ``python -m grader FILES...`` grades
    them: one worker (torch imported once), each file in a process of its own with its own limits."""
    paths = [str(ROOT / folder / f"{stem}.ipynb") for folder in ("solutions", "exercises") for stem in STEMS]
    return dict(zip(paths, grade_many(paths, device="cpu")))


@pytest.mark.parametrize("stem", STEMS)
def test_solution_earns_full_marks(stem: str, graded: dict[str, SubmissionResult]) -> None:
    report = graded[str(ROOT / "solutions" / f"{stem}.ipynb")]
    assert not report.error and not report.notes, (report.error, report.notes)
    chapter = stem.split("_", 1)[1]
    assert [e.name for e in report.exercises] == [a.name for a in ACTIVATIONS if a.chapter == chapter]
    failures = [f"{e.name} {r.name}: {r.message}" for e in report.exercises for r in e.checks if r.status != "passed"]
    assert not failures, "\n".join(failures)
    for e in report.exercises:  # every applicable check ran
        entry = next(a for a in ACTIVATIONS if a.name == e.name)
        assert e.max_score == len(checks_for(entry, ["cpu"])) > 10


@pytest.mark.parametrize("stem", STEMS)
def test_exercise_earns_nothing_and_says_not_implemented(stem: str, graded: dict[str, SubmissionResult]) -> None:
    report = graded[str(ROOT / "exercises" / f"{stem}.ipynb")]
    assert report.exercises and report.score == 0 and report.max_score > 0
    for e in report.exercises:
        assert "not implemented" in e.failure_text, e.failure_text


def test_exercises_are_generated_from_solutions() -> None:
    assert exercises.main(["--check"]) == 0, "run `make exercises`"


def _ids(root: Path) -> dict[str, list[str]]:
    import nbformat

    out = {}
    for path in sorted((root / "exercises").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        nbformat.validate(nb)  # 4.5's schema: every cell has a valid id
        assert (nb.nbformat, nb.nbformat_minor) == (4, 5), path.name
        out[path.name] = [c.id for c in nb.cells]
        assert len(set(out[path.name])) == len(nb.cells), path.name
    return out


def test_exercises_have_cell_ids_that_regeneration_keeps(tmp_path: Path) -> None:
    """A front end gives cells without an id a random one and marks the notebook changed as it
    opens: exercises are nbformat 4.5 with ids, the same ids each time they are generated, also
    after a solution cell's text changes; a solution cell's own id is kept."""
    import shutil

    for part in ("solutions", "exercises"):
        shutil.copytree(ROOT / part, tmp_path / part)
    shutil.copy(ROOT / "_config.yml", tmp_path)
    committed = _ids(ROOT)
    assert set(committed) == {p.name for p in (ROOT / "exercises").glob("*.ipynb")}
    for _ in range(2):
        shutil.rmtree(tmp_path / "exercises")
        assert exercises.main(["--root", str(tmp_path)]) == 0
        assert _ids(tmp_path) == committed
    solution = tmp_path / "solutions" / "01_standard.ipynb"
    nb = json.loads(solution.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    code[0]["source"] = "# a comment added\n" + "".join(code[0]["source"])
    code[1]["id"] = "chosen-in-jupyterlab"
    solution.write_text(json.dumps(nb))
    assert exercises.main(["--root", str(tmp_path)]) == 0
    after = _ids(tmp_path)["01_standard.ipynb"]
    changed = [(a, b) for a, b in zip(committed["01_standard.ipynb"], after) if a != b]
    assert len(after) == len(committed["01_standard.ipynb"]) and len(changed) == 1 and \
        changed[0][1] == "chosen-in-jupyterlab", changed


def test_generator_replaces_every_solution_region() -> None:
    src = "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n\nclass A:\n    def g(self):\n        ### BEGIN SOLUTION\n        pass\n        ### END SOLUTION\n"
    out = exercises.strip_solutions(src)
    assert out == "def f(x):\n    raise NotImplementedError\n\nclass A:\n    def g(self):\n        raise NotImplementedError\n"
    with pytest.raises(exercises.MarkerError):
        exercises.strip_solutions("### BEGIN SOLUTION\nx = 1\n")
    with pytest.raises(exercises.MarkerError):
        exercises.strip_solutions("x = 1\n### END SOLUTION\n")


def test_no_solution_code_left_in_exercises() -> None:
    for nb in (ROOT / "exercises").glob("*.ipynb"):
        text = nb.read_text()
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text


@pytest.mark.parametrize("folder", ["solutions", "exercises", "book"])
def test_notebooks_are_committed_without_outputs(folder: str) -> None:
    for path in (ROOT / folder).glob("*.ipynb"):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell["outputs"] and cell["execution_count"] is None, path


def test_cli_solutions_full_marks_and_exercises_exit_1(tmp_path: Path) -> None:
    """The issue's acceptance commands, through the real entry point."""
    run = lambda *a: subprocess.run([sys.executable, "-m", "grader", *a, "--device", "cpu"],
                                    capture_output=True, text=True, cwd=ROOT, timeout=600)
    ok = run("solutions/01_standard.ipynb", "solutions/07_gating.ipynb", "--json", str(tmp_path / "r.json"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    assert [s["score"] == s["max_score"] > 0 for s in data["submissions"]] == [True, True]
    bad = run("exercises/07_gating.ipynb")
    assert bad.returncode == 1 and "not implemented" in bad.stdout, bad.stdout + bad.stderr
