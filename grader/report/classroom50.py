"""A grading as Classroom 50 takes it: ``result.json`` (schema ``classroom50/result/v1``) and the
release body, ``release-body.md``.

The contract is Classroom 50's (foundation50/classroom50: ``schemas/result-v1.schema.json``, the
runner ``cli/gh-teacher/skeleton/dotgithub/scripts/runner.py`` and the wiki page
Advanced-Autograding): the top level holds exactly ``schema``, ``classroom``, ``assignment``,
``assignment_type``, ``owner``, ``submission`` (a ``submit/...`` tag), ``commit``, ``release``,
``review``, ``datetime``, ``score``, ``max-score`` and ``tests`` (``graded_at`` and
``submitted_by`` are the runner's to add); scores are non-negative integers, ``score`` is at most
``max-score``, every test has ``test-name``, ``passed``, ``score`` and ``max-score``, and a test
may carry more fields, which are kept. The runner overwrites ``owner``, ``assignment_type`` and
``datetime`` with what it knows, and turns a missing or invalid result into an error that
publishes no score.

One test per exercise of the assignment, worth its checks; its extra fields say which chapter it
is, which file it was graded from and which checks failed, and why. Everything a student's files
can put into them (messages, file names) is escaped Markdown text (:mod:`grader.report.escape`),
since the release body and Classroom 50's pages render them.

This module imports the standard library alone: the autograder, before anything is installed,
writes its "not graded" result with it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Mapping

from grader.report.escape import markdown_text

SCHEMA = "classroom50/result/v1"
RESULT = "result.json"
BODY = "release-body.md"
FAILED_SHOWN = 20  # failed checks listed per exercise (the first ones; the count says how many in all)
MESSAGE = 300  # characters of a failed check's message


@dataclass
class ExerciseTest:
    """One exercise of the assignment as graded: its test in Classroom 50's result."""
    name: str
    chapter: str
    max_score: int
    score: int = 0
    source: str = ""  # the file it was graded from
    failed: list[tuple[str, str]] = field(default_factory=list)  # (check, message)
    reason: str = ""  # why it scores nothing, or why it cannot score everything

    @property
    def passed(self) -> bool:
        return self.max_score > 0 and self.score == self.max_score and not self.reason


def identity(env: Mapping[str, str]) -> dict:
    """The result's identity fields, from the environment the runner gives an autograder. The
    runner checks ``classroom`` and ``assignment`` against the repository and stamps ``owner``,
    ``assignment_type`` and ``datetime`` itself; what it leaves to us must only be well formed."""
    commit = env.get("COMMIT_URL") or "unknown"
    tag = env.get("SUBMISSION_TAG") or ""
    return {
        "schema": SCHEMA,
        "classroom": env.get("CLASSROOM") or "unknown",
        "assignment": env.get("ASSIGNMENT") or "unknown",
        "assignment_type": env.get("ASSIGNMENT_TYPE") if env.get("ASSIGNMENT_TYPE") in ("individual", "group")
        else "individual",
        "owner": env.get("OWNER") or env.get("USERNAME") or "unknown",
        "submission": tag if tag.startswith("submit/") else "submit/unknown",
        "commit": commit,
        "release": env.get("RELEASE_URL") or commit,
        "review": env.get("REVIEW_URL") or commit,
        "datetime": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _test(e: ExerciseTest, note: str) -> dict:
    test = {"test-name": e.name, "passed": e.passed, "score": min(max(int(e.score), 0), int(e.max_score)),
            "max-score": int(e.max_score), "chapter": e.chapter}
    if e.source:
        test["source"] = markdown_text(e.source, 200)
    if e.failed:
        test["failed-checks"] = [{"check": markdown_text(c, 100), "message": markdown_text(m, MESSAGE)}
                                 for c, m in e.failed[:FAILED_SHOWN]]
        test["failed-count"] = len(e.failed)
    if e.reason:
        test["reason"] = markdown_text(e.reason, MESSAGE)
    if note:
        test["note"] = markdown_text(note, MESSAGE)
    return test


def result(env: Mapping[str, str], exercises: list[ExerciseTest], note: str = "") -> dict:
    """``result.json``: the identity, one test per exercise, the total. ``note``: what every test
    carries besides (that the grading was not isolated, say)."""
    tests = [_test(e, note) for e in exercises]
    return {**identity(env), "score": sum(t["score"] for t in tests), "max-score": sum(t["max-score"] for t in tests),
            "tests": tests}


def not_graded(env: Mapping[str, str], maxima: Mapping[str, int], chapters: Mapping[str, str],
               reason: str) -> tuple[dict, str]:
    """A result of 0 for every exercise, and its release body, when the work could not be graded:
    still a valid result (the runner would turn anything else into an error that publishes nothing)."""
    exercises = [ExerciseTest(name, chapters.get(name, ""), top, reason=reason) for name, top in maxima.items()]
    data = result(env, exercises)
    return data, release_body(data, exercises, problem=reason)


def release_body(data: dict, exercises: list[ExerciseTest], problem: str = "", notes: list[str] = (),
                 note: str = "") -> str:
    """The student's feedback: the total, what went wrong, then a table of every exercise with its
    points and its first failing check."""
    lines = [f"### Activation functions: {data['score']}/{data['max-score']} points", ""]
    if note:
        lines += [f"> **Note:** {markdown_text(note, 500)}", ""]
    if problem:
        lines += [f"**Not graded:** {markdown_text(problem, 500)}", ""]
    lines += [f"- note: {markdown_text(n, MESSAGE)}" for n in list(notes)[:20]]
    if notes:
        lines.append("")
    lines += ["| exercise | points | file | first failing check |", "|---|---:|---|---|"]
    for e in exercises:
        first = (f"{e.failed[0][0]}: {e.failed[0][1]}" if e.failed else
                 e.reason or ("all checks passed" if e.passed else ""))
        lines.append(f"| {markdown_text(e.name)} | {e.score}/{e.max_score} | "
                     f"{markdown_text(e.source) if e.source else '—'} | {markdown_text(first, MESSAGE)} |")
    lines += ["", "One point per check. Every failed check and its message are in this release's `result.json`; "
              "run the grader on your notebook (README.md) for the hints and pictures."]
    return "\n".join(lines) + "\n"
