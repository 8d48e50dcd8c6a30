"""The results of grading, one model from a check to a submission: what the parent's judge, the
notebook's ``check()`` and ``grade()``, the gradebook and the platforms' reports all hold.

A check's result is :class:`grader.core.results.CheckResult`; an exercise's, :class:`ExerciseResult`
(what ``check()`` returns); a file's, :class:`SubmissionResult`. Each writes its JSON
(``to_json``) and is read back from it (``from_json``), and shows itself: as text (the table
``python -m grader`` prints) and as HTML in a notebook (``_repr_html_``).
"""
from __future__ import annotations

import base64
import html
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
from grader.report.html import cell, checks_table, notes_html, table as html_table

_ORDER = {c.name: i for i, c in enumerate(ALL_CHECKS)}
_KEY_ORDER = {e.key: i for i, e in enumerate(EXERCISES)}
NO_ACTIVATION = "no activation defined: expected the names of the exercises, e.g. relu, ReLU, ReLUFunction"
NO_ACTIVATION_SENTENCE = NO_ACTIVATION[0].upper() + NO_ACTIVATION[1:] + "."  # as the HTML views write it


@dataclass
class ExerciseResult:
    """One exercise's checks: a part of a report, and what ``check()`` returns in a notebook (with the
    first failure's hint on its check and, where one can be drawn, a picture of it)."""

    name: str  # the exercise's key (grader/spec/assignment.py): "ReLU", "MLX ReLU"
    checks: list[CheckResult]
    # check()'s picture of the first failure (PNG) and its caption; never in a report's JSON
    figure: bytes | None = field(default=None, compare=False, repr=False)
    figure_caption: str = field(default="", compare=False)
    # whether check() repeats why checks were skipped (once per kernel session: grader/run/live.py)
    show_skipped: bool = field(default=True, compare=False)

    @property
    def activation(self) -> str:
        """The catalogue entry the exercise is graded against."""
        return activation_of(self.name)

    @property
    def graded(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status != "skipped"]

    @property
    def score(self) -> int:
        return sum(c.status == "passed" for c in self.checks)

    @property
    def max_score(self) -> int:
        return len(self.graded)

    @property
    def notes(self) -> list[str]:
        return [f"{c.name}: {n}" for c in self.checks for n in c.notes]

    @property
    def first_failure(self) -> CheckResult | None:
        return next((c for c in self.checks if c.status == "failed"), None)

    @property
    def failure_text(self) -> str:
        """``check: message`` of the first failure, or "" with full marks."""
        failed = self.first_failure
        return f"{failed.name}: {failed.message}" if failed else ""

    @property
    def summary(self) -> str:
        return f"{self.score} of {self.max_score} checks pass"

    def to_json(self) -> dict:
        return {"name": self.name, "activation": self.activation,
                "chapter": BY_KEY[self.name].chapter if self.name in BY_KEY else "",
                "score": self.score, "max_score": self.max_score, "checks": [c.to_json() for c in self.checks]}

    @classmethod
    def from_json(cls, data: dict) -> "ExerciseResult":
        activation = data.get("activation", data["name"])
        return cls(data["name"], [CheckResult.from_json(c, activation) for c in data["checks"]])

    def _skipped(self) -> str:
        skipped = [c for c in self.checks if c.status == "skipped"]
        if not self.show_skipped or not skipped:
            return ""
        return f"{len(skipped)} checks skipped: {'; '.join(sorted({c.message for c in skipped}))}"

    def __str__(self) -> str:
        width = max((len(c.name) for c in self.checks), default=0)
        lines = [f"{self.name}: {self.summary}"]
        for c in self.graded:
            mark = "✓" if c.passed else "✗"
            lines.append(f"  {mark} {c.name:<{width}}  {c.message}".rstrip())
            lines.extend(f"  {'':<{width + 2}}  note: {n}" for n in c.notes)
        if self._skipped():
            lines.append(f"  ({self._skipped()})")
        failure = self.first_failure
        if failure is not None:
            lines.append(f"First failure: {failure.name}: {failure.message}")
            if failure.hint:
                lines.append(f"Hint: {failure.hint}")
        lines.append(self.summary)
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        parts = [f"<div><strong>{html.escape(self.name)}</strong></div>",
                 checks_table([(c.name, c.passed, c.message, c.notes) for c in self.graded])]
        if self._skipped():
            parts.append(f"<p>({html.escape(self._skipped())})</p>")
        failure = self.first_failure
        if failure is not None:
            parts.append(f"<p><strong>First failure</strong> ({html.escape(failure.name)}): "
                         f"{html.escape(failure.message)}</p>")
            if failure.hint:
                parts.append(f"<p><strong>Hint:</strong> {html.escape(failure.hint)}</p>")
        parts.append(f"<p><strong>{html.escape(self.summary)}</strong></p>")
        return "\n".join(parts)

    def _ipython_display_(self) -> None:
        """The table, then the first failure's picture as its own image output."""
        from IPython.display import display

        display({"text/html": self._repr_html_(), "text/plain": str(self)}, raw=True)
        if self.figure:
            display({"image/png": base64.b64encode(self.figure).decode("ascii"),
                     "text/plain": f"<figure: {self.figure_caption}>"}, raw=True)


