"""What every check is, whichever framework it grades: torch's (grader/checks/torch_checks.py), MLX's
(grader/checks/mlx_checks.py; with torch's, the bodies of grader/checks/shared_checks.py run through
each framework's adapter) and the 8-bit chapter's (grader/checks/quantized_checks.py) are all
:class:`Check`\\ s, run by one runner (grader/checks/runner.py) and listed by framework in
grader/checks/registry.py."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from grader.checks.harness import Impl, Notes
from grader.spec.catalog import Activation


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Impl, str], Notes]
    per_device: bool = True  # also run on CUDA
    applies: Callable[[Activation], bool] = lambda entry: True
