from __future__ import annotations

from pathlib import Path

from grader.catalog import BY_NAME, chapter_stem
from grader.loader import Submission, load

ROOT = Path(__file__).resolve().parent.parent


def solution_path(activation: str) -> Path:
    return ROOT / "solutions" / f"{chapter_stem(BY_NAME[activation].chapter)}.ipynb"


def fresh_solution(activation: str, extra_code: str = "") -> Submission:
    """A freshly executed solution notebook, with ``extra_code`` run after it (a wrong or
    alternative implementation overriding some names). Fresh, so functions see the overrides."""
    sub = load(solution_path(activation))
    assert not sub.notes, sub.notes
    if extra_code:
        exec(compile(extra_code, f"<override {activation}>", "exec"), sub.namespace)
    return sub
