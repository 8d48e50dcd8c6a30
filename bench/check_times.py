"""How long the checks of correct activations take: the figure the default time limit is set from.

``python bench/check_times.py``: every check of every solution notebook, and of the correct but
naive forms the test suite proves the vectorised check with (a Python loop over elements), run
in-process on the CPU; prints the slowest checks and the slowest notebook cells, and the ratio of
the default per-check limit (grader/core/limits.py) to the slowest correct check.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from grader.core import limits
from grader.submission import loader  # noqa: E402
from grader.catalog import BY_NAME  # noqa: E402
from grader.core.errors import CheckFailure
from grader.checks.harness import Impl
from grader.checks.torch_checks import checks_for  # noqa: E402


def time_checks(label: str, sub: loader.Submission, only: str | None = None) -> list[tuple[float, str, str]]:
    rows = []
    for entry in sub.graded:
        if only and entry.name != only:
            continue
        for check, device in checks_for(entry, ["cpu"]):
            start = time.perf_counter()
            try:
                check.run(Impl(entry, sub.namespace), device)
                verdict = "passed"
            except CheckFailure:
                verdict = "failed"
            rows.append((time.perf_counter() - start, f"{label} {entry.name} {check.name}", verdict))
    return rows


def main() -> None:
    cells: list[tuple[float, str]] = []
    run_cell = loader._run_cell

    def timed(sub, path, number, *rest):
        start = time.perf_counter()
        run_cell(sub, path, number, *rest)
        cells.append((time.perf_counter() - start, f"{path.name} cell {number}"))

    loader._run_cell = timed
    rows = []
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        rows += time_checks(path.stem, loader.load(path))
    from conftest import fresh_solution
    from test_checks_prove import WRONG

    for w in WRONG:
        if w.check == "vectorised":  # correct values, only the loop is wrong
            rows += [r for r in time_checks("naive", fresh_solution(w.activation, w.code), w.activation)
                     if not r[1].endswith("vectorised")]
    loader._run_cell = run_cell
    rows.sort(reverse=True)
    cells.sort(reverse=True)
    print("slowest checks (in-process, CPU):")
    for seconds, what, verdict in rows[:8]:
        print(f"  {seconds:7.3f} s  {what}  ({verdict})")
    print("slowest cells:")
    for seconds, what in cells[:3]:
        print(f"  {seconds:7.3f} s  {what}")
    slowest = max(rows[0][0], cells[0][0])
    print(f"{len(rows)} checks, {sum(r[0] for r in rows):.1f} s in all; default limit {limits.CHECK_TIMEOUT:g} s "
          f"= {limits.CHECK_TIMEOUT / slowest:.0f}x the slowest correct check or cell ({slowest:.2f} s)")
    assert BY_NAME  # the catalogue loaded


if __name__ == "__main__":
    main()
