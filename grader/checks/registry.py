"""Which checks grade a submission: torch's, or, for a submission that imports mlx, the MLX ones, or,
for one that defines the 8-bit chapter's functions, the quint8 and fp8 ones. A framework's checks
are kept here, not on its :class:`~grader.spec.frameworks.Framework`: the checks sit above the
catalogue that defines the frameworks."""
from __future__ import annotations

from pathlib import Path

from grader.checks import torch_checks as checks, mlx_checks, quantized_checks
from grader.checks.base import Check
from grader.spec.catalog import Activation
from grader.spec.frameworks import MLX, QUANTIZED, TORCH, Framework, framework as framework_named
from grader.submission.framework import framework_of

CHECKS_OF: dict[Framework, tuple[Check, ...]] = {
    TORCH: checks.CHECKS, MLX: mlx_checks.CHECKS, QUANTIZED: quantized_checks.CHECKS}
ALL_CHECKS: tuple[Check, ...] = checks.CHECKS + mlx_checks.CHECKS + quantized_checks.CHECKS
CHECKS_BY_NAME: dict[str, Check] = {c.name: c for c in ALL_CHECKS}
_FRAMEWORK_OF_CHECK: dict[str, Framework] = {c.name: f for f, cs in CHECKS_OF.items() for c in cs}
# graded on the CPU, whatever the devices asked for (MLX's CPU backend; torch's quantized kernels)
CPU_ONLY = {f.name: cs for f, cs in CHECKS_OF.items() if f.cpu_only}


def framework_of_check(check: Check) -> Framework:
    """The framework whose chapter a check grades."""
    return _FRAMEWORK_OF_CHECK[check.name]


def checks_for(entry: Activation, devices: list[str], framework: str | Framework = TORCH) -> list[tuple[Check, str]]:
    framework = framework_named(framework)
    if framework.cpu_only:
        return [(c, "cpu") for c in CHECKS_OF[framework] if c.applies(entry)]
    return checks.checks_for(entry, devices)


def graded(path: str | Path, namespace: dict) -> list[Activation]:
    """The activations a submission defines, by the names of its framework."""
    return framework_named(framework_of(path)).graded(namespace)
