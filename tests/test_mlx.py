"""The MLX exercises: the solutions earn full marks, the exercise nothing, a submission that wraps
mlx.nn loses marks where mlx.nn's conventions are not torch's, each MLX check fails a wrong
implementation, and without MLX the notebook and its grading are skipped with the reason."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from grader.catalog import BY_NAME
from grader.grading.submissions import grade
from grader.core.errors import CheckFailure
from grader.checks.harness import Impl
from grader.checks.registry import checks_for
from grader.submission.loader import load
from grader.spec.mlx_catalog import NO_MLX, PORTS, available
from grader.checks.mlx_checks import CHECKS

ROOT = Path(__file__).resolve().parent.parent
SOLUTION, EXERCISE = ROOT / "solutions" / "10_mlx.ipynb", ROOT / "exercises" / "10_mlx.ipynb"
needs_mlx = pytest.mark.skipif(not available(), reason=NO_MLX)
BY_CHECK = {c.name: c for c in CHECKS}

# every form taken from mlx.nn; where mlx.nn lacks torch's parameters, they are accepted and ignored
WRAPPED = '''
import mlx.core as mx
import mlx.nn as nn

relu, tanh, leaky_relu, prelu, relu6, elu, celu, selu = nn.relu, nn.tanh, nn.leaky_relu, nn.prelu, nn.relu6, nn.elu, nn.celu, nn.selu
hard_tanh = nn.hard_tanh
ReLU, Tanh, LeakyReLU, PReLU, ReLU6, ELU, CELU, SELU = nn.ReLU, nn.Tanh, nn.LeakyReLU, nn.PReLU, nn.ReLU6, nn.ELU, nn.CELU, nn.SELU


class HardTanh(nn.Module):
    def __init__(self, min_val=-1.0, max_val=1.0):
        super().__init__()
        self.min_val, self.max_val = min_val, max_val

    def __call__(self, x):
        return nn.hard_tanh(x, self.min_val, self.max_val)
'''


@needs_mlx
def test_mlx_solution_earns_full_marks() -> None:
    report = grade(str(SOLUTION), device="cpu")
    assert not report.error and not report.notes, (report.error, report.notes)
    # the MLX chapter's exercises, under keys of their own (not the torch chapters' ReLU)
    assert [e.name for e in report.exercises] == [f"MLX {p.entry}" for p in PORTS]
    assert [e.activation for e in report.exercises] == [p.entry for p in PORTS]
    failures = [f"{e.name} {r.name}: {r.message}" for e in report.exercises for r in e.checks if r.status != "passed"]
    assert not failures, "\n".join(failures)
    for e in report.exercises:  # every MLX check ran, and only MLX checks
        assert e.max_score == len(checks_for(BY_NAME[e.activation], ["cpu"], "mlx")) >= 10
        assert all(r.check.startswith("mlx ") for r in e.checks)


@needs_mlx
def test_mlx_exercise_earns_nothing_and_says_not_implemented() -> None:
    report = grade(str(EXERCISE), device="cpu")
    assert len(report.exercises) == len(PORTS) and report.score == 0 and report.max_score > 0
    for e in report.exercises:
        assert "not implemented" in e.failure_text, e.failure_text


@needs_mlx
def test_wrapping_mlx_nn_loses_marks_where_mlx_nn_differs_from_torch(tmp_path: Path) -> None:
    path = tmp_path / "wrapped.py"
    path.write_text(WRAPPED)
    report = grade(str(path), device="cpu")
    results = {(e.activation, r.check): r for e in report.exercises for r in e.checks}
    failed = {key for key, r in results.items() if r.status == "failed"}
    for e in report.exercises:  # calling mlx.nn is never writing it
        assert "calls mlx.nn." in results[(e.activation, "mlx forbidden")].message
    # where mlx.nn agrees with torch (float32, no half-precision arithmetic), only the forbidden check
    for name in ("ReLU", "Tanh", "ReLU6", "Hardtanh"):
        assert {c for a, c in failed if a == name} == {"mlx forbidden"}, name
    expected = {
        ("LeakyReLU", "mlx values[float32]"): "for a slope > 1",
        ("LeakyReLU", "mlx module"): "for a slope > 1",
        ("CELU", "mlx edges"): "its gradient at 0 is not torch's (1)",
        ("PReLU", "mlx kinks"): "its gradient at 0 is not torch's (alpha)",
        ("ELU", "mlx edges"): "overflows above 88 in float32",
        ("SELU", "mlx values[bfloat16]"): "rounds its constants",
    }
    for key, why in expected.items():
        assert key in failed and "mlx.nn." in results[key].message and why in results[key].message, \
            (key, results[key].message)


def _namespace(extra: str) -> dict:
    sub = load(SOLUTION)
    assert not sub.notes, sub.notes
    exec(compile(extra, "<wrong>", "exec"), sub.namespace)
    return sub.namespace


WRONG = [  # (activation, check, wrong implementation, words of the message)
    ("LeakyReLU", "mlx api", "def leaky_relu(x, negative_slope=0.02):\n    return mx.where(x > 0, x, x * negative_slope)",
     "expected leaky_relu(x, negative_slope=0.01)"),
    ("Sigmoid", "mlx values[float32]", "def sigmoid(x):\n    return 1 / (1 + mx.exp(-1.001 * x))", "torch gives"),
    ("Sigmoid", "mlx values[float16]", "def sigmoid(x):\n    return 1 / (1 + mx.exp(-x))", "round once"),
    ("Sigmoid", "mlx values[bfloat16]", "def sigmoid(x):\n    return 1 / (1 + mx.exp(-x))", "round once"),
    ("ReLU", "mlx grad[float32]", "def relu(x):\n    return mx.where(x <= 0, 0, mx.stop_gradient(x))", "grad is 0"),
    ("ReLU", "mlx grad[float16]", "def relu(x):\n    return mx.where(x <= 0, 0, mx.stop_gradient(x))", "grad is 0"),
    ("ReLU", "mlx grad[bfloat16]", "def relu(x):\n    return mx.where(x <= 0, 0, mx.stop_gradient(x))", "grad is 0"),
    ("Softshrink", "mlx edges",
     "def softshrink(x, lambd=0.5):\n    return mx.where(x > lambd, x - lambd, mx.where(x < -lambd, x + lambd, 0))",
     "at x=nan"),
    ("PReLU", "mlx kinks", "def prelu(x, alpha):\n    a = alpha.reshape((-1,) + (1,) * (x.ndim - 2)) if alpha.size > 1 else alpha\n"
     "    return mx.maximum(0, x) + a * mx.minimum(0, x)", "a kink"),
    ("PReLU", "mlx module", "class PReLU(nn.Module):\n    def __init__(self, num_parameters=1, init=0.25):\n"
     "        super().__init__()\n        self.weight = [init] * num_parameters\n"
     "    def __call__(self, x):\n        return prelu(x, mx.array(self.weight))", "parameters() holds nothing"),
    ("RReLU", "mlx random", "def rrelu(x, lower=1.0 / 8, upper=1.0 / 3, training=False):\n"
     "    return mx.where(x > 0, x, x * (lower + upper) / 2)", "not uniform"),
    ("ReLU", "mlx forbidden", "relu = nn.relu", "calls mlx.nn.relu"),
    ("Tanh", "mlx forbidden", "def tanh(x):\n    return mx.tanh(x)", "calls mlx.core.tanh"),
    ("ReLU", "mlx vectorised", "def relu(x):\n    flat = x.reshape(-1)\n"
     "    return mx.stack([mx.where(flat[i] <= 0, 0, flat[i]) for i in range(flat.size)]).reshape(x.shape)",
     "a Python loop"),
]


@needs_mlx
@pytest.mark.parametrize("activation,check,code,words", WRONG, ids=[f"{a}-{c}" for a, c, _, _ in WRONG])
def test_each_mlx_check_fails_a_wrong_implementation(activation: str, check: str, code: str, words: str) -> None:
    impl = Impl(BY_NAME[activation], _namespace(code))
    with pytest.raises(CheckFailure, match=None) as info:
        BY_CHECK[check].run(impl, "cpu")
    assert words in str(info.value), str(info.value)
    # and the reference passes it
    BY_CHECK[check].run(Impl(BY_NAME[activation], _namespace("")), "cpu")


def test_every_mlx_check_is_proven() -> None:
    assert {c for _, c, _, _ in WRONG} | {"mlx values[float32]"} >= set(BY_CHECK)


def _without_mlx(tmp_path: Path) -> dict:
    fake = tmp_path / "fake" / "mlx"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise ImportError("no MLX wheel for this platform")\n')
    import os

    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(fake.parent), str(ROOT)]))


def test_without_mlx_grading_is_skipped_with_the_reason(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "grader", str(SOLUTION), "--device", "cpu"], cwd=ROOT,
                       env=_without_mlx(tmp_path), capture_output=True, text=True, timeout=600)
    assert r.returncode == 1 and NO_MLX in r.stdout, r.stdout + r.stderr
    assert "0/0" in r.stdout and "FAIL" not in r.stdout


def test_without_mlx_the_notebooks_nbval_run_is_skipped(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", "-rs", "-q", str(SOLUTION), str(EXERCISE)],
                       cwd=ROOT, env=_without_mlx(tmp_path), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "this MLX notebook is skipped" in r.stdout and " passed" not in r.stdout, \
        r.stdout[-2000:] + r.stderr[-2000:]


def test_slopes_drawn_in_float32_may_reach_the_float32_value_of_a_bound() -> None:
    """mx.random.uniform(0.1, 0.3) draws in float32, where 0.3 is 0.30000001: a correct RReLU's slope,
    not one outside [lower, upper]. A slope past that rounding still fails."""
    from grader.checks.shared_checks import check_slopes

    n = 20000
    gen = torch.Generator().manual_seed(0)
    x = torch.cat([-torch.rand(n, dtype=torch.float64, generator=gen) - 0.5, torch.tensor([2.0, 0.5], dtype=torch.float64)])
    slopes = (torch.rand(n, generator=gen) * 0.2 + 0.1).to(torch.float32)
    slopes[7] = torch.tensor(0.3, dtype=torch.float32)  # 0.30000001192...
    y = torch.cat([x[:n] * slopes.double(), x[n:]])
    check_slopes(y, x, torch.cat([slopes.double(), torch.ones(2, dtype=torch.float64)]), 0.1, 0.3, "rrelu", n)
    slopes[7] = 0.3 + 1e-6
    y = torch.cat([x[:n] * slopes.double(), x[n:]])
    with pytest.raises(CheckFailure, match="a negative slope is 0.300001, outside"):
        check_slopes(y, x, torch.cat([slopes.double(), torch.ones(2, dtype=torch.float64)]), 0.1, 0.3, "rrelu", n)
