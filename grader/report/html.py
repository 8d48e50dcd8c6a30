"""HTML pieces every view of a result shares (a check()'s table in a notebook, grade()'s report, the
feedback page): plain strings, styled inline so that any notebook front end shows them the same."""
from __future__ import annotations

import html

_MARK = {True: ("✓", "ok"), False: ("✗", "fail"), None: ("–", "skip")}


# Inline, because a notebook's front end styles output tables its own way (JupyterLab and the classic
# Notebook right-align every cell and centre the table): an element's own style wins over theirs.
TABLE_STYLE = "border-collapse:collapse;margin:.5rem auto 1rem 0;table-layout:auto;width:auto"
CELL_STYLE = ("text-align:left;vertical-align:top;padding:.15rem .6rem;border:none;"
              "border-bottom:1px solid #eee;white-space:normal")


def cell(tag: str, content: str, style: str = "", cls: str = "") -> str:
    """A ``<th>`` or ``<td>`` aligned left whatever the page's stylesheet says."""
    attributes = f' class="{cls}"' if cls else ""
    return f'<{tag}{attributes} style="{CELL_STYLE}{";" + style if style else ""}">{content}</{tag}>'


def table(header: list[str], rows: list[list[str]], cls: str = "checks") -> str:
    """A table of already escaped cells, left-aligned in any notebook front end."""
    out = [f'<table class="{cls}" style="{TABLE_STYLE}"><thead><tr>'
           + "".join(cell("th", h) for h in header) + "</tr></thead><tbody>"]
    out += ["<tr>" + "".join(row) + "</tr>" for row in rows]
    out.append("</tbody></table>")
    return "\n".join(out)


def checks_table(rows: list[tuple[str, bool | None, str, list[str]]]) -> str:
    """The table of checks (name, passed or None when skipped, message, notes): shared with the
    notebook's ``check()`` display."""
    body = []
    for name, passed, message, notes in rows:
        mark, cls = _MARK[passed]
        colour = {"ok": "#1a7f37", "fail": "#c00000", "skip": "#888"}[cls]
        body.append([cell("td", f"<code>{html.escape(name)}</code>"),
                     cell("td", mark, f"color:{colour}", cls),
                     cell("td", html.escape(message) + notes_html(notes))])
    return table(["check", "", "message"], body)


def notes_html(notes: list[str]) -> str:
    return "".join(f'<div class="note" style="color:#666;font-size:.9em">note: {html.escape(n)}</div>'
                   for n in notes)
