"""How long a notebook's ``check("<Activation>")`` takes, as a ratio to a bare ``python -c "import torch"``
measured in the same run on the same machine (a benchmark, not a test).

Each activation is checked in a fresh interpreter standing in for a kernel that has run the
chapter's cells (torch imported, the reference solution defined): the first call (which also imports
the grader and warms torch's dispatch machinery up) and then several more. A second row per
activation named in ``--wrong`` checks a realistic wrong implementation, which fails and draws its
picture (matplotlib's import and first figure included in its first call).

    python bench/check_speed.py                      # every activation
    python bench/check_speed.py ReLU GELU --repeat 7
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WRONG = {  # a failing implementation: its check draws a picture
    "Sigmoid": "def sigmoid(input):\n    return 1 / (1 + torch.exp(-input))\n",
    "ELU": "def elu(input, alpha=1.0, inplace=False):\n    return torch.where(input > 0, input, alpha * (torch.exp(input) - 1))\n",
}

KERNEL = r"""
import json, sys, time
import torch
from grader.catalog import BY_NAME, chapter_stem
from grader.submission.loader import load
name, extra, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
namespace = load(f"solutions/{chapter_stem(BY_NAME[name].chapter)}.ipynb").namespace
exec(extra, namespace)
start = time.perf_counter()
from grader.notebook import check
report = check(name, namespace=namespace)
first = time.perf_counter() - start
later = []
for _ in range(repeat):
    start = time.perf_counter()
    report = check(name, namespace=namespace)
    later.append(time.perf_counter() - start)
print(json.dumps({"first": first, "later": later, "score": report.score, "max": report.max_score,
                  "picture": report.figure is not None}))
"""


def env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def import_torch(runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=True, env=env())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name: str, extra: str, repeat: int) -> dict:
    r = subprocess.run([sys.executable, "-c", KERNEL, name, extra, str(repeat)], capture_output=True, text=True,
                       cwd=ROOT, env=env(), timeout=600)
    if r.returncode != 0:
        raise SystemExit(f"error: {name}: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    from grader.catalog import ACTIVATIONS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("activations", nargs="*", help="default: every activation of the catalogue")
    p.add_argument("--repeat", type=int, default=5, help="calls after the first (median reported)")
    p.add_argument("--torch-runs", type=int, default=3, help="runs of `python -c 'import torch'` per row (median)")
    p.add_argument("--wrong", nargs="*", default=sorted(WRONG), help="also time a failing implementation of these")
    args = p.parse_args(argv)
    names = args.activations or [a.name for a in ACTIVATIONS]
    # the machine's load may change during the run: time `import torch` next to every row and divide
    # each row by the import measured just before it
    print(f"{os.cpu_count()} CPUs, torch threads default; each row divided by a bare "
          f"`python -c 'import torch'` timed just before it (median of {args.torch_runs})\n")
    print(f"{'check(...)':<24} {'score':>7} {'torch':>7} {'first':>8} {'x torch':>8} {'later':>8} {'x torch':>8}")
    rows = [(n, "") for n in names] + [(n, WRONG[n]) for n in args.wrong if n in WRONG and n in names]
    firsts, laters, bases = [], [], []
    for name, extra in rows:
        base = import_torch(args.torch_runs)
        m = measure(name, extra, args.repeat)
        later = statistics.median(m["later"])
        label = name + (" (wrong, picture)" if extra else "")
        bases.append(base)
        firsts.append(m["first"] / base)
        laters.append(later / base)
        print(f"{label:<24} {m['score']:>3}/{m['max']:<3} {base:>6.2f}s {m['first']:>7.2f}s {firsts[-1]:>7.2f}x "
              f"{later:>7.3f}s {laters[-1]:>7.2f}x")
    print(f"\nimport torch: median {statistics.median(bases):.2f} s (from {min(bases):.2f} to {max(bases):.2f})")
    print(f"first call: median {statistics.median(firsts):.2f}x, worst {max(firsts):.2f}x import torch; "
          f"later calls: median {statistics.median(laters):.2f}x, worst {max(laters):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
