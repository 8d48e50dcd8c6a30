"""Scores and reports: a table for people, JSON for gradebooks."""
from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path

import torch

from grader import __version__
from grader.spec.assignment import BY_KEY, EXERCISES, WHOLE_COURSE, Assignment, activation_of, exercise_key
from grader.checks.registry import ALL_CHECKS
from grader.core.results import CheckResult
from grader.core.files import write_atomic

_ORDER = {c.name: i for i, c in enumerate(ALL_CHECKS)}
_KEY_ORDER = {e.key: i for i, e in enumerate(EXERCISES)}


@dataclass
class Exercise:
    name: str  # the exercise's key (grader/spec/assignment.py): "ReLU", "MLX ReLU"
    results: list[CheckResult]

    @property
    def activation(self) -> str:
        """The catalogue entry the exercise is graded against."""
        return activation_of(self.name)

    @property
    def graded(self) -> list[CheckResult]:
        return [r for r in self.results if r.status != "skipped"]

    @property
    def score(self) -> int:
        return sum(r.status == "passed" for r in self.results)

    @property
    def max_score(self) -> int:
        return len(self.graded)

    @property
    def notes(self) -> list[str]:
        return [f"{r.name}: {n}" for r in self.results for n in r.notes]

    @property
    def first_failure(self) -> str:
        failed = [r for r in self.results if r.status == "failed"]
        return f"{failed[0].name}: {failed[0].message}" if failed else ""


@dataclass
class SubmissionReport:
    path: str
    sha256: str = ""
    exercises: list[Exercise] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""  # set when the file could not be graded at all
    # chapters of exercises the file defines outside the assignment it was graded for (not graded)
    other_chapters: list[str] = field(default_factory=list)
    # graded cleanly (grader/run/sandbox.py's Outcome.clean): may stand for an identical file; never written
    shareable: bool = field(default=True, compare=False)

    @property
    def score(self) -> int:
        return sum(e.score for e in self.exercises)

    @property
    def max_score(self) -> int:
        return sum(e.max_score for e in self.exercises)

    @property
    def full_marks(self) -> bool:
        return not self.error and self.max_score > 0 and self.score == self.max_score


def build(path: str, sha256: str, results: list[CheckResult], notes: list[str],
          framework: str = "torch", other_chapters: list[str] | None = None) -> SubmissionReport:
    """A file's report: its results grouped by exercise, the exercises of ``framework``'s chapter
    (an MLX file's ``ReLU`` is the exercise ``MLX ReLU``)."""
    by_key: dict[str, list[CheckResult]] = {}
    for r in results:
        by_key.setdefault(exercise_key(r.activation, framework), []).append(r)
    exercises = [Exercise(key, sorted(rs, key=lambda r: (r.device != "cpu", r.device, _ORDER[r.check])))
                 for key, rs in sorted(by_key.items(), key=lambda kv: _KEY_ORDER[kv[0]])]
    return SubmissionReport(path, sha256, exercises, notes, other_chapters=list(other_chapters or []))


def table(report: SubmissionReport, verbose: bool = False, notes: int | None = 2) -> str:
    """The report for people; ``notes`` per activation at most (None: all, as the notebook's ``check()``)."""
    lines = [f"{report.path}"]
    if report.error:
        return f"{report.path}: cannot grade: {report.error}"
    if report.sha256:
        lines[0] += f"  (sha256 {report.sha256[:12]})"
    for note in report.notes:
        lines.append(f"  note: {note}")
    if not report.exercises and report.other_chapters:
        lines.append(f"  nothing graded: the file holds exercises of {', '.join(report.other_chapters)} only")
        return "\n".join(lines)
    if not report.exercises:
        lines.append("  no activation defined: expected the names of the exercises, e.g. relu, ReLU, ReLUFunction")
        return "\n".join(lines)
    width = max(len(e.name) for e in report.exercises)
    for e in report.exercises:
        score = f"{e.score}/{e.max_score}"
        status = e.first_failure or "all checks passed"
        if len(status) > 160 and not verbose:
            status = status[:157] + "..."
        lines.append(f"  {e.name:<{width}}  {score:>7}  {status}")
        if not verbose:  # notes never cost marks, but say where the code differs from torch's conventions
            lines.extend(f"  {'':<{width}}           note: {n}" for n in e.notes[:notes])
        if verbose:
            for r in e.results:
                mark = {"passed": "ok  ", "failed": "FAIL", "skipped": "skip"}[r.status]
                lines.append(f"      {mark} {r.name}{': ' + r.message if r.message else ''}")
                lines.extend(f"           note: {n}" for n in r.notes)
    skipped = sum(r.status == "skipped" for e in report.exercises for r in e.results)
    total = f"  {'total':<{width}}  {report.score}/{report.max_score}"
    if skipped:
        total += f"  ({skipped} checks skipped: {_skip_reason(report)})"
    lines.append(total)
    return "\n".join(lines)


def _skip_reason(report: SubmissionReport) -> str:
    reasons = sorted({r.message for e in report.exercises for r in e.results if r.status == "skipped"})
    return "; ".join(reasons)


def environment(device: str) -> dict:
    """What graded a report: every JSON report (one submission's, a class's) starts with it."""
    return {
        "grader_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": device,
        "cuda_available": torch.cuda.is_available(),
    }


def as_json(reports: list[SubmissionReport], device: str, assignment: Assignment = WHOLE_COURSE) -> dict:
    return {
        **environment(device),
        "assignment": assignment.as_list(),
        "submissions": [
            {
                "path": r.path,
                "sha256": r.sha256,
                "score": r.score,
                "max_score": r.max_score,
                "error": r.error or None,
                "notes": r.notes,
                "other_chapters": r.other_chapters,
                "exercises": [
                    {
                        "name": e.name,
                        "activation": e.activation,
                        "chapter": BY_KEY[e.name].chapter if e.name in BY_KEY else "",
                        "score": e.score,
                        "max_score": e.max_score,
                        "checks": [
                            {"name": c.name, "passed": None if c.status == "skipped" else c.status == "passed",
                             "status": c.status, "message": c.message, "notes": c.notes}
                            for c in e.results
                        ],
                    }
                    for e in r.exercises
                ],
            }
            for r in reports
        ],
    }


# the first words of a provisional report's errors: written before any student code runs and replaced
# at the end, it is what stands when the grader is killed (out of time or memory) before the end
NOT_FINISHED = "grading did not finish"


def write_json(data: dict, path: str | Path) -> None:
    """Write atomically, so a gradebook never reads half a report."""
    write_atomic(path, json.dumps(data, indent=2) + "\n")