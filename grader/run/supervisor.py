"""Grade a submission in a worker process, with limits, survive whatever it does, and judge it here.

The parent never executes student code, and believes nothing the worker says but what it can check.
It reads the file itself (grader/submission/reading.py: bytes, SHA-256, what it defines) and plans
its grading (grader/checks/plan.py): which exercises, checks and devices count, and the maximum.
It starts :mod:`grader.run.worker_main` in its containment (grader/run/containment.py) with limits, hands
it a copy of the file and the plan, and reads its events within the channel's bounds: a result for a
check the plan does not hold, a second one, a second ``loaded`` event are ignored and noted; a
planned check without a result fails. Every verdict is the parent's own: :func:`judge` reruns the
check here against the worker's tape (grader/checks/replay.py). If the worker dies (segfault,
``os._exit``, a hang in C code, the memory limit) the check that was running fails, the rest of that
exercise is lost, and a new worker grades what remains of the plan. How one worker process is
started, fed files and stopped is :mod:`grader.run.worker_control`.
"""
from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from grader.checks.plan import Plan, PlannedCheck, outside_chapters, outside_note, plan
from grader.checks.runner import MESSAGE_CHARS, judge
from grader.core import limits, paths
from grader.core.errors import SubmissionError
from grader.core.results import CheckResult, check_label
from grader.core.text import student_notes, student_text
from grader.run import containment
from grader.run.worker_control import JobEnd, WorkerProcess
from grader.spec.assignment import WHOLE_COURSE, Assignment
from grader.spec.frameworks import TORCH
from grader.spec.mlx_catalog import available as mlx_available
from grader.submission import reading



@dataclass
class Outcome:
    sha256: str = ""
    notes: list[str] = field(default_factory=list)
    results: list[CheckResult] = field(default_factory=list)
    error: str = ""
    framework: str = TORCH.name  # the Framework's name, as reports record it
    # chapters of the exercises the file defines outside the assignment: not graded, said in a note
    other_chapters: list[str] = field(default_factory=list)
    # graded from a clean start, with nothing unexpected on the channel and no worker lost: a result
    # that may stand for an identical file (batch's dedup)
    clean: bool = True


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


def secret_folders(hide: tuple[Path, ...] = (), others: tuple[Path, ...] = ()) -> list[Path]:
    """What no worker may read, however the machine holds it: the course's solutions and history,
    ``hide`` and ``others`` (the class's folder)."""
    return [COURSE_ROOT / "solutions", COURSE_ROOT / ".git", *(Path(h).resolve() for h in (*hide, *others))]


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
    """What one file's grading knows so far, across the workers it takes: the parent's plan, the
    verdicts, the exercises given up on, what the worker was doing when it stopped, and what it sent
    that the plan did not ask for."""

    def __init__(self, path: str, submission: reading.SubmissionFile, plan_: Plan, assignment: Assignment) -> None:
        self.path = path
        self.plan = plan_
        self.planned = {p.key: p for p in plan_.run}
        self.done: dict[tuple[str, str], CheckResult] = {}
        self.given_up: set[str] = set()
        self.outcome = Outcome(sha256=submission.sha256, framework=plan_.framework,
                               other_chapters=outside_chapters(plan_))
        note = outside_note(plan_, assignment)
        self.reading_notes = [note] if note else []
        self.loaded = False  # this process has loaded the file
        self.finished = False  # this process has sent its last event
        self.current: PlannedCheck | None = None
        self.notes_taken = False  # the first process's notes on loading the file are the file's
        self.ignored: dict[str, int] = {}  # what the worker sent that the plan did not ask for, by kind

    def begin(self) -> None:
        """A process (the first, or one after a crash) starts on the file."""
        self.loaded = self.finished = False
        self.current = None

    def todo(self) -> list[PlannedCheck]:
        """The planned checks still without a verdict, of the exercises not given up on."""
        return [p for p in self.plan.run if p.key not in self.done and p.activation not in self.given_up]

    def ignore(self, why: str) -> None:
        self.ignored[why] = self.ignored.get(why, 0) + 1
        self.outcome.clean = False

    def take(self, ev: dict) -> None:
        """One event of the file's process, parsed once, judged as it arrives (while the worker runs
        the next checks)."""
        kind = ev.get("event")
        if self.finished:
            self.ignore("events after the end")
        elif kind == "loaded":
            if self.loaded:
                self.ignore("a second 'loaded' event")
            else:
                self.loaded = True
                if not self.notes_taken:
                    self.outcome.notes = student_notes(ev.get("notes"))
                    self.notes_taken = True
        elif kind == "error":
            if self.loaded:
                self.ignore("an 'error' event after loading")
            else:  # the worker could not load the file: the grade is 0, with its reason
                self.outcome.error = student_text(ev.get("message"), MESSAGE_CHARS) or "cannot be graded"
                self.finished = True
        elif kind == "start":
            planned = self._planned(ev)
            if planned is None or planned.key in self.done or not self.loaded:
                self.ignore("a check the grader did not ask for")
            else:
                self.current = planned
        elif kind == "result":
            planned = self._planned(ev)
            if planned is None or not self.loaded:
                self.ignore("a result for a check the grader did not ask for")
            elif planned.key in self.done:
                self.ignore("a second result for a check")
            else:
                started = time.thread_time()
                self.done[planned.key] = judge(planned, ev.get("status"), ev.get("tape"), ev.get("message"))
                JUDGING.add(time.thread_time() - started)
                self.current = None
        elif kind == "done":
            self.finished = True
            if ev.get("exit_code") not in (0, 1, 5) and not self.done:  # pytest itself could not run
                self.outcome.error = ("grader error: the checks could not run "
                                      f"(pytest exit status {student_text(str(ev.get('exit_code')))})")
            restored = ev.get("restored")
            if isinstance(restored, list) and restored:
                self.outcome.notes.append("the submission replaced " + ", ".join(student_text(r, 80) for r in restored[:8])
                                          + "; the grader restored the originals")
        else:
            self.ignore("unreadable events")

    def _planned(self, ev: dict) -> PlannedCheck | None:
        """The planned check an event names, compared as the parent names it; None for any other."""
        key = (ev.get("activation"), ev.get("check"), ev.get("device"))
        if not all(isinstance(k, str) for k in key):
            return None
        planned = self.planned.get((key[0], check_label(key[1], key[2])))
        return planned if planned is not None and (planned.check, planned.device) == key[1:] else None

    def fail_rest(self, activations: list[str], current: PlannedCheck | None, during: str, left: str) -> None:
        """Every planned check of ``activations`` without a verdict fails: the one that was running
        with ``during``, the others with ``left``."""
        for p in self.plan.run:
            if p.activation in activations and p.key not in self.done:
                why = during if current is not None and p.key == current.key else left
                self.done[p.key] = CheckResult(p.activation, p.check, p.device, "failed", why)

    def results(self) -> list[CheckResult]:
        """Every planned check's verdict (one the worker never sent fails) and those settled here."""
        missing = "the grader's worker sent no result for this check"
        return [self.done.get(p.key) or CheckResult(p.activation, p.check, p.device, "failed", missing)
                for p in self.plan.run] + list(self.plan.settled)


