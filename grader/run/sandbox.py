"""Run a submission in a worker process, with limits, survive whatever it does, and judge it here.

The parent never executes student code. It starts :mod:`grader.run.worker` in a scratch directory with
an address-space limit (a huge allocation fails inside the worker), no core dumps, a cap on file
size and, where mount namespaces are allowed, the course and submission folders read-only. It
watches the event stream with a per-check deadline; if the worker dies (segfault, ``os._exit``, a
hang in C code, the memory limit) it fails the check that was running, counts the rest of that
exercise as lost, and starts a new worker for the exercises that remain. Every verdict is the
parent's own: :func:`judge` reruns the check here against the worker's tape (grader/checks/replay.py).
How one worker process is started, fed files and stopped is :mod:`grader.run.worker_process`.
"""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from grader.run import containment
from grader.core import limits
from grader.checks import replay
from grader.spec.catalog import BY_NAME
from grader.spec.assignment import BY_KEY, WHOLE_COURSE, Assignment, exercise_key
from grader.core.errors import CheckFailure
from grader.checks.harness import Impl
from grader.checks.registry import CHECKS_BY_NAME, checks_for
from grader.submission.framework import framework_of
from grader.core.results import DEVICES, NO_CUDA, CheckResult, check_label
from grader.core import paths
from grader.run.worker_process import WorkerProcess



@dataclass
class Outcome:
    sha256: str = ""
    notes: list[str] = field(default_factory=list)
    results: list[CheckResult] = field(default_factory=list)
    error: str = ""
    framework: str = "torch"
    # chapters of the exercises the file defines outside the assignment: not graded, said in a note
    other_chapters: list[str] = field(default_factory=list)


COURSE_ROOT = paths.ROOT


def _describe(returncode: int | None, stderr_tail: str) -> str:
    if returncode is None:
        return "was stopped"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        what = {"SIGSEGV": "crashed (segmentation fault)", "SIGKILL": "was killed (out of memory or time)",
                "SIGABRT": "aborted"}.get(name, f"died of {name}")
        return what
    hint = f": {stderr_tail}" if stderr_tail else ""
    return f"exited with status {returncode}{hint}"


def hidden_folders(hide: tuple[Path, ...] = ()) -> list[Path]:
    """Folders the worker sees empty, where mount namespaces are allowed: the course's solutions and
    ``hide``."""
    folders = {COURSE_ROOT / "solutions", *(Path(h).resolve() for h in hide)}
    return sorted(f for f in folders if f.is_dir())


