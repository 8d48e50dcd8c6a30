"""One worker process (grader/run/worker.py, in its keeper, grader/run/keeper.py) as the grader
drives it: started with its limits and containment, handed one file after another, its events read
with deadlines, stopped. :mod:`grader.run.sandbox` decides what to grade and judges what comes back.
"""
from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from grader.checks.harness import export_references
from grader.core import limits, paths
from grader.run import containment
from grader.run.worker import CHILD, WORKER

def _tail(path: Path) -> str:
    try:
        lines = [l for l in path.read_text(errors="replace").splitlines() if l.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


_live: set["WorkerProcess"] = set()  # the workers running now, for stop_all
_live_lock = threading.Lock()
_stopping = threading.Event()


def stop_all() -> None:
    """Stop every worker of this process now, and start no other (``batch`` on Ctrl-C): each
    grading in progress ends at once, with what was graded."""
    with _live_lock:
        _stopping.set()
        for worker in _live:
            _stop(worker.proc)


def _worker_home(scratch: Path, user: tuple[int, int]) -> Path:
    """The worker's own folder when it runs as another user: the scratch folder (root's) can be
    crossed but not listed or written; ``work-UID/`` inside it is the worker's working directory."""
    os.chmod(scratch, 0o711)
    home = scratch / f"work-{user[0]}"
    home.mkdir(exist_ok=True)
    os.chown(home, *user)
    return home


MAX_EVENTS = 200_000  # events kept for one file (tapes are judged and dropped as they come): more is a flood


class WorkerProcess:
    """One worker (in its keeper, grader/run/keeper.py) from :meth:`open` to :meth:`close`: it grades
    files one after the other through :meth:`job`, until it dies or is stopped (:attr:`alive`)."""

    def __init__(self, scratch: Path, device: str, check_timeout: float, memory: int, protected: set[Path],
                 hidden: list[Path]) -> None:
        self.scratch, self.device, self.check_timeout, self.memory = scratch, device, check_timeout, memory
        self.read_only = [str(p) for p in sorted(protected) if p.is_dir() and p != Path("/")]
        self.hidden = hidden
        self.stack = contextlib.ExitStack()
        self.alive = False
        self.buffer = b""
        self.returncode: int | None = None  # the worker's own, from its keeper's last event

    def open(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stack.close()
            raise

    def close(self) -> None:
        """No more jobs: the worker exits, its keeper kills what is left, reports and ends."""
        try:
            if self.alive:
                self.proc.stdin.close()
                self._read_until(lambda ev: None, time.monotonic() + 30)
        except OSError:
            pass
        finally:
            _stop(self.proc)
            _end(self.proc)  # the keeper has killed all the worker left: its uid is free again
            self.pipe.close()
            self.stack.close()
            self.alive = False
            with _live_lock:
                _live.discard(self)

    def _start(self) -> None:
        read_fd, write_fd = os.pipe()
        self.stderr_path = self.scratch / "stderr.txt"
        # the worker imports the grader this parent runs, installed or not (it starts in a scratch folder)
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(paths.ROOT), os.environ.get("PYTHONPATH")])))
        worker = [sys.executable, "-m", "grader.run.worker", "--device", self.device,
                  "--check-timeout", str(self.check_timeout), "--result-fd", str(write_fd)]
        user = self.stack.enter_context(containment.worker_user())  # released last, when nothing of it runs
        cap = containment.ProcessCap.create()
        cwd = self.scratch
        if user is not None:  # root's home and caches are not the worker's
            cwd = _worker_home(self.scratch, user)
            env.update(HOME=str(cwd), MPLCONFIGDIR=str(cwd / ".matplotlib"), XDG_CACHE_HOME=str(cwd / ".cache"),
                       USER=containment.WORKER_USER, LOGNAME=containment.WORKER_USER)
        self.stack.callback(lambda: cap.close() if cap is not None else None)
        # the keeper limits itself before it starts the worker, which inherits all of it: nothing runs
        # between fork and exec here, where the grader's threads would make it unsafe
        setup = ["--memory", str(self.memory), "--file-size", str(limits.FILE_SIZE)]
        if cap is not None:
            setup += ["--cgroup", str(cap.path)]
        elif os.geteuid() != 0:
            setup += ["--processes", str(limits.PROCESSES)]
        if containment.privileged():  # the course and the submissions read-only, the solutions hidden
            setup += [a for path in self.read_only for a in ("--read-only", path)]
            setup += [a for path in self.hidden for a in ("--hide", str(path))]
        # appended to, so that the parent can empty it before each file while the worker holds it open
        with open(self.stderr_path, "ab") as stderr, _live_lock:
            if _stopping.is_set():
                os.close(write_fd)
                os.close(read_fd)
                raise RuntimeError("interrupted")
            self.proc = subprocess.Popen(
                containment.command(worker, write_fd, user, setup), pass_fds=(write_fd,), stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=stderr, cwd=cwd, env=env, start_new_session=True)
            _live.add(self)
        os.close(write_fd)
        self.pipe = os.fdopen(read_fd, "rb", buffering=0)
        self.alive = True
        references = export_references()
        try:  # the worker reads them after its imports: this waits for them at most
            self.proc.stdin.write(json.dumps({"references": len(references)}).encode() + b"\n" + references)
            self.proc.stdin.flush()
        except OSError:  # it has gone already: its first job says how
            pass

    def job(self, path: str, skip: set[str], deadline_total: float, on_event: Callable[[dict], None],
            alone: bool = False) -> tuple[list[dict], int | None, str, bool]:
        """Grade ``path`` (but the activations in ``skip``) in a process forked by the worker (or,
        ``alone``, in the worker's own, which then ends); returns its events, its exit status, the
        last line it wrote on stderr, and whether it was stopped for time. :attr:`alive` is False
        after it when the worker has ended or was stopped."""
        with contextlib.suppress(OSError):
            os.truncate(self.stderr_path, 0)
        events: list[dict] = []
        try:
            self.proc.stdin.write(json.dumps({"path": path, "skip": sorted(skip), "fork": not alone}).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:  # the worker has gone: its keeper's last event says how
            pass

        def take(ev: dict) -> None:
            on_event(ev)
            ev.pop("tape", None)  # judged: only its verdict is kept
            if len(events) < MAX_EVENTS:
                events.append(ev)

        exit_event, timed_out = self._read_until(take, deadline_total)
        if alone:
            self.alive = False  # it grades nothing after such a file: close() reads its end
        if exit_event is not None:
            returncode = exit_event.get("returncode")
        else:
            self.alive = False
            returncode = self.returncode
        if len(events) >= MAX_EVENTS:
            self.stop()
        return events, returncode if isinstance(returncode, int) else None, _tail(self.stderr_path), timed_out

    def stop(self) -> None:
        _stop(self.proc)
        self.alive = False

    def _read_until(self, take: Callable[[dict], None], deadline_total: float) -> tuple[dict | None, bool]:
        """Hand the child's events to ``take`` until the worker reports the job's end (its event is
        returned), the pipe closes (the keeper closes it last, once nothing the worker started is
        left) or time runs out (the worker is then stopped); and whether time ran out."""
        # a check may take check_timeout inside the worker (which then fails it itself); allow slack for
        # the worker's own start-up and for hangs in C code that its alarm cannot interrupt
        grace = self.check_timeout * 2 + 60
        last = time.monotonic()
        while True:
            wait = min(grace - (time.monotonic() - last), deadline_total - time.monotonic())
            if wait <= 0:
                self.stop()
                self._drain_keeper()
                return None, True
            ready, _, _ = select.select([self.pipe], [], [], min(wait, 5.0))
            if not ready:
                continue
            chunk = self.pipe.read(65536)
            if not chunk:
                return None, False
            self.buffer += chunk
            if len(self.buffer) > limits.EVENT_BYTES:  # one line that never ends: not an event
                self.buffer = b""
            *lines, self.buffer = self.buffer.split(b"\n")
            for line in lines:
                ev = _event(line)
                if ev is None:
                    continue
                if line.startswith(CHILD):
                    take(ev)
                elif line.startswith(WORKER) and ev.get("event") == "job-exit":
                    return ev, False
                elif not line.startswith((CHILD, WORKER)) and ev.get("event") == "worker-exit":
                    self.returncode = ev.get("returncode")  # the worker's own status, as its keeper saw it
            last = time.monotonic()  # time spent judging is not the worker's

    def _drain_keeper(self) -> None:
        """After a stop: the keeper reports the worker's end and what it killed; read it if it comes
        at once."""
        rest = b""
        while select.select([self.pipe], [], [], 2.0)[0]:
            chunk = self.pipe.read(65536)
            if not chunk:
                break
            rest += chunk
        for line in (self.buffer + rest).split(b"\n"):
            ev = _event(line)
            if ev is not None and not line.startswith((CHILD, WORKER)) \
                    and ev.get("event") == "worker-exit":
                self.returncode = ev.get("returncode")
        self.buffer = b""


def _event(line: bytes) -> dict | None:
    """One line of the result pipe as an event (the worker's prefix removed), or None."""
    if line.startswith((CHILD, WORKER)):
        line = line[2:]
    try:
        ev = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return ev if isinstance(ev, dict) else None


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
