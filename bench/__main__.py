"""How fast the course's own tools are: ``python -m bench`` (``make bench``).

Each figure is the wall-clock time of a command as a ratio to a bare ``python -c "import torch"``
timed in the same run on the same machine, printed next to its goal (issue 11; issue 10 for
``check``). Ratios, not seconds, so that a slower or busier machine does not move the verdict much;
the load average before and after says how busy it was. The test suite's own time (``make test``)
is not measured here: it takes minutes.

Other benchmarks live beside this one: ``bench/activation_cost.py`` (what an activation costs),
``bench/check_times.py`` (how long the grader's checks take).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ONE_CHAPTER = "solutions/01_standard.ipynb"

# check() of one activation, in one process as a notebook kernel runs it: the first call, then a later one.
CHECK_SCRIPT = """
import json, time
from grader.submission.loader import load
from grader.notebook import check
ns = load("solutions/01_standard.ipynb").namespace
times = []
for _ in range(2):
    start = time.perf_counter()
    result = check("ReLU", device="cpu", namespace=ns)
    times.append(time.perf_counter() - start)
print(json.dumps({"times": times, "score": [result.score, result.max_score]}))
"""


@dataclass
class Task:
    name: str
    what: str            # the command as a reader would type it
    goal: float | None   # at most this many times a bare import of torch
    source: str          # where the goal comes from
    run: Callable[[], tuple[float, str]]   # seconds, and a note ("" when all went well)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as the grader's command line does
        print(f"error: {message} (see python -m bench --help)", file=sys.stderr)
        raise SystemExit(2)


def _env() -> dict:
    """The children import this checkout's grader, installed or not."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def _timed(argv: list[str], ok: Callable[[subprocess.CompletedProcess], bool] = lambda r: r.returncode == 0
           ) -> tuple[float, str]:
    start = time.perf_counter()
    r = subprocess.run(argv, cwd=ROOT, env=_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if ok(r):
        return seconds, ""
    tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or [""]
    return seconds, f"exit status {r.returncode}: {tail[0][:160]}"


def jupyter_book() -> str | None:
    exe = Path(PY).with_name("jupyter-book")
    return str(exe) if exe.exists() else shutil.which("jupyter-book")


BUILD_OPTIONS = ["--warningiserror", "--nitpick", "--keep-going"]   # as the Makefile's `book` target


def _warm_book() -> tuple[float, str]:
    jb = jupyter_book()
    if jb is None:
        return float("nan"), "skipped: jupyter-book is not installed (make setup)"
    if not (ROOT / "_mathjax" / "mathjax" / "tex-mml-chtml.js").exists():
        return float("nan"), "skipped: MathJax is missing (make mathjax)"
    # The first build executes whatever changed since the last one (all of it without a cache), so
    # that the timed second build is the warm one: no notebook changed, everything read from the cache.
    print("  (a preparatory build, not timed, brings the execution cache up to date)", file=sys.stderr, flush=True)
    first, note = _timed([jb, "build", ".", *BUILD_OPTIONS])
    if note:
        return first, f"the preparatory build failed, {note}"
    return _timed([jb, "build", ".", *BUILD_OPTIONS])


def _check_times() -> list[float] | str:
    from importlib.util import find_spec

    if find_spec("grader.notebook") is None:
        return "skipped: grader.notebook is missing"
    probe = subprocess.run([PY, "-c", "import grader.notebook as n; raise SystemExit(0 if hasattr(n, 'check') else 3)"],
                           cwd=ROOT, env=_env(), capture_output=True)
    if probe.returncode != 0:
        return "skipped: this grader has no grader.notebook.check"
    r = subprocess.run([PY, "-c", CHECK_SCRIPT], cwd=ROOT, env=_env(), capture_output=True, text=True)
    if r.returncode != 0:
        return f"exit status {r.returncode}: {(r.stderr.strip().splitlines() or [''])[-1][:160]}"
    return json.loads(r.stdout.strip().splitlines()[-1])["times"]


def tasks() -> list[Task]:
    solutions = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "solutions").glob("*.ipynb"))
    grade = [PY, "-m", "grader", "--device", "cpu"]
    check: dict[str, list[float] | str] = {}

    def check_call(i: int) -> tuple[float, str]:
        if "times" not in check:
            check["times"] = _check_times()
        times = check["times"]
        return (float("nan"), times) if isinstance(times, str) else (times[i], "")

    return [
        Task("grade-all", f"python -m grader solutions/*.ipynb --device cpu ({len(solutions)} notebooks)", 20.0,
             "issue 11", lambda: _timed(grade + solutions)),
        Task("grade-one", f"python -m grader {ONE_CHAPTER} --device cpu", 5.0, "issue 11",
             lambda: _timed(grade + [ONE_CHAPTER])),
        Task("book", "jupyter-book build . (warm: no notebook changed)", 10.0, "issue 11", _warm_book),
        Task("check-first", 'check("ReLU") in a kernel, first call', 2.0, "issue 10", lambda: check_call(0)),
        Task("check-later", 'check("ReLU") in a kernel, a later call', 1.0, "issue 10", lambda: check_call(1)),
    ]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def load() -> str:
    try:
        return "load average %.1f %.1f %.1f" % os.getloadavg()
    except OSError:
        return "load average unknown"


def main(argv: list[str] | None = None) -> int:
    p = _Parser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                epilog="tasks: " + ", ".join(t.name for t in tasks()))
    p.add_argument("--only", action="append", metavar="TASK", help="run only this task (repeatable)")
    p.add_argument("--baseline-runs", type=int, default=5, metavar="N",
                   help="time the bare import of torch N times and divide by the median (default 5)")
    p.add_argument("--dry-run", action="store_true", help="print the machine, the commands and the goals; run nothing")
    args = p.parse_args(argv)
    chosen = tasks()
    known = {t.name for t in chosen}
    for name in args.only or []:
        if name not in known:
            p.error(f"--only {name}: unknown task (one of {', '.join(sorted(known))})")
    if args.only:
        chosen = [t for t in chosen if t.name in args.only]
    if args.baseline_runs < 1:
        p.error("--baseline-runs must be at least 1")

    print(f"machine: {machine()}")
    print(f"start: {time.strftime('%Y-%m-%d %H:%M')}, {load()}")
    if args.dry_run:
        print('baseline: python -c "import torch"')
        for t in chosen:
            print(f"  {t.name:12} {t.what}  (goal <= {t.goal:g}x, {t.source})")
        return 0

    baseline = [_timed([PY, "-c", "import torch"])[0] for _ in range(args.baseline_runs)]
    base = statistics.median(baseline)
    print(f'baseline: python -c "import torch": {base:.2f} s (median of {len(baseline)}, '
          f"{min(baseline):.2f}-{max(baseline):.2f} s)")
    print(f"  {'task':12} {'seconds':>8} {'ratio':>8}   {'goal':8} what")
    failed = False
    for t in chosen:
        seconds, note = t.run()
        ratio = seconds / base
        if note and seconds != seconds:   # nan: not measured
            verdict = note
        else:
            verdict = ("met" if ratio <= t.goal else "NOT met") + (f"; {note}" if note else "")
            failed |= bool(note)
        shown = f"{seconds:8.1f} {ratio:7.2f}x" if seconds == seconds else f"{'-':>8} {'-':>8}"
        print(f"  {t.name:12} {shown}   {f'<= {t.goal:g}x':8} {t.what}: {verdict} ({t.source})", flush=True)
    print(f"end: {load()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
