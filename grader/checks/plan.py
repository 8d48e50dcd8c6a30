"""What is graded in a file, decided by the parent from its own reading of the file
(grader/submission/reading.py), the catalogue, the assignment and this machine: the exercises, every
(activation, check, device) the worker must run (each counts once), and the checks the parent
settles itself (CUDA without CUDA, MLX without MLX). The maximum score is the plan's. The worker is
handed the plan and runs it; whatever it sends that the plan does not hold is ignored.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from grader.checks.registry import checks_for
from grader.core.results import DEVICES, NO_CUDA, CheckResult, check_label
from grader.spec.assignment import BY_KEY, WHOLE_COURSE, Assignment, exercise_key
from grader.spec.catalog import BY_NAME, Activation
from grader.spec.frameworks import MLX, framework as framework_named
from grader.spec.mlx_catalog import NO_MLX
from grader.submission.framework import framework_of_file
from grader.submission.reading import SubmissionFile


@dataclass(frozen=True)
class PlannedCheck:
    activation: str
    check: str
    device: str

    @property
    def label(self) -> str:
        return check_label(self.check, self.device)

    @property
    def key(self) -> tuple[str, str]:
        """How results are matched to the plan: the activation and the check's label."""
        return self.activation, self.label

    def as_list(self) -> list[str]:
        return [self.activation, self.check, self.device]


@dataclass
class Plan:
    framework: str
    activations: list[str]  # graded, in the catalogue's order
    run: list[PlannedCheck]  # for the worker to run, in this order
    settled: list[CheckResult]  # decided here: never asked of the worker
    outside: list[str] = field(default_factory=list)  # defined, but not of the assignment: not graded

    @property
    def maximum(self) -> int:
        return len(self.run)

    def checks_of(self, activation: str) -> list[PlannedCheck]:
        return [p for p in self.run if p.activation == activation]

    def without(self, activations: set[str]) -> list[PlannedCheck]:
        """The checks still to run once ``activations`` are done (or given up on)."""
        return [p for p in self.run if p.activation not in activations]


def defined_activations(names: frozenset[str] | set[str], framework: str) -> list[Activation]:
    """The activations whose names (those of ``framework``'s chapter) are among ``names``."""
    return framework_named(framework).graded(names)


def plan(submission: SubmissionFile, device: str = "all", assignment: Assignment = WHOLE_COURSE,
         cuda: bool = False, mlx: bool = True) -> Plan:
    """The grading of ``submission`` (read by the parent): ``device`` as the command line says it,
    ``cuda`` and ``mlx`` whether this machine has them."""
    framework = framework_of_file(submission)
    defined = defined_activations(submission.defined, framework)
    graded = [a.name for a in defined if assignment.includes(a.name, framework)]
    outside = [a.name for a in defined if not assignment.includes(a.name, framework)]
    run: list[PlannedCheck] = []
    settled: list[CheckResult] = []
    for name in graded:
        for check, dev in checks_for(BY_NAME[name], DEVICES[device], framework):
            if framework_named(framework) is MLX and not mlx:
                settled.append(CheckResult(name, check.name, dev, "skipped", NO_MLX))
            elif dev == "cuda" and not cuda:
                settled.append(CheckResult(name, check.name, dev, "skipped", NO_CUDA))
            else:
                run.append(PlannedCheck(name, check.name, dev))
    return Plan(framework, graded, run, settled, outside)


def outside_note(plan_: Plan, assignment: Assignment) -> str:
    """The note for exercises a file defines outside the assignment, or ""."""
    if not plan_.outside:
        return ""
    keys = [exercise_key(n, plan_.framework) for n in plan_.outside]
    chapters = sorted({BY_KEY[k].chapter for k in keys if k in BY_KEY})
    return (f"not graded: {', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''} of "
            f"{', '.join(chapters) or 'no chapter'}, outside this assignment ({assignment.describe()})")


def outside_chapters(plan_: Plan) -> list[str]:
    keys = [exercise_key(n, plan_.framework) for n in plan_.outside]
    return sorted({BY_KEY[k].chapter for k in keys if k in BY_KEY})
