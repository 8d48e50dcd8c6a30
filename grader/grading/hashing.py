"""A file's SHA-256: what says that a file is unchanged since the last report (resume) and that two
students handed in the same file (dedup), and what the gradebook records of every file graded."""
from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20  # a notebook with outputs can be large: never read whole


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_entries(paths: list[Path], root: Path) -> list[dict]:
    """The gradebook's record of a student's files: each one's path under ``root`` and SHA-256."""
    return [{"path": path.relative_to(root).as_posix(), "sha256": sha256(path)} for path in paths]
