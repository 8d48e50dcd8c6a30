"""``python -m grader SUBMISSION... --html feedback.html``: one self-contained page of feedback.

Per submission and activation: the table of checks, then every failure with its hint and, for a
values, grad, edges or kinks failure of an elementwise activation, a picture of the student's f and f'
against torch's (PNG, embedded). No script, no external file: the page can be mailed or uploaded as a
CI artifact as it is.

The parent draws the pictures without running student code: the worker evaluated the student's
functions around the failing inputs after the check failed and recorded the numbers on the check's
tape (grader/feedback/curves.py); the parent watches the tapes it replays while it judges, validates those
numbers against the catalogue and computes torch's curves itself. The verdicts never depend on them.
"""
from __future__ import annotations

import base64
import contextlib
import html
from pathlib import Path
from typing import Iterator

import torch

from grader import __version__
from grader.feedback import curves, pages
from grader.checks import replay
from grader.spec.catalog import BY_NAME
from grader.feedback.hints import hint_for
from grader.report.html import cell, checks_table, notes_html, table
from grader.report.model import NO_ACTIVATION_SENTENCE, SubmissionResult
from grader.core.results import parse_check_label

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 70rem;
       padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #ccc; }
table.checks { border-collapse: collapse; margin: .5rem 0 1rem; }
table.checks td, table.checks th { padding: .15rem .6rem; border-bottom: 1px solid #eee; text-align: left;
       vertical-align: top; }
td.ok { color: #1a7f37; } td.fail { color: #c00000; } td.skip { color: #888; }
.note { color: #666; font-size: .9em; }
.failure { border-left: 4px solid #c00000; padding: .2rem 1rem; margin: 1rem 0; background: #fcf7f7; }
.hint { background: #fff8dc; padding: .4rem .6rem; border-radius: 4px; }
img { max-width: 100%; height: auto; display: block; margin: .5rem 0; }
summary { cursor: pointer; font-weight: 600; font-size: 1.1rem; margin: .6rem 0; }
code { font-size: .95em; }
"""

class Collector:
    """Collects, per graded submission in order, the curves its worker recorded."""

    def __init__(self) -> None:
        self.recorded: dict[int, dict[tuple[str, str], tuple]] = {}

    @contextlib.contextmanager
    def watch(self, index: int) -> Iterator[None]:
        """Around the grading of submission number ``index`` (submissions are graded in threads)."""
        with replay.watching(lambda tape: curves.has_curves(tape.entries)) as tapes:
            yield
        found: dict[tuple[str, str], tuple] = {}
        for tape in tapes:
            for activation, check, failure, student in curves.from_tape(tape.entries):
                found[(activation, check)] = (failure, student)
        self.recorded[index] = found


def page(reports: list[SubmissionResult], collector: Collector | None = None, device: str = "all") -> str:
    from grader.feedback import plots

    drawing = plots.available()
    body = ["<h1>Feedback from the activation-functions grader</h1>",
            f"<p>grader {html.escape(__version__)}, torch {html.escape(torch.__version__)}, "
            f"checks on {html.escape(device)}. ✓ passed, ✗ failed, – skipped; one point per check.</p>"]
    if not drawing:
        body.append("<p>Pictures of failures need matplotlib, which is not installed here.</p>")
    for n, report in enumerate(reports):
        found = collector.recorded.get(n, {}) if collector else {}
        body.append(_submission(report, found, drawing))
    title = "Feedback: " + ", ".join(Path(r.path).name for r in reports)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{html.escape(title)}</title><style>{STYLE}</style></head>\n'
            f'<body>\n' + "\n".join(body) + "\n</body></html>\n")


def _submission(report: SubmissionResult, found: dict, drawing: bool) -> str:
    out = [f"<h2>{html.escape(report.path)}</h2>"]
    if report.error:
        out.append(f'<p class="failure">Cannot be graded: {html.escape(report.error)}</p>')
        return "\n".join(out)
    out.append(f"<p><strong>{report.score} of {report.max_score} points</strong>"
               + (f" (sha256 <code>{report.sha256[:12]}</code>)" if report.sha256 else "") + "</p>")
    out.extend(f'<p class="note">note: {html.escape(n)}</p>' for n in report.notes)
    if not report.exercises:
        out.append(f"<p>{html.escape(NO_ACTIVATION_SENTENCE)}</p>")
    for e in report.exercises:
        failed = [r for r in e.checks if r.status == "failed"]
        out.append(f"<details{' open' if failed else ''}><summary>{html.escape(e.name)}: "
                   f"{e.score} of {e.max_score} checks pass</summary>")
        out.append(checks_table([(r.name, r.passed, r.message, r.notes) for r in e.checks]))
        for r in failed:
            out.append(_failure(e.activation, r.name, r.message, found.get((e.activation, r.name)), drawing))
        out.append("</details>")
    return "\n".join(out)


def _failure(activation: str, check: str, message: str, recorded: tuple | None, drawing: bool) -> str:
    out = [f'<div class="failure"><p><strong><code>{html.escape(check)}</code></strong>: {html.escape(message)}</p>']
    hint = hint_for(activation, check, message)
    if hint:
        out.append(f'<p class="hint"><strong>Hint:</strong> {html.escape(hint)}</p>')
    if recorded is not None and drawing:
        figure = _figure(activation, check, *recorded)
        if figure:
            out.append(figure)
    out.append("</div>")
    return "\n".join(out)


def _figure(activation: str, check: str, failure, student: tuple) -> str:
    from grader.feedback import plots

    entry = BY_NAME[activation]
    device = parse_check_label(check)[1]
    if device != "cpu" and not torch.cuda.is_available():
        device = "cpu"
    try:
        shown = curves.build(entry, check, failure, device, student)
        data = plots.png(shown)
    except Exception:  # a picture is a bonus: the verdicts stand without it
        return ""
    if not data:
        return ""
    alt = (f"{activation} {check}: your f and f' against torch's around x = "
           f"{curves.describe_inputs(list(failure.inputs))}")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">'


def write(reports: list[SubmissionResult], path: str | Path, collector: Collector | None = None,
          device: str = "all") -> bool:
    """Write the page atomically; a path that cannot be written is a one-line error (False)."""
    return pages.write(page(reports, collector, device), path, "--html")
