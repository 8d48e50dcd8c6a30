"""The class report as a page (a chart per chapter, a histogram of totals, every flagged check with its
failure patterns and hints) and as items CSV."""
from __future__ import annotations

import csv
import html
import io
import math
import re
import statistics

from grader import __version__
from grader.feedback import pages
from grader.report.gradebook import csv_cell as csv_text_cell
from grader.feedback.html_report import STYLE as BASE_STYLE
from grader.feedback.class_analysis import (CSV_COLUMNS, HARD, MIN_STUDENTS, TOP_GROUPS, ClassAnalysis, Group, Item,
                                            chapter_heading, rank_groups)


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


def _escaped(text: object) -> str:
    return html.escape(str(text))


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{100 * rate:.0f}%"


def _anchor(activation: str) -> str:
    return "act-" + re.sub(r"[^A-Za-z0-9_-]", "-", activation)


def _flag(flag: str) -> str:
    return f'<span class="flag {_FLAG_CLASS[flag]}">{_escaped(flag)}</span>' if flag else ""


def _students(students: list[str], names: bool) -> str:
    if not names:
        return ""
    return f'<div class="names">students: {_escaped(", ".join(sorted(students, key=str.casefold)))}</div>'


def _group(g: Group, names: bool) -> str:
    out = [f'<div class="failure group"><p><span class="count">{g.count} student{"s" * (g.count != 1)}</span>: '
           f'<code class="pattern">{_escaped(g.pattern)}</code></p>']
    if g.example != g.pattern:
        out.append(f'<p class="note">for example: {_escaped(g.example)}</p>')
    if g.hint:
        out.append(f'<p class="hint"><strong>Hint shown:</strong> {_escaped(g.hint)}</p>')
    else:
        out.append('<p class="note">no hint was shown for this failure</p>')
    out.append(_students(g.students, names))
    out.append("</div>")
    return "\n".join(out)


def _failures(item: Item, names: bool) -> str:
    ranked = item.ranked()
    stubs = f", {item.not_started} of them not started" if item.not_started else ""
    out = [f'<details{" open" * (item.flag == "hard")} data-item="{_escaped(item.activation)}|{_escaped(item.check)}">'
           f"<summary><code>{_escaped(item.check)}</code>: {item.failed} of {item.attempted} fail{stubs}; "
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
        top_text = f"{top.count}× <code>{_escaped(top.pattern)}</code>" if top else ""
        out.append(f'<tr class="{_FLAG_CLASS.get(i.flag, "")}" data-item="{_escaped(i.activation)}|{_escaped(i.check)}">'
                   f'<td><code>{_escaped(i.check)}</code></td><td class="n attempted">{i.attempted}</td>'
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
            f'<li><a href="#{_anchor(a)}">{_escaped(a)}</a> ({len(items)} of {len(analysis.items_of(a))} checks): '
            + ", ".join(f'<code data-flag="{_escaped(flag)}" data-item="{_escaped(a)}|{_escaped(i.check)}">{_escaped(i.check)}</code>'
                        for i in items) + "</li>" for a, items in by_activation.items()) + "</ul>"
    rows = []
    for i in sorted(flagged, key=lambda i: (i.pass_rate, i.activation, i.check)):
        top = i.ranked()[0] if i.groups else None
        rows.append(f'<tr data-flag="{_escaped(flag)}" data-item="{_escaped(i.activation)}|{_escaped(i.check)}">'
                    f'<td><a href="#{_anchor(i.activation)}">{_escaped(i.activation)}</a></td>'
                    f'<td><code>{_escaped(i.check)}</code></td>'
                    f'<td class="n">{i.passed} of {i.started}</td>'
                    + (f"<td>{top.count}× <code>{_escaped(top.pattern)}</code></td>" if top else "<td></td>") + "</tr>")
    return ('<table class="checks items"><thead><tr><th>activation</th><th>check</th><th>passed, of those who '
            'started it</th><th>most common failure</th></tr></thead><tbody>' + "\n".join(rows) + "</tbody></table>")


def page(analysis: ClassAnalysis, names: bool = False, source: str = "") -> str:
    meta = analysis.meta
    errors = sum(analysis.with_error)
    body = [f"<h1>Class report: {analysis.students} students</h1>",
            f'<p>From the batch report <code>{_escaped(source)}</code> (grader {_escaped(meta.get("grader_version"))}, torch '
            f'{_escaped(meta.get("torch_version"))}, checks on {_escaped(meta.get("device"))}); nothing was regraded. '
            + ("Students are named (<code>--names</code>): do not share this page beyond the course's staff."
               if names else "No student is named on this page (<code>--names</code> names them; the gradebook "
                              "CSV has every student's points).")
            + f" Made by grader {_escaped(__version__)}.</p>",
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
                    f'student{"s" * (g.count != 1)}</span>: <code class="pattern">{_escaped(g.pattern)}</code></p>'
                    + (f'<p class="note">for example: {_escaped(g.example)}</p>' if g.example != g.pattern else "")
                    + _students(g.students, names) + "</div>" for g in rank_groups(analysis.errors))
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
        body.append(f'<h2 data-chapter="{_escaped(title)}">{_escaped(title)}</h2>')
        chart = chapter_chart(title, items)
        if chart:
            body.append(pages.img(chart, f"{title}: pass rate per activation and check, lowest first"))
        body.append('<table class="checks items"><thead><tr><th>activation</th><th>attempted</th>'
                    '<th>full marks</th><th>mean points</th></tr></thead><tbody>')
        for a in activations:
            body.append(f'<tr data-activation="{_escaped(a.name)}"><td><a href="#{_anchor(a.name)}">{_escaped(a.name)}</a></td>'
                        f'<td class="n attempted">{a.attempted}</td><td class="n full">{a.full_marks}</td>'
                        f'<td class="n">{statistics.fmean(a.scores):.1f}</td></tr>')
        body.append("</tbody></table>")
        for a in activations:
            body.append(f'<h3 id="{_anchor(a.name)}">{_escaped(a.name)}</h3>')
            body.append(_items_table(analysis.items_of(a.name)))
            body.extend(_failures(i, names) for i in analysis.items_of(a.name) if i.groups)
    return pages.document(f"Class report ({analysis.students} students)", _STYLE, body)


def csv_text(analysis: ClassAnalysis) -> str:
    buffer = io.StringIO()
    w = csv.writer(buffer, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for i in sorted(analysis.items.values(), key=lambda i: chapter_heading(i.activation)[0]):  # stable: report order
        top = i.ranked()[0] if i.groups else None
        w.writerow([chapter_heading(i.activation)[1], i.activation, i.check, i.attempted, i.passed, i.failed,
                    i.not_started, "" if i.pass_rate is None else f"{i.pass_rate:.3f}", i.flag,
                    csv_text_cell(top.pattern) if top else "", top.count if top else 0,
                    csv_text_cell(top.hint or "") if top else ""])
    return buffer.getvalue()
