"""Files the grader writes for others to read (reports, gradebooks, pages, results.json): written
whole or not at all, so a reader never sees half of one."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: str | Path, text: str, shared: bool = False) -> None:
    """Write ``text`` to a temporary file beside ``path``, then put it in place with one rename: a
    reader sees the old file or the new one. Nothing is left behind when it fails (the error is
    raised). ``shared``: readable as any file written here (umask), not only by its owner."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        if shared:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
