"""check() in the MLX and 8-bit notebooks: on a namespace that ran a solution notebook's cells (as a
kernel has), it gives full marks; on a wrong MLX or 8-bit activation it names the failing check, with
the grader's verdicts and messages; ``check("ReLU")`` means the notebook's own exercise, and an
exercise's key (``"MLX ReLU"``, ``"Quantized ReLU6"``) is accepted in any notebook."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader.notebook import check
from grader.report.model import ExerciseResult
from grader.spec import mlx_catalog
from grader.spec.assignment import EXERCISES
from grader.spec.mlx_catalog import NO_MLX, available
from grader.submission.loader import load

ROOT = Path(__file__).resolve().parent.parent
MLX_SOLUTION, EIGHT_BIT_SOLUTION = ROOT / "solutions" / "10_mlx.ipynb", ROOT / "solutions" / "11_quantized.ipynb"
needs_mlx = pytest.mark.skipif(not available(), reason=NO_MLX)

WRONG_SIGMOID = "def sigmoid(x):\n    return 1 / (1 + mx.exp(-1.001 * x))"  # tests/test_mlx.py's
KERNEL_RELU6 = "def quantized_relu6(input):\n    return F.relu6(input)"  # tests/test_quantized.py's


@pytest.fixture(scope="module")
def mlx_namespace() -> dict:
    return load(MLX_SOLUTION).namespace


@pytest.fixture(scope="module")
def eight_bit_namespace() -> dict:
    return load(EIGHT_BIT_SOLUTION).namespace


def _run(name: str, namespace: dict) -> ExerciseResult:
    return check(name, namespace=namespace, device="cpu")


def _failures(report: ExerciseResult) -> list[str]:
    return [f"{c.name}: {c.message}" for c in report.checks if c.passed is False]


@needs_mlx
def test_full_marks_on_the_mlx_solution(mlx_namespace: dict) -> None:
    for key in [e.key for e in EXERCISES if e.framework == "mlx"]:
        report = _run(key, mlx_namespace)
        assert report.name == key and report.max_score >= 10, (key, str(report))
        assert report.score == report.max_score, (key, _failures(report))
        assert all(c.name.startswith("mlx ") for c in report.checks)


@needs_mlx
def test_in_the_mlx_notebook_an_activation_s_name_is_its_mlx_exercise(mlx_namespace: dict) -> None:
    for name in ("ReLU", "relu", "MLX ReLU"):
        report = _run(name, mlx_namespace)
        assert report.name == "MLX ReLU" and [c.name for c in report.checks][0] == "mlx api", name
        assert report.score == report.max_score
    with pytest.raises(ValueError, match="unknown mlx exercise 'Swish'; one of: MLX ReLU, MLX Sigmoid"):
        _run("Swish", mlx_namespace)


def test_full_marks_on_the_8_bit_solution(eight_bit_namespace: dict) -> None:
    keys = [e.key for e in EXERCISES if e.framework == "quantized"]
    assert keys[0] == "Quantized ReLU6" and "FP8 GELU" in keys
    for key in keys:
        report = _run(key, eight_bit_namespace)
        assert report.name == key and report.max_score >= 4, (key, str(report))
        assert report.score == report.max_score, (key, _failures(report))
    for name in ("ReLU6", "quantized_relu6"):
        assert _run(name, eight_bit_namespace).name == "Quantized ReLU6"


@needs_mlx
def test_a_wrong_mlx_activation_names_its_failing_check(mlx_namespace: dict) -> None:
    namespace = dict(mlx_namespace)
    exec(WRONG_SIGMOID, namespace)
    report = _run("Sigmoid", namespace)
    assert report.name == "MLX Sigmoid"
    failure = report.first_failure
    assert failure is not None and failure.name == "mlx values[float32]" and "torch gives" in failure.message
    assert report.score < report.max_score and "First failure: mlx values[float32]" in str(report)
    assert next(c for c in report.checks if c.name == "mlx api").passed is True
    assert report.figure is None  # the curves draw torch's forms only: no picture, no error


def test_a_wrong_8_bit_activation_names_its_failing_check_and_hint(eight_bit_namespace: dict) -> None:
    namespace = dict(eight_bit_namespace)
    exec(KERNEL_RELU6, namespace)
    report = _run("Quantized ReLU6", namespace)
    failed = {c.name: c for c in report.checks if c.passed is False}
    assert list(failed) == ["quint8 forbidden"], _failures(report)
    assert "calls torch's own aten.hardtanh" in failed["quint8 forbidden"].message
    assert failed["quint8 forbidden"].hint and "float primitives" in failed["quint8 forbidden"].hint
    assert f"Hint: {failed['quint8 forbidden'].hint}" in str(report)


def test_an_exercise_key_is_accepted_in_any_notebook() -> None:
    torch_namespace = load(ROOT / "solutions" / "01_standard.ipynb").namespace
    report = _run("Quantized ReLU6", torch_namespace)
    assert report.name == "Quantized ReLU6" and report.first_failure.name == "quint8 api"
    assert "quantized_relu6 is not defined" in report.first_failure.message
    assert _run("ReLU", torch_namespace).score == 18  # torch's ReLU, as before


def test_without_mlx_the_mlx_checks_are_skipped_with_the_reason(monkeypatch) -> None:
    monkeypatch.setattr(mlx_catalog, "available", lambda: False)
    report = _run("MLX ReLU", {})
    assert report.checks and all(c.passed is None and c.message == NO_MLX for c in report.checks)
    assert (report.score, report.max_score) == (0, 0) and NO_MLX in str(report)


@needs_mlx
def test_check_gives_the_verdicts_and_messages_of_the_command_line(tmp_path: Path) -> None:
    """An MLX notebook with a right ReLU and a wrong Sigmoid, graded by `python -m grader` (worker,
    verdicts judged by the parent from its tape) and by check(): the same checks, verdicts, messages."""
    solution = nbformat.read(MLX_SOLUTION, 4)
    code = [c for c in solution.cells if c.cell_type == "code" and "check" not in c.metadata.get("tags", [])]
    keep = [code[0]] + [c for c in code if c.source.startswith(("def relu(", "def sigmoid("))]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c.source) for c in keep] + [nbformat.v4.new_code_cell(WRONG_SIGMOID)]
    path = tmp_path / "mine.ipynb"
    nbformat.write(nb, path)
    report = tmp_path / "r.json"
    r = subprocess.run([sys.executable, "-m", "grader", str(path), "--device", "cpu", "--json", str(report)],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 1, r.stdout + r.stderr
    (graded,) = json.loads(report.read_text())["submissions"]
    assert [e["name"] for e in graded["exercises"]] == ["MLX ReLU", "MLX Sigmoid"]
    namespace = load(path).namespace
    for exercise in graded["exercises"]:
        live = _run(exercise["name"], namespace)
        cli = [(c["name"], c["passed"], c["message"], c["notes"]) for c in exercise["checks"]]
        assert [(c.name, c.passed, c.message, c.notes) for c in live.checks] == cli
        assert (live.score, live.max_score) == (exercise["score"], exercise["max_score"])


@pytest.mark.parametrize("stem,framework", [("10_mlx", "mlx"), ("11_quantized", "quantized")])
def test_the_mlx_and_8_bit_exercises_check_cells_name_their_exercises_in_course_order(stem: str, framework: str) -> None:
    cells = json.loads((ROOT / "exercises" / f"{stem}.ipynb").read_text())["cells"]
    checks = [c for c in cells if "check" in c["metadata"].get("tags", [])]
    calls = [c for c in checks if "from grader.notebook import check" in c["source"]]
    assert [c["source"].splitlines()[-1] for c in calls] == \
        [f'check("{e.key}")' for e in EXERCISES if e.framework == framework]
    assert all("raises-exception" not in c["metadata"]["tags"] for c in calls)
    # a quick test of what is no exercise (helpers, every stub at once) calls the stubs: it raises
    assert all("raises-exception" in c["metadata"]["tags"] for c in checks if c not in calls)


def _in_a_kernel(solution: Path, keys: list[str], tmp: Path) -> dict[str, str]:
    """The solution notebook with a check() cell per exercise at its end, run by a Jupyter kernel:
    each check cell's text, by the exercise it checks."""
    import nbclient

    from grader.authoring.exercises import check_source

    nb = nbformat.read(solution, 4)
    nb.cells = [c for c in nb.cells if "check" not in c.metadata.get("tags", [])]
    nb.cells += [nbformat.v4.new_code_cell(check_source(k)) for k in keys]
    nbclient.NotebookClient(nb, resources={"metadata": {"path": str(tmp)}}, timeout=900, allow_errors=False).execute()
    texts = ["\n".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in c.outputs)
             for c in nb.cells[-len(keys):]]
    return dict(zip(keys, texts))


@pytest.mark.parametrize("stem,framework", [
    pytest.param("10_mlx", "mlx", marks=needs_mlx), ("11_quantized", "quantized")])
def test_in_a_kernel_check_gives_full_marks_on_the_solution(stem: str, framework: str, tmp_path: Path) -> None:
    keys = [e.key for e in EXERCISES if e.framework == framework]
    for key, text in _in_a_kernel(ROOT / "solutions" / f"{stem}.ipynb", keys, tmp_path).items():
        first = text.splitlines()[0] if text else ""
        n = first.rsplit(": ", 1)[-1].split(" of ")[0] if first.startswith(f"{key}: ") else "?"
        assert first == f"{key}: {n} of {n} checks pass" and int(n) >= 4 and "✗" not in text, (key, text)
