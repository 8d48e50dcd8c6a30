"""Run a submission in a worker process, with limits, survive whatever it does, and judge it here.

The parent never executes student code. It starts :mod:`grader.run.worker` in a scratch directory with
an address-space limit (a huge allocation fails inside the worker), no core dumps, a cap on file
size and, where mount namespaces are allowed, the course and submission folders read-only. It
watches the event stream with a per-check deadline; if the worker dies (segfault, ``os._exit``, a
hang in C code, the memory limit) it fails the check that was running, counts the rest of that
exercise as lost, and starts a new worker for the exercises that remain. Every verdict is the
parent's own: :func:`judge` reruns the check here against the worker's tape (grader/checks/replay.py).
"""
from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

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


def _tail(path: Path) -> str:
    try:
        lines = [l for l in path.read_text(errors="replace").splitlines() if l.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def hidden_folders(hide: tuple[Path, ...] = ()) -> list[Path]:
    """Folders the worker sees empty, where mount namespaces are allowed: the course's solutions and
    ``hide``."""
    folders = {COURSE_ROOT / "solutions", *(Path(h).resolve() for h in hide)}
    return sorted(f for f in folders if f.is_dir())


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
            self.verdicts[id(ev)] = judge(r, ev.get("tape"))

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
    grading = _Grading(path, device, assignment)
    outcome = grading.outcome
    deadline_total = time.monotonic() + total_timeout
    out_of_time = out_of_time or f"the grader's total time limit of {total_timeout:g} s ran out"
    hidden = hidden_folders(hide)
    another_user = containment.needs_another_user()
    refusal = containment.unreachable() if another_user else None
    if refusal:
        outcome.error = refusal  # never run student code as root instead
        return outcome
    with tempfile.TemporaryDirectory(prefix="grader-") as scratch:
        source = Path(path).resolve()
        if another_user or any(source.is_relative_to(h) for h in hidden):
            # the solutions themselves are hidden; another user may not reach the submission's folder
            copy = Path(scratch) / "submission" / source.name
            copy.parent.mkdir()
            shutil.copyfile(source, copy)
            os.chmod(copy, 0o644)
            source = copy
        while True:
            events, returncode, stderr_tail, timed_out = _one_worker(
                str(source), device, check_timeout, memory, grading.skip | grading.outside, Path(scratch), deadline_total, read_only,
                hidden, grading.judge_now)
            current, finished = grading.absorb(events)
            if outcome.error:
                return outcome
            if grading.graded is None:  # died while loading the notebook
                why = "timed out" if timed_out else _describe(returncode, stderr_tail)
                outcome.error = (f"{out_of_time} while the submission's cells were running"
                                 if time.monotonic() >= deadline_total else f"the submission {why} while its cells were running")
                return outcome
            if finished:
                break
            if time.monotonic() < deadline_total:
                why = "took longer than the time limit" if timed_out else _describe(returncode, stderr_tail)
                lost = current[0] if current and current[0] in BY_NAME else grading.unfinished()
                if lost is None:
                    break
                grading.fail_rest([lost], current, f"the grader's worker {why} during this check",
                                  f"not run: the worker {why} during {current[1] if current else 'loading'}")
                grading.skip.add(lost)
                current = None
            if time.monotonic() >= deadline_total:  # keep what was graded: no check is left out of the report
                grading.fail_rest(grading.graded, current, f"{out_of_time} during this check", f"not run: {out_of_time}")
                outcome.notes.append(f"{out_of_time}: the checks left were not run")
                break
    outcome.results = list(grading.done.values())
    return outcome


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


def _worker_home(scratch: Path, user: tuple[int, int]) -> Path:
    """The worker's own folder when it runs as another user: the scratch folder (root's) can be
    crossed but not listed or written; ``work-UID/`` inside it is the worker's working directory."""
    os.chmod(scratch, 0o711)
    home = scratch / f"work-{user[0]}"
    home.mkdir(exist_ok=True)
    os.chown(home, *user)
    return home


def _one_worker(path: str, device: str, check_timeout: float, memory: int, skip: set[str], scratch: Path,
                deadline_total: float, extra_read_only: tuple[Path, ...] = (),
                hidden: list[Path] = (), on_event: Callable[[dict], None] = lambda ev: None,
                ) -> tuple[list[dict], int | None, str, bool]:
    """Run one worker (in its keeper, grader/run/keeper.py) to its end; returns its events, exit status,
    last stderr line, and whether it was stopped for time. Nothing it started is left running."""
    read_fd, write_fd = os.pipe()
    stderr_path = scratch / "stderr.txt"
    protected = {COURSE_ROOT, Path(path).resolve().parent, *extra_read_only}
    read_only = [str(p) for p in sorted(protected) if p.is_dir() and p != Path("/")]
    # the worker imports the grader this parent runs, installed or not (it starts in a scratch folder)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join(filter(None, [str(COURSE_ROOT), os.environ.get("PYTHONPATH")])))
    worker = [sys.executable, "-m", "grader.run.worker", str(Path(path).resolve()), "--device", device,
              "--check-timeout", str(check_timeout), "--result-fd", str(write_fd), "--skip", ",".join(sorted(skip))]
    with contextlib.ExitStack() as stack:
        user = stack.enter_context(containment.worker_user())  # released last, when nothing of it runs
        cap = containment.ProcessCap.create()
        cwd = scratch
        if user is not None:  # root's home and caches are not the worker's
            cwd = _worker_home(scratch, user)
            env.update(HOME=str(cwd), MPLCONFIGDIR=str(cwd / ".matplotlib"), XDG_CACHE_HOME=str(cwd / ".cache"),
                       USER=containment.WORKER_USER, LOGNAME=containment.WORKER_USER)
        stack.callback(lambda: cap.close() if cap is not None else None)
        # the keeper limits itself before it starts the worker, which inherits all of it: nothing runs
        # between fork and exec here, where the grader's threads would make it unsafe
        setup = ["--memory", str(memory), "--file-size", str(limits.FILE_SIZE)]
        if cap is not None:
            setup += ["--cgroup", str(cap.path)]
        elif os.geteuid() != 0:
            setup += ["--processes", str(limits.PROCESSES)]
        if containment.privileged():  # the course and the submissions read-only, the solutions hidden
            setup += [a for path in read_only for a in ("--read-only", path)]
            setup += [a for path in hidden for a in ("--hide", str(path))]
        with open(stderr_path, "wb") as stderr:
            proc = subprocess.Popen(
                containment.command(worker, write_fd, user, setup), pass_fds=(write_fd,), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=stderr, cwd=cwd, env=env, start_new_session=True)
        os.close(write_fd)
        events, timed_out = _read_events(read_fd, check_timeout, deadline_total, proc, on_event)
        returncode = _end(proc)  # the keeper has killed all the worker left: its uid is free again
    exits = [ev for ev in events if ev.get("event") == "worker-exit"]
    if exits and isinstance(exits[-1].get("returncode"), int):
        returncode = exits[-1]["returncode"]  # the worker's own status, as its keeper saw it
    return events, returncode, _tail(stderr_path), timed_out


def _read_events(read_fd: int, check_timeout: float, deadline_total: float, proc: subprocess.Popen,
                 on_event: Callable[[dict], None]) -> tuple[list[dict], bool]:
    """The worker's events until the pipe closes (the keeper closes it last, once nothing the worker
    started is left) or time runs out; then the worker is stopped."""
    events: list[dict] = []
    buffer = b""
    # a check may take check_timeout inside the worker (which then fails it itself); allow slack for
    # the worker's own start-up and for hangs in C code that its alarm cannot interrupt
    grace = check_timeout * 2 + 60
    last = time.monotonic()
    timed_out = False
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        while True:
            wait = min(grace - (time.monotonic() - last), deadline_total - time.monotonic())
            if wait <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([pipe], [], [], min(wait, 5.0))
            if not ready:
                continue
            chunk = pipe.read(65536)
            if not chunk:
                break
            last = time.monotonic()
            buffer += chunk
            if len(buffer) > limits.EVENT_BYTES:  # one line that never ends: not an event
                buffer = b""
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                try:
                    ev = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue
                if isinstance(ev, dict):
                    events.append(ev)
                    on_event(ev)
            last = time.monotonic()  # time spent judging is not the worker's
        if timed_out:
            _stop(proc)
            # the keeper reports the worker's end and what it killed: read it if it comes at once
            rest = b""
            while select.select([pipe], [], [], 2.0)[0]:
                chunk = pipe.read(65536)
                if not chunk:
                    break
                rest += chunk
            for line in rest.split(b"\n"):
                try:
                    ev = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue
                if isinstance(ev, dict) and ev.get("event") == "worker-exit":
                    events.append(ev)
    return events, timed_out


def _stop(proc: subprocess.Popen) -> None:
    """Ask the keeper to end the worker (it then kills every process left below it)."""
    try:
        proc.send_signal(signal.SIGTERM)
    except ProcessLookupError:
        pass


def _end(proc: subprocess.Popen) -> int | None:
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return proc.wait()
