"""The item analysis of a class, from the JSON report of ``python -m grader batch`` alone (nothing is
regraded): failure messages grouped by pattern, per activation and check, with the flags.

A failure message is grouped by its *pattern*: the case it names (function, parameters, dtype) and
the input it failed at are kept, the student's own result is reduced to its kind (nan, inf, -inf,
0 or a number) and every other number (error sizes, op counts, line numbers) is dropped. So
"grad is nan at x=-100.0" from 37 students is one group, a wrong finite value at the same input is
another, and a failure at another input is another again. Failures that get different hints are
different groups too: the hint is the grader's own reading of what kind of mistake it was.

A check that failed because its part of the exercise is still the stub (``NotImplementedError``)
counts as attempted and failed, as in the gradebook, but as "not started" rather than as a failure
pattern; the flags count only the students who started the check.
"""
from __future__ import annotations

import csv
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

from grader.spec.assignment import BY_KEY, CHAPTER_STEMS, activation_of, chapter_title
from grader.feedback.hints import hint_for


HARD = 0.9  # a check that at least this share of the students who started it fails is flagged
MIN_STUDENTS = 5  # a flag needs at least this many students who started the check
TOP_GROUPS = 5  # failure patterns shown per check; the rest are counted
NOT_STARTED = "not implemented (raises NotImplementedError)"  # the exercise's stub, untouched
STUDENT = "<student>"

CSV_COLUMNS = ["chapter", "exercise", "check", "attempted", "passed", "failed", "not_started", "pass_rate",
               "flag", "top_failure", "top_failure_students", "top_failure_hint"]


class BadReport(ValueError):
    """The file is not a batch report: the message is the one line the user sees."""


# --- patterns -------------------------------------------------------------------------------

_NUMBER = r"-?(?:\d{1,3}(?:,\d{3})+|\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?"
_VALUE = rf"(?:{_NUMBER}|-?inf|nan)"
_TOKEN = re.compile(
    # where it failed: the input is part of the pattern
    rf"(?P<input>\bat x={_VALUE}|\bat a={_VALUE}, b={_VALUE}|\bat index \[[^\]]*\] of a \([^)]*\) input"
    rf"|\bin row \[[^\]]*\] at position \d+)"
    # torch's answer at that input: fixed by the input, kept for the reader
    rf"|(?P<reference>\b(?:torch gives|torch's is|torch's convention is|the exact value is|expected) {_VALUE}"
    rf"|\bany value in \[{_VALUE}, {_VALUE}\])"
    # the student's result: only its kind counts
    rf"|(?P<got>\b(?:value|grad|slope) (?:is )?)(?P<value>{_VALUE})(?![\w.])"
    rf"|(?P<address>\b0x[0-9a-fA-F]+)"
    rf"|(?P<number>(?<![\w.]){_NUMBER}(?![\w.]|-[dD]\b))")


def _kind(value: str) -> str:
    if value in ("nan", "inf", "-inf"):
        return value
    return "0.0" if float(value.replace(",", "")) == 0 else "<number>"


def _normalise(text: str) -> str:
    def one(m: re.Match) -> str:
        if m.group("input") or m.group("reference"):
            return m.group(0)
        if m.group("got"):
            return m.group("got") + _kind(m.group("value"))
        if m.group("address"):
            return "0x<address>"
        return "<n>"

    return _TOKEN.sub(one, text)


def pattern(message: str) -> str:
    """The failure message with what varies between students of one kind of failure taken out.

    A message reads ``WHAT: DETAIL``; WHAT names the case (function, parameters, dtype), the same
    for every student, and is kept as it is."""
    what, sep, detail = message.partition(": ")
    if not sep:
        return _normalise(message)
    return f"{what}: {_normalise(detail)}"


