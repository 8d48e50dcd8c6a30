"""Peak memory of a Gradescope run (``python -m grader gradescope --run``), counted as the container would.

    python bench/gradescope_memory.py                   # the largest chapter, the MLX chapter, the whole course
    python bench/gradescope_memory.py --limit-mb 768    # the same under Gradescope's default limit

Gradescope kills an autograder whose container uses more than its memory limit (768 MB by default),
and the container counts every process in it: run_autograder's Python (the parent, which imports
torch and judges every check again), the keeper and the worker that runs the student's code (which
imports torch too). So each run here happens in a memory cgroup of its own (root: cgroup v1's
``memory`` controller or cgroup v2), and reports

- the cgroup's peak (``memory.max_usage_in_bytes`` / ``memory.peak``): every page charged to the run,
  page cache included; the kernel reclaims the cache before it kills anything, and files already
  cached by other processes on this machine (torch's libraries) are charged to them, not to the run;
- the peak, sampled every 0.1 s, of the processes' proportional set size summed over the cgroup
  (``Pss`` of ``/proc/PID/smaps_rollup``): their own memory with shared pages split among them, the
  part that cannot be reclaimed without killing.

With ``--limit-mb`` the cgroup is capped (no swap here) and the run shows whether grading finishes
under that limit with the same score, and how many processes the kernel killed. ``cpu_seconds``
(the run's processes, user and system) says what Gradescope's default half a CPU makes of the time.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.catalog import ACTIVATIONS, CHAPTER_NUMBERS  # noqa: E402
from grader.spec.assignment import MLX_CHAPTER  # noqa: E402

V1, V2 = Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup")
MB = 10**6


def largest_chapter() -> Path:
    """The torch chapter with the most activations (most checks per notebook)."""
    counts: dict[str, int] = {}
    for a in ACTIVATIONS:
        counts[a.chapter] = counts.get(a.chapter, 0) + 1
    chapter = max(counts, key=counts.get)
    return ROOT / "solutions" / f"{CHAPTER_NUMBERS[chapter]:02d}_{chapter}.ipynb"


class Cgroup:
    """A fresh memory cgroup (v1 or v2), removed on close."""

    def __init__(self, name: str, limit: int | None) -> None:
        if (V1 / "memory.max_usage_in_bytes").exists():
            self.v2, self.path = False, V1 / name
        elif "memory" in (V2 / "cgroup.controllers").read_text().split():
            self.v2, self.path = True, V2 / name
        else:
            raise SystemExit("error: no memory cgroup controller here (cgroup v1 memory or v2)")
        self.path.mkdir()
        if limit:
            if self.v2:
                (self.path / "memory.max").write_text(str(limit))
                (self.path / "memory.swap.max").write_text("0")
            else:
                (self.path / "memory.limit_in_bytes").write_text(str(limit))
                memsw = self.path / "memory.memsw.limit_in_bytes"
                if memsw.exists():  # memory + swap: no swapping around the limit
                    memsw.write_text(str(limit))

    def enter(self) -> None:  # in the child, before exec
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def peak(self) -> int:
        return int((self.path / ("memory.peak" if self.v2 else "memory.max_usage_in_bytes")).read_text())

    def oom_kills(self) -> int:
        text = (self.path / ("memory.events" if self.v2 else "memory.oom_control")).read_text()
        return next((int(line.split()[1]) for line in text.splitlines() if line.startswith("oom_kill ")), 0)

    def close(self) -> None:
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except OSError:  # the last processes are still leaving
                time.sleep(0.1)


def _role(pid: int) -> str:
    """parent (``python -m grader gradescope``), grader.run.keeper, grader.run.worker_main or the program's name."""
    try:
        words = [w.decode(errors="replace") for w in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    except OSError:
        return "gone"
    if Path(words[0]).name.startswith("unshare"):
        return "unshare"
    if any(w.endswith("/grader/run/keeper.py") for w in words):
        return "grader.run.keeper"
    if any("grader.run.worker_main" in w for w in words):  # python -I -c "... from grader.run.worker_main import ..."
        return "grader.run.worker_main"
    module = words[words.index("-m") + 1] if "-m" in words[:-1] else ""
    return "parent" if module == "grader" else module or Path(words[0]).name


def pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _children_cpu() -> float:
    """CPU seconds of every process this one has waited for, and theirs (each waits for its own)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(notebooks: list[Path], limit: int | None) -> dict:
    """One ``gradescope --run`` of these notebooks as one submission, in a cgroup of its own."""
    work = Path(tempfile.mkdtemp(prefix="gs-memory-"))
    try:
        (work / "submission").mkdir()
        for nb in notebooks:
            shutil.copyfile(nb, work / "submission" / nb.name)
        group = Cgroup(f"gradescope-memory-{os.getpid()}", limit)
        peak_pss, parts, done = 0, {}, threading.Event()

        def sample() -> None:
            nonlocal peak_pss, parts
            while not done.is_set():
                now = {p: pss(p) for p in group.pids()}
                if sum(now.values()) > peak_pss:  # what each process held at the peak
                    peak_pss = sum(now.values())
                    parts = {f"{_role(p)} {p}": round(b / MB) for p, b in now.items()}
                time.sleep(0.1)

        env = dict(os.environ, PYTHONPATH=str(ROOT))
        start, cpu = time.monotonic(), _children_cpu()
        try:
            # the child joins the cgroup before exec, so everything it starts is counted
            proc = subprocess.Popen([sys.executable, "-m", "grader", "gradescope", "--run", str(work)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=work,
                                    preexec_fn=group.enter)
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            returncode = proc.wait()
            elapsed, cpu = time.monotonic() - start, _children_cpu() - cpu
            done.set()
            sampler.join()
            peak, kills = group.peak(), group.oom_kills()
        finally:
            done.set()
            group.close()
        try:
            results = json.loads((work / "results" / "results.json").read_text())
        except (OSError, ValueError):
            results = {}
        return {"notebooks": [nb.name for nb in notebooks], "limit_mb": limit and limit / MB,
                "exit_status": returncode, "seconds": round(elapsed, 1), "cpu_seconds": round(cpu, 1), "cgroup_peak_mb": round(peak / MB),
                "pss_peak_mb": round(peak_pss / MB), "pss_at_peak_mb": parts, "oom_kills": kills, "score": results.get("score"),
                "output": str(results.get("output", ""))[:200]}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit-mb", type=float, metavar="MB", help="cap the cgroup at this many MB (10^6 bytes)")
    p.add_argument("--only", choices=["chapter", "mlx", "course"], help="one of the three runs")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("error: run as root: it creates a memory cgroup", file=sys.stderr)
        return 2
    if args.limit_mb is not None and args.limit_mb <= 0:
        print("error: --limit-mb must be positive", file=sys.stderr)
        return 2
    limit = int(args.limit_mb * MB) if args.limit_mb else None
    # MLX's chapter alone: its worker imports MLX besides torch (the bundle installs it on Gradescope)
    runs = {"chapter": [largest_chapter()], "mlx": [ROOT / "solutions" / f"{MLX_CHAPTER}.ipynb"],
            "course": sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))}
    for name, notebooks in runs.items():
        if args.only in (None, name):
            print(json.dumps({"run": name, **measure(notebooks, limit)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
