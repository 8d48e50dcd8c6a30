"""Which checks grade a submission: torch's, or, for a submission that imports mlx, the MLX ones, or,
for one that defines the 8-bit chapter's functions, the quint8 and fp8 ones."""
from __future__ import annotations

from pathlib import Path

from grader.checks import torch_checks as checks, mlx_checks, quantized_checks
from grader.spec.catalog import ACTIVATIONS, Activation
from grader.spec.mlx_catalog import graded as mlx_graded
from grader.spec.quantized_catalog import graded as quantized_graded
from grader.submission.framework import framework_of

ALL_CHECKS: tuple[checks.Check, ...] = checks.CHECKS + mlx_checks.CHECKS + quantized_checks.CHECKS
CHECKS_BY_NAME: dict[str, checks.Check] = {c.name: c for c in ALL_CHECKS}
# graded on the CPU, whatever the devices asked for (MLX's CPU backend; torch's quantized kernels)
CPU_ONLY = {"mlx": mlx_checks.CHECKS, "quantized": quantized_checks.CHECKS}


def checks_for(entry: Activation, devices: list[str], framework: str = "torch") -> list[tuple[checks.Check, str]]:
    if framework in CPU_ONLY:
        return [(c, "cpu") for c in CPU_ONLY[framework] if c.applies(entry)]
    return checks.checks_for(entry, devices)


def graded(path: str | Path, namespace: dict) -> list[Activation]:
    """The activations a submission defines, by the names of its framework."""
    framework = framework_of(path)
    if framework == "mlx":
        return mlx_graded(namespace)
    if framework == "quantized":
        return quantized_graded(namespace)
    return [a for a in ACTIVATIONS if any(name in namespace for name in a.names)]
