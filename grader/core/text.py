"""Text that comes from the worker (a note, a failure's message): the student's code may have
written any of it. The parent keeps it as one bounded line of printable characters, so that it
cannot end a terminal's line, move its cursor or fill the reports; each output then escapes it for
its own format (HTML, Markdown, CSV)."""
from __future__ import annotations

from grader.core import limits


def student_text(value: object, limit: int = limits.NOTE_CHARS) -> str:
    """``value`` as the grader keeps text from the worker: a string (anything else is dropped), its
    first line, non-printable characters written as escapes (``\\x1b``), at most ``limit``
    characters (the cut marked ``...``)."""
    if not isinstance(value, str):
        return ""
    lines = value[: limit * 8].splitlines()
    line = lines[0] if lines else ""
    shown = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in line)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def student_notes(values: object, count: int = limits.NOTES, limit: int = limits.NOTE_CHARS) -> list[str]:
    """At most ``count`` notes of :func:`student_text`, from a list the worker sent."""
    if not isinstance(values, list):
        return []
    notes = [student_text(v, limit) for v in values[:count]]
    return [n for n in notes if n]