def run(path: str, device: str = "all", check_timeout: float = limits.CHECK_TIMEOUT, memory: int = limits.MEMORY,
        total_timeout: float = limits.TOTAL_TIMEOUT, read_only: tuple[Path, ...] = (),
        hide: tuple[Path, ...] = (), out_of_time: str = "", assignment: Assignment = WHOLE_COURSE,
        others: tuple[Path, ...] = ()) -> Outcome:
    """Grade one submission in workers. ``read_only``: more folders the worker must not change nor
    read (the reports'); ``hide`` and ``others`` (the class's folder): folders it must not read, which
    the grader refuses to grade next to where nothing but file permissions would hide them. The
    course is never visible to the worker. When ``total_timeout`` runs out, what was graded is kept
    and every check left fails with ``out_of_time`` (what ran out) as the reason. A worker that dies
    costs the exercise it was in: a new one grades the rest. Only the exercises of ``assignment`` are
    graded; a note names the others the file defines."""
    return run_many([path], device, check_timeout, memory, total_timeout, read_only, hide, out_of_time,
                    assignment, others)[0]


def run_many(paths_: list[str], device: str = "all", check_timeout: float = limits.CHECK_TIMEOUT,
             memory: int = limits.MEMORY, total_timeout: float = limits.TOTAL_TIMEOUT,
             read_only: tuple[Path, ...] = (), hide: tuple[Path, ...] = (), out_of_time: str = "",
             assignment: Assignment = WHOLE_COURSE, others: tuple[Path, ...] = ()) -> list[Outcome]:
    """Grade several submissions (one student's files) one after the other in one worker, which
    imports torch once and runs each file in a process of its own forked from it
    (grader/run/worker_main.py), in a folder of its own: each file is graded as :func:`run` grades it
    alone, with its own ``total_timeout``. A file whose process dies is taken up where it stopped,
    as in :func:`run`; a worker that dies or is stopped is replaced for what is left."""
    out_of_time = out_of_time or f"the grader's total time limit of {total_timeout:g} s ran out"
    # where namespaces are allowed the worker's view makes what it needs reachable (containment.view)
    refusal = containment.unreachable() if containment.needs_another_user() and not containment.namespaces() else None
    refusal = refusal or containment.exposed(secret_folders(hide, others))
    if refusal:
        return [Outcome(error=refusal) for _ in paths_]  # never run student code as root, nor beside exposed secrets
    unconfined = containment.unconfined()
    cuda, mlx = torch.cuda.is_available(), mlx_available()
    hidden = [Path(p).resolve() for p in (*read_only, *hide, *others)] + \
        [Path(p).resolve().parent for p in paths_]  # the class: a submission's neighbours
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="grader-") as scratch:
        submissions = Path(scratch) / "submissions"
        submissions.mkdir(mode=0o700)
        worker: WorkerProcess | None = None
        try:
            for k, path in enumerate(paths_):
                try:
                    source, submission = _copy(path, submissions, k)
                except SubmissionError as exc:
                    outcomes.append(Outcome(error=_as_original(str(exc), path, submissions / str(k))))
                    continue
                grading = _Grading(path, submission, plan(submission, device, assignment, cuda, mlx), assignment)
                if not grading.plan.run:  # a file with nothing to grade here is not run at all
                    grading.outcome.notes = list(submission.notes)
                else:
                    worker = _grade(grading, source, worker, Path(scratch), submissions, device, check_timeout,
                                    memory, total_timeout, hidden, out_of_time)
                outcomes.append(_finish(grading, path, source, unconfined))
        finally:
            if worker is not None:
                worker.close()
    return outcomes