def _scrubber(record: dict) -> Callable[[str], str]:
    """Takes the student's name and file paths out of a text (paths name the student's folder)."""
    name = str(record["student"])
    swaps = []
    for path in sorted((str(f.get("path", "")) for f in record.get("files", []) if isinstance(f, dict)),
                       key=len, reverse=True):
        if path:
            p = PurePosixPath(path)
            swaps.append((path, STUDENT + p.suffix if name in p.name else f"{STUDENT}/{p.name}"))
    own = re.compile(rf"(?<!\w){re.escape(name)}(?!\w)") if name.strip() else None

    def scrub(text: str) -> str:
        for old, new in swaps:
            text = text.replace(old, new)
        return own.sub(STUDENT, text) if own else text

    return scrub


# --- the analysis ---------------------------------------------------------------------------

@dataclass
class Group:
    """Students whose failure has one pattern (and one hint)."""
    pattern: str
    hint: str | None
    messages: Counter = field(default_factory=Counter)  # as the students saw them, names taken out
    students: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.students)

    @property
    def example(self) -> str:
        return self.messages.most_common(1)[0][0]


def rank_groups(groups: dict) -> list[Group]:
    return sorted(groups.values(), key=lambda g: (-g.count, g.pattern))


@dataclass
class Item:
    """One check of one activation across the class."""
    activation: str
    check: str
    attempted: int = 0  # students with the exercise, the check not skipped
    passed: int = 0
    not_started: int = 0  # failed because that part of the exercise is still the stub
    skipped: int = 0
    groups: dict[tuple[str, str | None], Group] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return self.attempted - self.passed

    @property
    def started(self) -> int:
        return self.attempted - self.not_started

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.attempted if self.attempted else None

    @property
    def flag(self) -> str:
        """"hard": almost everyone who started it fails; "no information": everyone who started it passes."""
        if self.started < MIN_STUDENTS:
            return ""
        if self.passed == self.started:
            return "no information"
        return "hard" if (self.started - self.passed) / self.started >= HARD else ""

    def ranked(self) -> list[Group]:
        return rank_groups(self.groups)


@dataclass
class ActivationTally:
    name: str
    attempted: int = 0
    full_marks: int = 0
    scores: list[int] = field(default_factory=list)


@dataclass
class ClassAnalysis:
    meta: dict
    max_score: int
    scores: list[int] = field(default_factory=list)
    with_error: list[bool] = field(default_factory=list)
    activations: dict[str, ActivationTally] = field(default_factory=dict)
    items: dict[tuple[str, str], Item] = field(default_factory=dict)
    errors: dict[tuple[str, str | None], Group] = field(default_factory=dict)

    @property
    def students(self) -> int:
        return len(self.scores)

    def by_chapter(self) -> list[tuple[str, list[ActivationTally]]]:
        chapters: dict[tuple[int, str], list[ActivationTally]] = {}
        for a in self.activations.values():
            chapters.setdefault(chapter_heading(a.name), []).append(a)
        return [(title, acts) for (_, title), acts in sorted(chapters.items())]

    def items_of(self, activation: str) -> list[Item]:
        return [i for (a, _), i in self.items.items() if a == activation]


def chapter_heading(key: str) -> tuple[int, str]:
    """An exercise's chapter, by its key (``MLX ReLU`` is in the MLX chapter)."""
    exercise = BY_KEY.get(key)
    if exercise is None:  # a report of another grader version
        return len(CHAPTER_STEMS) + 1, "Other exercises"
    return CHAPTER_STEMS.index(exercise.chapter), chapter_title(exercise.chapter)


