"""Self-contained HTML pages and reports: PNG images embedded as data URIs, and files written
atomically with a one-line error when they cannot be. Shared by the commands that write pages, so
a page can be mailed or uploaded as it is and a reader never sees half of one."""
from __future__ import annotations

import base64
import html
import sys
from pathlib import Path
from grader.core.files import write_atomic


def img(data: bytes, alt: str) -> str:
    """An ``<img>`` carrying its PNG, so the page needs no other file."""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">'


def document(title: str, style: str, body: list[str]) -> str:
    """A whole page; ``title`` is escaped here, ``body`` is HTML already."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            # an empty icon: otherwise a browser asks the server for /favicon.ico and logs a 404
            f'<link rel="icon" href="data:,"><title>{html.escape(title)}</title><style>{style}</style></head>\n'
            f'<body>\n' + "\n".join(body) + "\n</body></html>\n")


def write(text: str, path: str | Path, option: str) -> bool:
    """Write ``text`` atomically, readable like any file written here (a page is for sharing);
    a path that cannot be written is a one-line error naming ``option`` (False)."""
    try:
        write_atomic(path, text, shared=True)
    except OSError as exc:
        print(f"error: {option} {path}: {exc.strerror or exc}", file=sys.stderr)
        return False
    return True