class Tally:
    """Seconds added up by several threads."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self.seconds += seconds


JUDGING = Tally()  # CPU seconds this process spent judging workers' results (batch reports them)


class _Grading:
    """What one submission's grading knows so far, across the workers it takes: the results, the
    activations given up on, and what the worker was doing when it stopped."""

    def __init__(self, path: str, device: str, assignment: Assignment = WHOLE_COURSE) -> None:
        self.outcome = Outcome()
        self.done: dict[tuple[str, str], CheckResult] = {}
        self.skip: set[str] = set()
        self.graded: list[str] | None = None
        self.devices = DEVICES[device]
        self.framework = framework_of(path)  # read, not run: an MLX submission gets the MLX checks
        self.outcome.framework = self.framework
        self.assignment = assignment
        # never graded: the worker is told to leave them out
        self.outside = {name for name in BY_NAME if not assignment.includes(name, self.framework)}
        self.cuda = torch.cuda.is_available()
        self.verdicts: dict[int, CheckResult] = {}

    def judge_now(self, ev: dict) -> None:
        """Judge each result as it arrives, while the worker runs the next checks."""
        r = _result(ev) if ev.get("event") == "result" else None
        if r is not None and r.activation in BY_NAME and r.check in CHECKS_BY_NAME:
            started = time.thread_time()
            self.verdicts[id(ev)] = judge(r, ev.get("tape"))
            JUDGING.add(time.thread_time() - started)

    def absorb(self, events: list[dict]) -> tuple[tuple | None, bool]:
        """Take in one worker's events; returns the check it was running when it stopped (None if
        none) and whether it finished. Sets ``outcome.error`` when the file cannot be graded."""
        current, finished = None, False
        for ev in events:
            kind = ev.get("event")
            if kind == "error":
                self.outcome.error = str(ev.get("message", "cannot be graded"))
                return current, True
            if kind == "loaded":
                if self.graded is None:
                    defined = [g for g in ev.get("graded", []) if g in BY_NAME]
                    self.graded = [g for g in defined if g not in self.outside]
                    self.outcome.sha256 = str(ev.get("sha256", ""))
                    self.outcome.notes = [str(n) for n in ev.get("notes", [])]
                    self._note_outside([g for g in defined if g in self.outside])
            elif kind == "start":
                current = (ev.get("activation"), ev.get("check"), ev.get("device"))
            elif kind == "result":
                r = _result(ev)
                if r is not None and r.activation in (self.graded or []) and r.check in CHECKS_BY_NAME:
                    self.done[(r.activation, r.name)] = self.verdicts[id(ev)]
                current = None
            elif kind == "done":
                finished = True
                if ev.get("exit_code") not in (0, 1, 5) and not self.done:  # pytest itself could not run
                    self.outcome.error = ("grader error: the checks could not run "
                                          f"(pytest exit status {ev.get('exit_code')})")
                    return current, True
                restored = ev.get("restored") or []
                if restored:
                    self.outcome.notes.append("the submission replaced " + ", ".join(map(str, restored[:8]))
                                              + "; the grader restored the originals")
        return current, finished

    def _note_outside(self, names: list[str]) -> None:
        if not names:
            return
        keys = [exercise_key(n, self.framework) for n in names]
        chapters = sorted({BY_KEY[k].chapter for k in keys if k in BY_KEY})
        self.outcome.other_chapters = chapters
        self.outcome.notes.append(
            f"not graded: {', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''} of "
            f"{', '.join(chapters) or 'no chapter'}, outside this assignment ({self.assignment.describe()})")

    def fail_rest(self, activations: list[str], current: tuple | None, during: str, left: str) -> None:
        """Every check of ``activations`` without a result fails: the one that was running with
        ``during``, the others with ``left`` (CUDA checks without CUDA are skipped, as always)."""
        for name in activations:
            for check, dev in checks_for(BY_NAME[name], self.devices, self.framework):
                key = (name, check_label(check.name, dev))
                if key in self.done:
                    continue
                if dev == "cuda" and not self.cuda:
                    self.done[key] = CheckResult(name, check.name, dev, "skipped", NO_CUDA)
                elif current == (name, check.name, dev):
                    self.done[key] = CheckResult(name, check.name, dev, "failed", during)
                else:
                    self.done[key] = CheckResult(name, check.name, dev, "failed", left)

    def complete(self) -> set[str]:
        """The activations whose checks are all in."""
        return {g for g in self.graded or [] if _complete(g, self.done, self.devices, self.framework)}

    def unfinished(self) -> str | None:
        """The next activation whose checks are not all in, not given up on."""
        return next((g for g in self.graded or [] if g not in self.skip
                     and not _complete(g, self.done, self.devices, self.framework)), None)


def run(path: str, device: str = "all", check_timeout: float = limits.CHECK_TIMEOUT, memory: int = limits.MEMORY,
        total_timeout: float = limits.TOTAL_TIMEOUT, read_only: tuple[Path, ...] = (),
        hide: tuple[Path, ...] = (), out_of_time: str = "", assignment: Assignment = WHOLE_COURSE) -> Outcome:
    """Grade one submission in workers. ``read_only``: more folders the worker must not change (the
    report's); the course and the submission's own folder always are, where the system allows.
    ``hide``: more folders the worker must not read (the course's solutions always are).
    When ``total_timeout`` runs out, what was graded is kept and every check left fails with
    ``out_of_time`` (what ran out) as the reason. A worker that dies costs the exercise it was in:
    a new one grades the rest. Only the exercises of ``assignment`` are graded; a note names the
    others the file defines."""
    return run_many([path], device, check_timeout, memory, total_timeout, read_only, hide, out_of_time,
                    assignment)[0]


def run_many(paths: list[str], device: str = "all", check_timeout: float = limits.CHECK_TIMEOUT,
             memory: int = limits.MEMORY, total_timeout: float = limits.TOTAL_TIMEOUT,
             read_only: tuple[Path, ...] = (), hide: tuple[Path, ...] = (), out_of_time: str = "",
             assignment: Assignment = WHOLE_COURSE) -> list[Outcome]:
    """Grade several submissions (one student's files) one after the other in one worker, which
    imports torch once and runs each file in a process of its own forked from it
    (grader/run/worker.py): each file is graded as :func:`run` grades it alone, with its own
    ``total_timeout``. A file whose process dies is taken up where it stopped, as in :func:`run`; a
    worker that dies or is stopped is replaced for what is left."""
    out_of_time = out_of_time or f"the grader's total time limit of {total_timeout:g} s ran out"
    hidden = hidden_folders(hide)
    another_user = containment.needs_another_user()
    refusal = containment.unreachable() if another_user else None
    if refusal:
        return [Outcome(error=refusal) for _ in paths]  # never run student code as root instead
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="grader-") as scratch:
        sources = [_source(p, Path(scratch), k, another_user, hidden) for k, p in enumerate(paths)]
        protected = {COURSE_ROOT, *(s.parent for s in sources), *read_only}
        worker: WorkerProcess | None = None
        try:
            for path, source in zip(paths, sources):
                grading = _Grading(path, device, assignment)
                deadline_total = time.monotonic() + total_timeout
                alone = False  # graded in the worker's own process, in a worker of its own
                while True:
                    if worker is None or not worker.alive:
                        if worker is not None:
                            worker.close()
                            worker = None
                        fresh = WorkerProcess(Path(scratch), device, check_timeout, memory, protected, hidden)
                        fresh.open()
                        worker = fresh
                    events, returncode, stderr_tail, timed_out = worker.job(str(source), grading.skip | grading.outside,
                                                                            deadline_total, grading.judge_now, alone)
                    if not (alone or worker.alive or timed_out):
                        # the file's code killed the worker that forked it (a process of the grader it can
                        # signal): what it had earned stands, the rest is graded as the file alone
                        alone = True
                        grading.absorb(events)
                        if grading.outcome.error:
                            break
                        grading.skip |= grading.complete()
                        continue
                    if not _absorb_one(grading, events, returncode, stderr_tail, timed_out, deadline_total,
                                       out_of_time):
                        break
                outcomes.append(_finish(grading, path, source))
        finally:
            if worker is not None:
                worker.close()
    return outcomes


def _finish(grading: _Grading, path: str, source: Path) -> Outcome:
    outcome = grading.outcome
    if outcome.error.startswith(str(source)) and source != Path(path).resolve():
        outcome.error = str(Path(path).resolve()) + outcome.error[len(str(source)):]  # the copy is ours, not the student's
    if not outcome.error:
        outcome.results = list(grading.done.values())
    return outcome


def _source(path: str, scratch: Path, number: int, another_user: bool, hidden: list[Path]) -> Path:
    """The file the worker reads: the submission itself, or a copy of it where the worker could
    not (another user) or must not (a hidden folder) read the original."""
    source = Path(path).resolve()
    if another_user or any(source.is_relative_to(h) for h in hidden):
        # the solutions themselves are hidden; another user may not reach the submission's folder
        copy = scratch / f"submission-{number}" / source.name
        copy.parent.mkdir()
        shutil.copyfile(source, copy)
        os.chmod(copy, 0o644)
        return copy
    return source


def _absorb_one(grading: _Grading, events: list[dict], returncode: int | None, stderr_tail: str, timed_out: bool,
                deadline_total: float, out_of_time: str) -> bool:
    """Take in what one process did with a file; True when the file needs another one (its process
    died mid-way: the exercise it was in is lost, the rest is graded anew)."""
    outcome = grading.outcome
    current, finished = grading.absorb(events)
    if outcome.error:
        return False
    if grading.graded is None:  # died while loading the notebook
        why = "timed out" if timed_out else _describe(returncode, stderr_tail)
        outcome.error = (f"{out_of_time} while the submission's cells were running"
                         if time.monotonic() >= deadline_total else f"the submission {why} while its cells were running")
        return False
    if finished:
        return False
    if time.monotonic() < deadline_total:
        why = "took longer than the time limit" if timed_out else _describe(returncode, stderr_tail)
        lost = current[0] if current and current[0] in BY_NAME else grading.unfinished()
        if lost is None:
            return False
        grading.fail_rest([lost], current, f"the grader's worker {why} during this check",
                          f"not run: the worker {why} during {current[1] if current else 'loading'}")
        grading.skip.add(lost)
        current = None
    if time.monotonic() >= deadline_total:  # keep what was graded: no check is left out of the report
        grading.fail_rest(grading.graded, current, f"{out_of_time} during this check", f"not run: {out_of_time}")
        outcome.notes.append(f"{out_of_time}: the checks left were not run")
        return False
    return True


def judge(worker: CheckResult, tape: str | None) -> CheckResult:
    """The parent's verdict: run the check again here, where torch has never met student code,
    replaying what the worker recorded of the student's code (grader/checks/replay.py)."""
    if worker.status == "skipped":
        return worker
    try:
        entries = replay.decode(tape) if tape else None
    except Exception:
        entries = None
    if entries is None:
        return CheckResult(worker.activation, worker.check, worker.device, "failed",
                           "grader error: the worker sent no readable record of this check",
                           [f"the worker reported {worker.status}; the grader's own verdict is failed"])
    impl = Impl(BY_NAME[worker.activation], None)
    notes: list[str] = []
    with replay.using(replay.Tape("replay", entries)):
        try:
            notes = CHECKS_BY_NAME[worker.check].run(impl, worker.device)
            status, message = "passed", ""
        except replay.TapeEnded:  # the worker's check stopped there: a timeout inside the grader
            status, message = "failed", worker.message or "the worker's check stopped early"
        except CheckFailure as exc:
            status, message = "failed", str(exc)
        except Exception as exc:  # a tape that does not fit the check: forged or corrupt
            status, message = "failed", f"grader error while judging: {type(exc).__name__}: {exc}"[:300]
    if status != worker.status:
        notes = notes + [f"the worker reported {worker.status}; the grader's own verdict is {status}"]
    return CheckResult(worker.activation, worker.check, worker.device, status, message.splitlines()[0] if message else "",
                       [str(n) for n in notes])


def _complete(activation: str, done: dict, devices: list[str], framework: str = "torch") -> bool:
    return all((activation, check_label(c.name, d)) in done
               for c, d in checks_for(BY_NAME[activation], devices, framework))


def _result(ev: dict) -> CheckResult | None:
    try:
        status = ev["status"]
        if status not in ("passed", "failed", "skipped"):
            return None
        return CheckResult(str(ev["activation"]), str(ev["check"]), str(ev["device"]), status,
                           str(ev.get("message", "")), [str(n) for n in ev.get("notes", [])])
    except (KeyError, TypeError):
        return None