def analyse(report: dict) -> ClassAnalysis:
    """``report``: a batch report that passed :func:`problem`."""
    maxima = report["max_scores"]
    result = ClassAnalysis({k: report.get(k) for k in ("grader_version", "torch_version", "device")},
                           sum(maxima.values()))
    for name in maxima:  # catalogue order; an activation no one submitted stays out of the page
        result.activations[name] = ActivationTally(name)
    for record in report["students"]:
        student, scrub = str(record["student"]), _scrubber(record)
        result.scores.append(record["score"])
        result.with_error.append(bool(record.get("error")))
        if record.get("error"):
            seen = scrub(record["error"])
            group = result.errors.setdefault((_normalise(seen), None), Group(_normalise(seen), None))
            group.messages[seen] += 1
            group.students.append(student)
        for exercise in record["exercises"]:
            name = exercise["name"]
            act = result.activations.setdefault(name, ActivationTally(name))
            act.attempted += 1
            act.scores.append(exercise.get("score", 0))
            graded = [c for c in exercise["checks"] if c["passed"] is not None]
            if graded and all(c["passed"] for c in graded):
                act.full_marks += 1
            for check in exercise["checks"]:
                item = result.items.setdefault((name, check["name"]), Item(name, check["name"]))
                if check["passed"] is None:
                    item.skipped += 1
                    continue
                item.attempted += 1
                if check["passed"]:
                    item.passed += 1
                    continue
                message = check.get("message") or ""
                if NOT_STARTED in message:  # counted, not grouped: it says nothing about the check
                    item.not_started += 1
                    continue
                # from the message the student saw, for the activation the exercise is graded against
                hint = hint_for(activation_of(name), check["name"], message)
                seen = scrub(message)
                key = (pattern(seen), hint)
                group = item.groups.setdefault(key, Group(*key))
                group.messages[seen] += 1
                group.students.append(student)
    result.activations = {k: a for k, a in result.activations.items() if a.attempted}
    return result


# --- reading the report ---------------------------------------------------------------------

def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def problem(data: object) -> str:
    """Why ``data`` is not a batch report, or ""."""
    if not isinstance(data, dict):
        return f"the top level is a JSON {type(data).__name__.replace('dict', 'object')}, not an object"
    if "students" not in data and "submissions" in data:
        return "it is a report of single submissions (python -m grader --json), not of a class"
    if not isinstance(data.get("students"), list):
        return 'no "students" list'
    maxima = data.get("max_scores")
    if not isinstance(maxima, dict) or not all(isinstance(k, str) and _is_int(v) for k, v in maxima.items()):
        return 'no "max_scores" object of points per activation'
    for i, s in enumerate(data["students"]):
        where = f"students[{i}]"
        if not isinstance(s, dict) or not isinstance(s.get("student"), str):
            return f"{where} has no student name"
        if not _is_int(s.get("score")) or not isinstance(s.get("exercises"), list):
            return f'{where} has no "score" or no "exercises" list'
        if s.get("error") is not None and not isinstance(s["error"], str):
            return f'{where}: "error" is neither text nor null'
        if not isinstance(s.get("files", []), list):
            return f'{where}: "files" is not a list'
        for j, e in enumerate(s["exercises"]):
            if not isinstance(e, dict) or not isinstance(e.get("name"), str) or not isinstance(e.get("checks"), list):
                return f'{where}.exercises[{j}] has no "name" or no "checks" list'
            for k, c in enumerate(e["checks"]):
                if (not isinstance(c, dict) or not isinstance(c.get("name"), str) or "passed" not in c
                        or not (c["passed"] is None or isinstance(c["passed"], bool))):
                    return f'{where}.exercises[{j}].checks[{k}] has no "name" or no "passed" (true, false or null)'
                if not isinstance(c.get("message") or "", str):
                    return f'{where}.exercises[{j}].checks[{k}]: "message" is not text'
    return ""


def load(path: str) -> dict:
    """The batch report at ``path``, or :class:`BadReport` with one line saying why not."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadReport(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadReport(f"{path}: a folder, not a batch report") from None
    except UnicodeDecodeError:
        raise BadReport(f"{path}: not JSON (not UTF-8 text)") from None
    except OSError as exc:
        raise BadReport(f"{path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadReport(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise BadReport(f"{path}: not a batch report (nested too deeply)") from None
    why = problem(data)
    if why:
        raise BadReport(f"{path}: not a batch report: {why} (write one with python -m grader batch DIR "
                        "--csv GRADEBOOK --json REPORT)")
    return data