@dataclass
class SubmissionResult:
    """One file's grading: its exercises, or the one-line reason it could not be graded."""

    path: str
    sha256: str = ""
    exercises: list[ExerciseResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""  # set when the file could not be graded at all
    # chapters of exercises the file defines outside the assignment it was graded for (not graded)
    other_chapters: list[str] = field(default_factory=list)
    # graded cleanly (grader/run/supervisor.py's Outcome.clean): may stand for an identical file; never written
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

    @property
    def skipped(self) -> list[CheckResult]:
        return [c for e in self.exercises for c in e.checks if c.status == "skipped"]

    def to_json(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "score": self.score, "max_score": self.max_score,
                "error": self.error or None, "notes": self.notes, "other_chapters": self.other_chapters,
                "exercises": [e.to_json() for e in self.exercises]}

    @classmethod
    def from_json(cls, data: dict) -> "SubmissionResult":
        return cls(data["path"], data.get("sha256", ""), [ExerciseResult.from_json(e) for e in data.get("exercises", [])],
                   list(data.get("notes", [])), data.get("error") or "", list(data.get("other_chapters") or []))

    def table(self, verbose: bool = False, notes: int | None = 2) -> str:
        """The report for people; ``notes`` per exercise at most (None: all, as the notebook shows them)."""
        lines = [f"{self.path}"]
        if self.error:
            return f"{self.path}: cannot grade: {self.error}"
        if self.sha256:
            lines[0] += f"  (sha256 {self.sha256[:12]})"
        for note in self.notes:
            lines.append(f"  note: {note}")
        if not self.exercises and self.other_chapters:
            lines.append(f"  nothing graded: the file holds exercises of {', '.join(self.other_chapters)} only")
            return "\n".join(lines)
        if not self.exercises:
            lines.append(f"  {NO_ACTIVATION}")
            return "\n".join(lines)
        width = max(len(e.name) for e in self.exercises)
        for e in self.exercises:
            score = f"{e.score}/{e.max_score}"
            status = e.failure_text or "all checks passed"
            if len(status) > 160 and not verbose:
                status = status[:157] + "..."
            lines.append(f"  {e.name:<{width}}  {score:>7}  {status}")
            if not verbose:  # notes never cost marks, but say where the code differs from torch's conventions
                lines.extend(f"  {'':<{width}}           note: {n}" for n in e.notes[:notes])
            if verbose:
                for c in e.checks:
                    mark = {"passed": "ok  ", "failed": "FAIL", "skipped": "skip"}[c.status]
                    lines.append(f"      {mark} {c.name}{': ' + c.message if c.message else ''}")
                    lines.extend(f"           note: {n}" for n in c.notes)
        total = f"  {'total':<{width}}  {self.score}/{self.max_score}"
        if self.skipped:
            total += f"  ({len(self.skipped)} checks skipped: {self._skip_reasons()})"
        lines.append(total)
        return "\n".join(lines)

    def _skip_reasons(self) -> str:
        return "; ".join(sorted({c.message for c in self.skipped}))

    __str__ = table

    def _repr_html_(self, verbose: bool = False) -> str:
        esc = html.escape
        if self.error:
            return f"<pre>{esc(self.table())}</pre>"
        parts = [f'<div style="text-align:left"><strong>{esc(Path(self.path).name)}</strong>: '
                 f"{self.score} of {self.max_score} points</div>"]
        parts += [f'<div style="color:#666;text-align:left">note: {esc(n)}</div>' for n in self.notes]
        rows = [[cell("td", esc(e.name)), cell("td", f"{e.score}/{e.max_score}"),
                 cell("td", esc(e.failure_text or "all checks passed") + notes_html(e.notes))]
                for e in self.exercises]
        if rows:
            parts.append(html_table(["activation", "score", "first failure"], rows, "grade"))
        else:
            parts.append(f"<p>{esc(NO_ACTIVATION_SENTENCE)}</p>")
        if verbose:
            for e in self.exercises:
                parts.append(f"<div><strong>{esc(e.name)}</strong></div>")
                parts.append(checks_table([(c.name, c.passed, c.message, c.notes) for c in e.checks]))
        if self.skipped:
            parts.append(f'<p style="text-align:left">({len(self.skipped)} checks skipped: '
                         f"{esc(self._skip_reasons())})</p>")
        parts.append(f'<p style="text-align:left"><strong>{self.score} of {self.max_score} points</strong></p>')
        return "\n".join(parts)


def build(path: str, sha256: str, results: list[CheckResult], notes: list[str],
          framework: str = "torch", other_chapters: list[str] | None = None) -> SubmissionResult:
    """A file's result: its checks grouped by exercise, the exercises of ``framework``'s chapter
    (an MLX file's ``ReLU`` is the exercise ``MLX ReLU``), in the course's order."""
    by_key: dict[str, list[CheckResult]] = {}
    for r in results:
        by_key.setdefault(exercise_key(r.activation, framework), []).append(r)
    exercises = [ExerciseResult(key, sorted(rs, key=lambda r: (r.device != "cpu", r.device, _ORDER[r.check])))
                 for key, rs in sorted(by_key.items(), key=lambda kv: _KEY_ORDER[kv[0]])]
    return SubmissionResult(path, sha256, exercises, notes, other_chapters=list(other_chapters or []))


def environment(device: str) -> dict:
    """What graded a report: every JSON report (one submission's, a class's) starts with it."""
    return {
        "grader_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": device,
        "cuda_available": torch.cuda.is_available(),
    }


def as_json(results: list[SubmissionResult], device: str, assignment: Assignment = WHOLE_COURSE) -> dict:
    """A report of one or more files: how they were graded (:func:`environment`), then each file's result."""
    return {**environment(device), "assignment": assignment.as_list(), "submissions": [r.to_json() for r in results]}


# the first words of a provisional report's errors: written before any student code runs and replaced
# at the end, it is what stands when the grader is killed (out of time or memory) before the end
NOT_FINISHED = "grading did not finish"


def write_json(data: dict, path: str | Path) -> None:
    """Write atomically, so a gradebook never reads half a report."""
    write_atomic(path, json.dumps(data, indent=2) + "\n")