"""The repository's notebooks on disk: one format, and generated files written or checked."""
from __future__ import annotations

import json
import sys
from pathlib import Path


def dumps(nb: dict) -> str:
    """The one on-disk format of every notebook in the repository."""
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def write_or_check(generated: list[tuple[Path, str]], check: bool, root: Path, command: str) -> int:
    """Write each generated file that differs on disk; with ``check``, write nothing and return 1
    (naming the files and the command that fixes them) if any differs."""
    stale = [path for path, text in generated
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    if check:
        if stale:
            print(f"out of date (run `{command}`): " + ", ".join(str(s.relative_to(root)) for s in stale),
                  file=sys.stderr)
        return 1 if stale else 0
    for path, text in generated:
        if path in stale:
            path.parent.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(root)}")
    return 0
