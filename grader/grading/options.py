"""What a grading is asked to do, as data: the commands build these from their arguments
(grader/grading/arguments.py declares and checks the arguments), the service below them reads them.

:class:`GradingOptions` is how each file is graded, and so part of what makes two files "the same
grading" (:mod:`grader.grading.dedup`); :class:`BatchOptions` is a whole class's run."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from grader.core import limits
from grader.spec.assignment import WHOLE_COURSE, Assignment


@dataclass(frozen=True)
class GradingOptions:
    device: str = "all"
    check_timeout: float = limits.CHECK_TIMEOUT
    memory: int = limits.MEMORY  # bytes
    hide: tuple[str, ...] = ()  # absolute folders no submission may read
    assignment: Assignment = WHOLE_COURSE


@dataclass(frozen=True)
class BatchOptions:
    submissions: Path  # absolute: one subfolder or loose file per student
    csv: str  # the gradebook
    json: str | None = None  # the full report, also what a re-run resumes from
    jobs: int = 1  # students graded at once
    force: bool = False  # regrade every student, even unchanged ones
    strip_prefix: str = ""
    shard: tuple[int, int] | None = None  # (K, N): the K-th of N slices of the class
    fetched: dict[str, dict] | None = None  # a folder's repository and commit (grader.grading.fetch)
    grading: GradingOptions = field(default_factory=GradingOptions)
