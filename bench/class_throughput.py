"""Class throughput of ``python -m grader batch``: generate a class, grade it, report students per hour.

    python bench/class_throughput.py --students 200 --jobs 2

Each student is a clone of their repository (``exercises/NN_<chapter>.ipynb``, every exercise
notebook of the course), cycling through a mix: complete (the solutions), partial (half the chapters solved),
untouched (the exercises as generated), broken (one notebook that is not JSON, the rest
untouched), empty (no notebook) and hostile (a solution whose ``relu`` kills its worker with
``os._exit``, so the grader restarts a worker mid-notebook). Each notebook a student worked on is
his own file (a cell names him), each untouched one the same bytes for everyone, as in a real
class: the batch grades identical files once. A benchmark, not a test: it takes
minutes per ten students on two cores.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# one cycle of ten students: what a class hands in, roughly
MIX = ["complete", "complete", "complete", "partial", "partial", "untouched", "complete", "broken", "partial",
       "hostile"]
HOSTILE = "import os\n_relu = relu\ndef relu(input, inplace=False):\n    os._exit(3)\n"


def notebook_with_cell(source: Path, code: str) -> str:
    nb = json.loads(source.read_text(encoding="utf-8"))
    nb["cells"].append({"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                        "source": code})
    return json.dumps(nb)


def make_class(root: Path, n: int) -> Counter:
    """As a real class hands it in: every notebook a student worked on is a file of his own (here a
    cell naming him), every exercise he left untouched the same bytes as everyone else's."""
    solutions = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
    exercises = {p.name: p for p in (ROOT / "exercises").glob("*.ipynb")}
    kinds = Counter()
    for i in range(n):
        kind = MIX[i % len(MIX)] if i % 20 != 19 else "empty"
        kinds[kind] += 1
        name = f"student{i:03d}"
        repo = root / f"activations-{name}"
        (repo / "exercises").mkdir(parents=True)
        (repo / "README.md").write_text("student repository\n")
        if kind == "empty":
            continue
        mine = f"# {name}'s work\n"
        for j, sol in enumerate(solutions):
            target = repo / "exercises" / sol.name
            if kind == "complete" or (kind == "partial" and j % 2 == 0):
                target.write_text(notebook_with_cell(sol, mine))
            elif kind == "hostile" and j == 0:
                target.write_text(notebook_with_cell(sol, mine + HOSTILE))
            elif kind == "broken" and j == 1:
                target.write_text('{"cells": [' + json.dumps(mine))
            else:
                shutil.copyfile(exercises[sol.name], target)
    return kinds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--students", type=int, default=200)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, help="keep the class and the gradebook here (default: a temporary folder)")
    args = p.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="class-bench-"))
    submissions = work / "submissions"
    if submissions.exists():
        shutil.rmtree(submissions)
    kinds = make_class(submissions, args.students)
    print(f"class of {args.students} in {submissions}: " + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())),
          flush=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    start, before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([sys.executable, "-m", "grader", "batch", str(submissions), "--csv", str(work / "gradebook.csv"),
                        "--json", str(work / "report.json"), "--jobs", str(args.jobs), "--force",
                        "--strip-prefix", "activations-"], cwd=ROOT, env=env)
    elapsed = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if r.returncode not in (0, 1):
        print(f"batch failed with exit status {r.returncode}", file=sys.stderr)
        return 1
    rows = list(csv.DictReader((work / "gradebook.csv").open()))
    errors = sum(1 for row in rows if row["error"])
    rate = args.students / elapsed * 3600
    print(f"graded {len(rows)} students ({errors} with an error line) in {elapsed:.0f} s with --jobs {args.jobs} "
          f"on {os.cpu_count()} CPUs: {rate:.0f} students/hour; a class of 500 would take {500 / rate * 60:.0f} min")
    # the batch's own line above ("files: ...") says how many files were graded and where its CPU time went
    print(f"CPU time of the batch and everything below it: {cpu:.0f} s, {cpu / args.students:.1f} s per student "
          f"({args.students * 3600 / cpu * os.cpu_count():.0f} students/hour if the {os.cpu_count()} CPUs did nothing "
          "else and were all busy)")
    if not args.out:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
