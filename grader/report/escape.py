"""Text a student controls (a check's message quotes their output and names their files), shown in
Markdown that others render: GitHub's release bodies and job summaries, Gradescope's output.

:func:`markdown_text` makes it literal text on one line: no heading, list, table cell break, link,
image, HTML tag, code span or emphasis of the student's making, and no ``@name`` that would notify
someone. CommonMark lets any ASCII punctuation be escaped with a backslash
(https://spec.commonmark.org/0.31.2/#backslash-escapes), GitHub's tables split cells at an
unescaped ``|`` even inside code spans (https://github.github.com/gfm/#tables-extension-), and its
mentions are found in the rendered text, so ``@`` gets a zero-width space after it instead.
"""
from __future__ import annotations

import re

_PUNCTUATION = re.compile(r"([!\"#$%&'()*+,\-./:;<=>?\[\\\]^_`{|}~])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
ZERO_WIDTH_SPACE = "\u200b"


def markdown_text(text: str, limit: int | None = None) -> str:
    """``text`` as literal Markdown on one line, cut to ``limit`` characters (before escaping) with
    an ellipsis."""
    text = _CONTROL.sub(" ", str(text)).strip()
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return _PUNCTUATION.sub(r"\\\1", text).replace("@", "@" + ZERO_WIDTH_SPACE)
