"""Generate exercise notebooks from the solution notebooks.

``python -m grader.exercises [--check]``: every ``### BEGIN SOLUTION`` ... ``### END SOLUTION``
region of ``solutions/NN_*.ipynb`` becomes ``raise NotImplementedError`` (nbgrader's convention) in
``exercises/NN_*.ipynb``. Cells tagged ``check`` call the stubs, so they get ``raises-exception``
(nbval then expects the error). ``--check`` writes nothing and fails if an exercise is out of date.
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = "raise NotImplementedError"
ROOT = Path(__file__).resolve().parent.parent


class MarkerError(ValueError):
    pass


def strip_solutions(source: str, where: str = "") -> str:
    """Replace each solution region by a stub at the marker's indentation."""
    out, inside, indent = [], False, ""
    for n, line in enumerate(source.split("\n"), start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise MarkerError(f"{where} line {n}: {BEGIN} inside another solution region")
            inside, indent = True, line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}{STUB}")
        elif stripped == END:
            if not inside:
                raise MarkerError(f"{where} line {n}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise MarkerError(f"{where}: {BEGIN} is never closed")
    return "\n".join(out)


def dumps(nb: dict) -> str:
    """The one on-disk format of every notebook in the repository."""
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def clean(nb: dict) -> dict:
    """No outputs, no execution counts: notebooks are committed clean."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return nb


def make_exercise(solution: dict, name: str = "") -> dict:
    nb = clean(copy.deepcopy(solution))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        stub = strip_solutions(source, f"{name} cell {i + 1}")
        cell["source"] = stub if isinstance(cell["source"], str) else stub.splitlines(keepends=True)
        tags = cell.setdefault("metadata", {}).get("tags", [])
        if "check" in tags and "raises-exception" not in tags:
            cell["metadata"]["tags"] = tags + ["raises-exception"]
    return nb


def exercise_path(solution: Path, root: Path = ROOT) -> Path:
    return root / "exercises" / solution.name


def solutions(root: Path = ROOT) -> list[Path]:
    return sorted(p for p in (root / "solutions").glob("*.ipynb") if re.match(r"\d\d_", p.name))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m grader.exercises", description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="fail if an exercise differs from its generated form")
    p.add_argument("--root", type=Path, default=ROOT, help="the course repository (default: this checkout)")
    args = p.parse_args(argv)
    stale = []
    for sol in solutions(args.root):
        try:
            text = dumps(make_exercise(json.loads(sol.read_text(encoding="utf-8")), sol.name))
        except (MarkerError, json.JSONDecodeError) as exc:
            print(f"error: {sol}: {exc}", file=sys.stderr)
            return 2
        target = exercise_path(sol, args.root)
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        stale.append(target)
        if not args.check:
            target.parent.mkdir(exist_ok=True)
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target.relative_to(args.root)}")
    if args.check and stale:
        print("out of date (run `python -m grader.exercises`): " + ", ".join(str(s.relative_to(args.root)) for s in stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