def _grade(grading: _Grading, source: Path, worker: WorkerProcess | None, scratch: Path, submissions: Path,
           device: str, check_timeout: float, memory: int, total_timeout: float, hidden: list[Path],
           out_of_time: str) -> WorkerProcess | None:
    """Run ``grading``'s plan on ``source`` in ``worker`` (or a new one) until every planned check
    has a verdict or time runs out; returns the worker to grade the next file with."""
    deadline_total = time.monotonic() + total_timeout
    alone = False  # graded in the worker's own process, in a worker of its own
    while True:
        if worker is None or not worker.alive:
            if worker is not None:
                worker.close()
                worker = None
            fresh = WorkerProcess(scratch, device, check_timeout, memory, hidden, submissions)
            fresh.open()
            worker = fresh
        todo = grading.todo()
        grading.begin()
        end = worker.job(str(source), [p.as_list() for p in todo], deadline_total, grading.take, alone)
        if not (alone or worker.alive or end.timed_out or end.overflow):
            # the file's code killed the worker that forked it (a process of the grader it can
            # signal): what it had earned stands, the rest is graded as the file alone
            alone = True
            grading.outcome.clean = False
            if grading.outcome.error:
                return worker
            continue
        if not _absorb_end(grading, end, deadline_total, out_of_time):
            return worker


def _as_original(error: str, path: str, copy_folder: Path) -> str:
    """An error that names the grader's copy of a file, naming the student's file instead."""
    copy = str(copy_folder / Path(path).name)
    return str(Path(path).resolve()) + error[len(copy):] if error.startswith(copy) else error


def _finish(grading: _Grading, path: str, source: Path, unconfined: str | None) -> Outcome:
    outcome = grading.outcome
    outcome.error = _as_original(outcome.error, path, source.parent)
    outcome.notes = grading.reading_notes + outcome.notes
    if grading.ignored:
        what = "; ".join(f"{why} ({n})" for why, n in grading.ignored.items())
        outcome.notes.append(f"the grader ignored what it had not asked for on its result channel: {what}")
    if unconfined:
        outcome.notes.append(unconfined)
    if not outcome.error:
        outcome.results = grading.results()
    return outcome


def _copy(path: str, submissions: Path, number: int) -> tuple[Path, reading.SubmissionFile]:
    """The file the worker reads: a copy of the submission, which only the worker grading it can
    read (grader/run/worker_control.py) and none can write, in a folder holding nothing else; and
    what the parent reads of it. The student's file is read once, here: the copy and the parent's
    reading are the same bytes."""
    original = Path(path).resolve()
    folder = submissions / str(number)
    folder.mkdir(mode=0o755)
    copy = folder / original.name
    raw = reading.read_bytes(original)  # missing, a folder, too large: one line, naming the student's file
    copy.write_bytes(raw)
    os.chmod(copy, 0o644)
    return copy, reading.read(copy, raw)


def _absorb_end(grading: _Grading, end: JobEnd, deadline_total: float, out_of_time: str) -> bool:
    """Take in how one process ended with a file; True when the file needs another one (its process
    died mid-way: the exercise it was in is lost, the rest is graded anew)."""
    outcome = grading.outcome
    if end.overflow:
        outcome.error = (f"too much output on the result channel ({end.overflow}): the grader stopped the "
                         "file's worker")
        outcome.clean = False
        return False
    if outcome.error:
        return False
    if not grading.loaded:  # died while loading the notebook
        why = "timed out" if end.timed_out else _describe(end.returncode, end.stderr_tail)
        outcome.error = (f"{out_of_time} while the submission's cells were running"
                         if time.monotonic() >= deadline_total else f"the submission {why} while its cells were running")
        return False
    if grading.finished:
        return False
    outcome.clean = False
    current = grading.current
    if time.monotonic() < deadline_total:
        why = "took longer than the time limit" if end.timed_out else _describe(end.returncode, end.stderr_tail)
        todo = grading.todo()
        lost = current.activation if current is not None else todo[0].activation if todo else None
        if lost is None:
            return False
        grading.fail_rest([lost], current, f"the grader's worker {why} during this check",
                          f"not run: the worker {why} during {current.check if current else 'loading'}")
        grading.given_up.add(lost)
        grading.current = current = None
    if time.monotonic() >= deadline_total:  # keep what was graded: no check is left out of the report
        grading.fail_rest(grading.plan.activations, current, f"{out_of_time} during this check", f"not run: {out_of_time}")
        outcome.notes.append(f"{out_of_time}: the checks left were not run")
        return False
    return bool(grading.todo())
