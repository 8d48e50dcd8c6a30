"""``python -m grader class-report REPORT.json --html class.html [--csv items.csv] [--names]``.

Item analysis of a class from the JSON report of ``python -m grader batch`` alone (nothing is
regraded): per activation and per check, how many students attempted it, how many passed, and the
failure messages grouped by pattern, each group with the hint the students saw. Checks that almost
everyone fails (an unclear chapter or exercise, or a wrong check) and checks that everyone passes
(no information) are flagged; a chart per chapter and a histogram of totals show the class at a
glance. The page names no student unless ``--names`` is given: it may go to teaching assistants,
and the gradebook CSV stays the place for names.

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

import argparse
import csv
import html
import io
import json
import math
import re
import statistics
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

from grader import __version__
from grader.feedback import pages
from grader.spec.catalog import BY_NAME, CHAPTER_NUMBERS, CHAPTERS
from grader.report.gradebook import csv_cell as csv_text_cell
from grader.feedback.hints import hint_for
from grader.feedback.html_report import STYLE as BASE_STYLE

HARD = 0.9  # a check that at least this share of the students who started it fails is flagged
MIN_STUDENTS = 5  # a flag needs at least this many students who started the check
TOP_GROUPS = 5  # failure patterns shown per check; the rest are counted
NOT_STARTED = "not implemented (raises NotImplementedError)"  # the exercise's stub, untouched
STUDENT = "<student>"

CSV_COLUMNS = ["chapter", "activation", "check", "attempted", "passed", "failed", "not_started", "pass_rate",
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


def _ranked(groups: dict) -> list[Group]:
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
        return _ranked(self.groups)


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
            chapters.setdefault(chapter_of(a.name), []).append(a)
        return [(title, acts) for (_, title), acts in sorted(chapters.items())]

    def items_of(self, activation: str) -> list[Item]:
        return [i for (a, _), i in self.items.items() if a == activation]


def chapter_of(activation: str) -> tuple[int, str]:
    entry = BY_NAME.get(activation)
    if entry is None:  # a report of another grader version
        return len(CHAPTERS) + 1, "Other activations"
    return CHAPTER_NUMBERS[entry.chapter], f"{CHAPTER_NUMBERS[entry.chapter]}. {CHAPTERS[entry.chapter]}"


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
                hint = hint_for(name, check["name"], message)  # from the message the student saw
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


# --- charts ---------------------------------------------------------------------------------

COLOURS = {"hard": "#c00000", "no information": "#9a9a9a", "": "#2f6db5"}
ERROR_COLOUR = "#d55e00"


def _png(fig) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def chapter_chart(title: str, items: list[Item]) -> bytes | None:
    """Pass rate per activation and check, the lowest first; None without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch
    except ImportError:
        return None
    shown = sorted((i for i in items if i.attempted), key=lambda i: (i.pass_rate, i.activation, i.check))
    if not shown:
        return None
    fig = Figure(figsize=(9, 1.5 + 0.21 * len(shown)), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    rows = range(len(shown))
    ax.barh(rows, [100 * i.pass_rate for i in shown], color=[COLOURS[i.flag] for i in shown], height=0.75)
    ax.set_yticks(list(rows), labels=[f"{i.activation} · {i.check}" for i in shown], fontsize=8)
    ax.set_ylim(len(shown) - 0.5, -0.5)  # the lowest pass rate on top
    for row, i in zip(rows, shown):
        ax.text(101, row, f"{i.passed}/{i.attempted}", va="center", fontsize=7, color="#444")
    ax.set_xlim(0, 112)
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel("pass rate (% of the students who attempted the check)")
    ax.set_ylabel("activation · check")
    ax.set_title(f"{title}: pass rate per check, lowest first", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.legend(handles=[Patch(color=COLOURS["hard"], label=f"almost everyone fails (≥ {HARD:.0%})"),
                        Patch(color=COLOURS["no information"], label="everyone who started it passes"),
                        Patch(color=COLOURS[""], label="other")],
               loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    return _png(fig)


def histogram(scores: list[int], with_error: list[bool], max_score: int) -> bytes | None:
    """The class's totals; students whose work could not all be graded stacked on top."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return None
    if not scores:
        return None
    top = max(max(scores), 1)
    width = max(1, math.ceil((top + 1) / 40))
    edges = list(range(0, top + width + 1, width))
    fig = Figure(figsize=(9, 3.4), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    graded = [s for s, e in zip(scores, with_error) if not e]
    failed = [s for s, e in zip(scores, with_error) if e]
    ax.hist([graded, failed], bins=edges, stacked=True, color=[COLOURS[""], ERROR_COLOUR], edgecolor="white",
            label=["graded", "with an error (e.g. a corrupt notebook)"])
    ax.set_xlabel(f"total points (the gradebook's maximum is {max_score})")
    ax.set_ylabel("students")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"Totals of the class ({len(scores)} students)", fontsize=10)
    ax.legend(fontsize=8, loc="upper center")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


# --- the page -------------------------------------------------------------------------------

_STYLE = BASE_STYLE + """
table.items td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.hard td { background: #fdecec; } tr.noinfo td { color: #777; }
.flag { font-size: .85em; padding: 0 .35rem; border-radius: 3px; white-space: nowrap; }
.flag.hard { background: #c00000; color: white; } .flag.noinfo { background: #ddd; color: #333; }
.group .count { font-weight: 600; } .names { color: #555; font-size: .9em; }
.pattern { white-space: pre-wrap; word-break: break-word; }
"""
_FLAG_CLASS = {"hard": "hard", "no information": "noinfo"}


def _e(text: object) -> str:
    return html.escape(str(text))


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{100 * rate:.0f}%"


def _anchor(activation: str) -> str:
    return "act-" + re.sub(r"[^A-Za-z0-9_-]", "-", activation)


def _flag(flag: str) -> str:
    return f'<span class="flag {_FLAG_CLASS[flag]}">{_e(flag)}</span>' if flag else ""


def _students(students: list[str], names: bool) -> str:
    if not names:
        return ""
    return f'<div class="names">students: {_e(", ".join(sorted(students, key=str.casefold)))}</div>'


def _group(g: Group, names: bool) -> str:
    out = [f'<div class="failure group"><p><span class="count">{g.count} student{"s" * (g.count != 1)}</span>: '
           f'<code class="pattern">{_e(g.pattern)}</code></p>']
    if g.example != g.pattern:
        out.append(f'<p class="note">for example: {_e(g.example)}</p>')
    if g.hint:
        out.append(f'<p class="hint"><strong>Hint shown:</strong> {_e(g.hint)}</p>')
    else:
        out.append('<p class="note">no hint was shown for this failure</p>')
    out.append(_students(g.students, names))
    out.append("</div>")
    return "\n".join(out)


def _failures(item: Item, names: bool) -> str:
    ranked = item.ranked()
    stubs = f", {item.not_started} of them not started" if item.not_started else ""
    out = [f'<details{" open" * (item.flag == "hard")} data-item="{_e(item.activation)}|{_e(item.check)}">'
           f"<summary><code>{_e(item.check)}</code>: {item.failed} of {item.attempted} fail{stubs}; "
           f"{len(ranked)} pattern{'s' * (len(ranked) != 1)}</summary>"]
    out.extend(_group(g, names) for g in ranked[:TOP_GROUPS])
    rest = ranked[TOP_GROUPS:]
    if rest:
        out.append(f'<p class="note">and {len(rest)} more patterns, {sum(g.count for g in rest)} students '
                   "(the CSV has the top pattern of every check)</p>")
    out.append("</details>")
    return "\n".join(out)


def _items_table(items: list[Item]) -> str:
    out = ['<table class="checks items"><thead><tr><th>check</th><th>attempted</th><th>passed</th>'
           '<th>pass rate</th><th>not started</th><th>most common failure</th><th></th></tr></thead><tbody>']
    for i in items:
        top = i.ranked()[0] if i.groups else None
        top_text = f"{top.count}× <code>{_e(top.pattern)}</code>" if top else ""
        out.append(f'<tr class="{_FLAG_CLASS.get(i.flag, "")}" data-item="{_e(i.activation)}|{_e(i.check)}">'
                   f'<td><code>{_e(i.check)}</code></td><td class="n attempted">{i.attempted}</td>'
                   f'<td class="n passed">{i.passed}</td><td class="n rate">{_percent(i.pass_rate)}</td>'
                   f'<td class="n not-started">{i.not_started}</td><td class="top">{top_text}</td>'
                   f"<td>{_flag(i.flag)}</td></tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _flag_list(analysis: ClassAnalysis, flag: str) -> str:
    flagged = [i for i in analysis.items.values() if i.flag == flag]
    if not flagged:
        return "<p>None.</p>"
    if flag == "no information":  # often most checks: one line per activation
        by_activation: dict[str, list[Item]] = {}
        for i in flagged:
            by_activation.setdefault(i.activation, []).append(i)
        return "<ul>" + "".join(
            f'<li><a href="#{_anchor(a)}">{_e(a)}</a> ({len(items)} of {len(analysis.items_of(a))} checks): '
            + ", ".join(f'<code data-flag="{_e(flag)}" data-item="{_e(a)}|{_e(i.check)}">{_e(i.check)}</code>'
                        for i in items) + "</li>" for a, items in by_activation.items()) + "</ul>"
    rows = []
    for i in sorted(flagged, key=lambda i: (i.pass_rate, i.activation, i.check)):
        top = i.ranked()[0] if i.groups else None
        rows.append(f'<tr data-flag="{_e(flag)}" data-item="{_e(i.activation)}|{_e(i.check)}">'
                    f'<td><a href="#{_anchor(i.activation)}">{_e(i.activation)}</a></td>'
                    f'<td><code>{_e(i.check)}</code></td>'
                    f'<td class="n">{i.passed} of {i.started}</td>'
                    + (f"<td>{top.count}× <code>{_e(top.pattern)}</code></td>" if top else "<td></td>") + "</tr>")
    return ('<table class="checks items"><thead><tr><th>activation</th><th>check</th><th>passed, of those who '
            'started it</th><th>most common failure</th></tr></thead><tbody>' + "\n".join(rows) + "</tbody></table>")


def page(analysis: ClassAnalysis, names: bool = False, source: str = "") -> str:
    meta = analysis.meta
    errors = sum(analysis.with_error)
    body = [f"<h1>Class report: {analysis.students} students</h1>",
            f'<p>From the batch report <code>{_e(source)}</code> (grader {_e(meta.get("grader_version"))}, torch '
            f'{_e(meta.get("torch_version"))}, checks on {_e(meta.get("device"))}); nothing was regraded. '
            + ("Students are named (<code>--names</code>): do not share this page beyond the course's staff."
               if names else "No student is named on this page (<code>--names</code> names them; the gradebook "
                              "CSV has every student's points).")
            + f" Made by grader {_e(__version__)}.</p>",
            "<h2>The class</h2>"]
    scores = analysis.scores
    if scores:
        body.append(f'<p><span id="students">{analysis.students}</span> students; total points: median '
                    f"{statistics.median(scores):g}, mean {statistics.fmean(scores):.1f}, of the gradebook's "
                    f"{analysis.max_score}. <span id=\"errors\">{errors}</span> student{'s' * (errors != 1)} "
                    "with work that could not all be graded (a corrupt notebook, an empty folder, a crash).</p>")
    chart = histogram(scores, analysis.with_error, analysis.max_score)
    if chart:
        body.append(pages.img(chart, "Histogram of the class's total points"))
    if analysis.errors:
        body.append("<h3>Could not be graded</h3>")
        body.extend(f'<div class="failure group" data-error><p><span class="count">{g.count} '
                    f'student{"s" * (g.count != 1)}</span>: <code class="pattern">{_e(g.pattern)}</code></p>'
                    + (f'<p class="note">for example: {_e(g.example)}</p>' if g.example != g.pattern else "")
                    + _students(g.students, names) + "</div>" for g in _ranked(analysis.errors))
    body += ["<h2>Flags</h2>",
             f"<p>Counted over the students who started a check (attempted it, and its part of the exercise "
             f"is not the untouched stub that raises NotImplementedError), and only where at least "
             f"{MIN_STUDENTS} did.</p>",
             f"<h3>Almost everyone fails: at least {HARD:.0%} of them</h3>",
             "<p>An unclear chapter or exercise, a topic taught badly, or a check that is wrong.</p>",
             _flag_list(analysis, "hard"),
             "<h3>Everyone passes: no information</h3>",
             "<p>These checks do not tell students apart (fine for a first exercise).</p>",
             _flag_list(analysis, "no information")]
    for title, activations in analysis.by_chapter():
        items = [i for a in activations for i in analysis.items_of(a.name)]
        body.append(f'<h2 data-chapter="{_e(title)}">{_e(title)}</h2>')
        chart = chapter_chart(title, items)
        if chart:
            body.append(pages.img(chart, f"{title}: pass rate per activation and check, lowest first"))
        body.append('<table class="checks items"><thead><tr><th>activation</th><th>attempted</th>'
                    '<th>full marks</th><th>mean points</th></tr></thead><tbody>')
        for a in activations:
            body.append(f'<tr data-activation="{_e(a.name)}"><td><a href="#{_anchor(a.name)}">{_e(a.name)}</a></td>'
                        f'<td class="n attempted">{a.attempted}</td><td class="n full">{a.full_marks}</td>'
                        f'<td class="n">{statistics.fmean(a.scores):.1f}</td></tr>')
        body.append("</tbody></table>")
        for a in activations:
            body.append(f'<h3 id="{_anchor(a.name)}">{_e(a.name)}</h3>')
            body.append(_items_table(analysis.items_of(a.name)))
            body.extend(_failures(i, names) for i in analysis.items_of(a.name) if i.groups)
    return pages.document(f"Class report ({analysis.students} students)", _STYLE, body)


def csv_text(analysis: ClassAnalysis) -> str:
    buffer = io.StringIO()
    w = csv.writer(buffer, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for i in sorted(analysis.items.values(), key=lambda i: chapter_of(i.activation)[0]):  # stable: report order
        top = i.ranked()[0] if i.groups else None
        w.writerow([chapter_of(i.activation)[1], i.activation, i.check, i.attempted, i.passed, i.failed,
                    i.not_started, "" if i.pass_rate is None else f"{i.pass_rate:.3f}", i.flag,
                    csv_text_cell(top.pattern) if top else "", top.count if top else 0,
                    csv_text_cell(top.hint or "") if top else ""])
    return buffer.getvalue()


# --- command line ---------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m grader class-report",
                                description="Which checks a class fails, and why: item analysis of a batch report.")
    p.add_argument("report", metavar="REPORT.json", help="the JSON report of python -m grader batch ... --json")
    p.add_argument("--html", metavar="PAGE", help="write the class report here (one self-contained page)")
    p.add_argument("--csv", metavar="ITEMS", help="write one row per activation and check here")
    p.add_argument("--names", action="store_true",
                   help="name the students in each failure group (by default the page names no one)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.html and not args.csv:
        print("error: nothing to write: give --html PAGE, --csv ITEMS or both", file=sys.stderr)
        return 2
    try:
        report = load(args.report)
    except BadReport as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    analysis = analyse(report)
    if args.html and not pages.write(page(analysis, args.names, Path(args.report).name), args.html, "--html"):
        return 2
    if args.csv and not pages.write(csv_text(analysis), args.csv, "--csv"):
        return 2
    flags = Counter(i.flag for i in analysis.items.values())
    written = " and ".join(f for f in (args.html, args.csv) if f)
    print(f"wrote {written}: {analysis.students} students, {sum(analysis.with_error)} with an error; "
          f"{flags['hard']} checks almost everyone fails, {flags['no information']} that everyone passes",
          file=sys.stderr)
    return 0
