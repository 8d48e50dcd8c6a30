"""Colab set-up cells, derived from the one place that holds the repository's address: ``_config.yml``.

A notebook opened in Colab from a launch button arrives alone, without the course's files. Its
first code cell (tagged ``colab-setup``) fetches what it needs there and does nothing anywhere else:
a book chapter clones the repository and runs from its ``book/`` folder; an exercise installs the
grader. ``python -m grader.authoring.launch [--check]`` rewrites (or checks) those cells in ``book/``; the
exercise generator writes them into ``exercises/``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from grader.core.paths import ROOT

TAG = "colab-setup"


def repository(root: Path = ROOT) -> tuple[str, str]:
    """The public repository's URL and branch, as ``_config.yml`` gives them to the launch buttons."""
    import yaml  # instructors' tooling only: the grader itself does not need PyYAML

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    repo = config.get("repository") or {}
    if not repo.get("url"):
        raise SystemExit(f"error: {root / '_config.yml'} has no repository.url")
    return repo["url"].rstrip("/"), repo.get("branch", "main")


def chapter_cell(url: str, branch: str) -> str:
    return f'''\
# Colab opens this page alone: fetch the course (helpers, solutions, grader) once and run from book/.
import os, subprocess, sys
if "google.colab" in sys.modules and not os.path.exists("bookutils.py"):
    if not os.path.isdir("/content/course"):
        subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", "{branch}",
                        "{url}", "/content/course"], check=True)
    os.chdir("/content/course/book")
    sys.path[:0] = ["/content/course/book", "/content/course"]'''


def exercise_cell(url: str, branch: str) -> str:
    return f'''\
# In Colab, install the course's grader first (with `make setup` you have it already).
import subprocess, sys
if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "git+{url}@{branch}"], check=True)'''


def code_cell(source: str, tags: list[str]) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": {"tags": tags}, "outputs": [],
            "source": source}


def with_setup(nb: dict, source: str, tags: list[str] = ()) -> dict:
    """``nb`` with its ``colab-setup`` cell set to ``source``: replaced if present, else inserted
    before the first code cell."""
    cells = nb["cells"]
    cell = code_cell(source, [TAG, *tags])
    for i, c in enumerate(cells):
        if TAG in c.get("metadata", {}).get("tags", []):
            cells[i] = cell
            return nb
    first = next((i for i, c in enumerate(cells) if c["cell_type"] == "code"), len(cells))
    cells.insert(first, cell)
    return nb


def chapters(root: Path = ROOT) -> list[Path]:
    return sorted((root / "book").glob("*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    from grader.authoring.notebooks import dumps, write_or_check

    p = argparse.ArgumentParser(prog="python -m grader.authoring.launch", description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="fail if a chapter's Colab cell is out of date")
    p.add_argument("--root", type=Path, default=ROOT)
    args = p.parse_args(argv)
    source = chapter_cell(*repository(args.root))
    generated = [(path, dumps(with_setup(json.loads(path.read_text(encoding="utf-8")), source, ["remove-cell"])))
                 for path in chapters(args.root)]
    return write_or_check(generated, args.check, args.root, "python -m grader.authoring.launch")

if __name__ == "__main__":
    sys.exit(main())
