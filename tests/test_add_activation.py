"""An instructor adds an activation torch does not have, following README.md's "Add an activation":
a reference in grader/references.py, one catalogue entry, one solution cell; then the exercise is
generated and the solution graded with the real command line. All in a temporary copy of the
repository (its design chapter trimmed to the set-up cell, so that only the new activation is graded)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from grader import exercises
from grader.catalog import chapter_stem
from grader.exercises import BEGIN, END

ROOT = Path(__file__).resolve().parent.parent

REFERENCE = '''

def bipolar_sigmoid(input: Tensor) -> Tensor:
    r"""The bipolar sigmoid: :math:`(1 - e^{-x}) / (1 + e^{-x}) = \\tanh(x / 2)`."""
    handled = _protocol(bipolar_sigmoid, input)
    if handled is not None:
        return handled
    return _down(input, torch.tanh(_up(input) / 2))


class BipolarSigmoid(nn.Module):
    def forward(self, input: Tensor) -> Tensor:
        return bipolar_sigmoid(input)
'''

ENTRY = '''    Activation(
        "BipolarSigmoid", "design", "bipolar_sigmoid",
        reference=references.bipolar_sigmoid, reference_module=references.BipolarSigmoid,
    ),
'''

SOLUTION = f'''def bipolar_sigmoid(input: Tensor) -> Tensor:
    """tanh(x / 2), elementwise."""
    {BEGIN}
    return _finish(input, torch.tanh(_compute(input) / 2))
    {END}


class BipolarSigmoidFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input: Tensor) -> Tensor:
        {BEGIN}
        y = bipolar_sigmoid(input)
        ctx.save_for_backward(y)
        return y
        {END}

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        {BEGIN}
        (y,) = ctx.saved_tensors
        y, g = _compute(y), _compute(grad_output)
        return _finish(grad_output, g * (1 - y * y) / 2)
        {END}


class BipolarSigmoid(nn.Module):
    def forward(self, input: Tensor) -> Tensor:
        {BEGIN}
        return bipolar_sigmoid(input)
        {END}'''


def _copy_of_the_course(tmp: Path) -> Path:
    repo = tmp / "course"
    shutil.copytree(ROOT / "grader", repo / "grader", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "_config.yml", repo / "_config.yml")
    stem = chapter_stem("design")
    nb = json.loads((ROOT / "solutions" / f"{stem}.ipynb").read_text(encoding="utf-8"))
    nb["cells"] = nb["cells"][:2]  # the chapter's introduction and its set-up code cell
    (repo / "solutions").mkdir()
    (repo / "solutions" / f"{stem}.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    return repo


def _run(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(repo)}
    return subprocess.run([sys.executable, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=600)


def test_an_instructor_adds_an_activation(tmp_path: Path) -> None:
    repo = _copy_of_the_course(tmp_path)
    # 1. the reference, 2. the catalogue entry (appended to ACTIVATIONS), 3. the solution cell
    with open(repo / "grader" / "references.py", "a", encoding="utf-8") as f:
        f.write(REFERENCE)
    catalog = repo / "grader" / "catalog.py"
    text = catalog.read_text(encoding="utf-8")
    assert text.count("\n)\n\nBY_NAME") == 1
    catalog.write_text(text.replace("\n)\n\nBY_NAME", "\n" + ENTRY + ")\n\nBY_NAME"), encoding="utf-8")
    solution = repo / "solutions" / f"{chapter_stem('design')}.ipynb"
    nb = json.loads(solution.read_text(encoding="utf-8"))
    nb["cells"].append({"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                        "source": SOLUTION})
    solution.write_text(json.dumps(nb), encoding="utf-8")

    # the generator (`make exercises`) turns the new cell into stubs
    assert exercises.main(["--root", str(repo)]) == 0
    exercise = json.loads((repo / "exercises" / solution.name).read_text(encoding="utf-8"))
    stub = next("".join(c["source"]) for c in exercise["cells"] if "def bipolar_sigmoid" in "".join(c["source"]))
    assert stub.count("raise NotImplementedError") == 4 and "tanh" not in stub.split('"""', 2)[2]

    # the grader grades it against the new reference: the solution gets full marks on every applicable
    # check, and a wrong constant loses the values (so the reference is really what it is compared with)
    nb["cells"][-1]["source"] = SOLUTION.replace("/ 2))", "/ 3))")
    wrong = tmp_path / "wrong.ipynb"
    wrong.write_text(json.dumps(nb), encoding="utf-8")
    graded = _run(repo, "-m", "grader", str(solution), str(wrong), "--device", "cpu", "--json", str(tmp_path / "r.json"))
    assert graded.returncode == 1, graded.stdout + graded.stderr
    right_report, wrong_report = (s["exercises"] for s in json.loads((tmp_path / "r.json").read_text())["submissions"])
    assert [e["name"] for e in right_report] == [e["name"] for e in wrong_report] == ["BipolarSigmoid"]
    assert right_report[0]["score"] == right_report[0]["max_score"] > 10
    assert {c["name"] for c in right_report[0]["checks"]} >= {"api", "values[float16]", "edges", "module",
                                                              "function", "gradcheck", "forbidden"}
    failed = {c["name"] for c in wrong_report[0]["checks"] if c["passed"] is False}
    assert "values[float64]" in failed and "api" not in failed, failed
