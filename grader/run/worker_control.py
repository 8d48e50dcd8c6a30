"""One worker process (grader/run/worker_main.py, in its keeper, grader/run/keeper.py) as the grader
drives it: started with its limits and containment (grader/run/containment.py), handed one file
after another, each with the plan of its checks and a fresh folder, its events read with deadlines
and within the channel's bounds, stopped. :mod:`grader.run.supervisor` decides what to grade and judges
what comes back.
"""
from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from grader.checks.harness import export_references
from grader.core import limits
from grader.run import containment
from grader.run.worker_main import FILE_LINE, WORKER_LINE, WRITABLE_PLACES

def _tail(path: Path) -> str:
    """The last line the worker wrote on stderr (only the file's end is read: it may be large)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line for line in text.splitlines() if line.strip()]
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


class Channel:
    """The worker's result pipe, read line by line in linear time: a line longer than
    :data:`limits.EVENT_BYTES` is an overflow, never a buffer that grows without bound."""

    def __init__(self, pipe) -> None:
        self.pipe = pipe
        self.buffer = bytearray()
        self.scanned = 0  # no newline before this offset of the buffer

    def feed(self, chunk: bytes) -> list[bytes]:
        """The complete lines ``chunk`` ends; raises :class:`Overflow` for a line past the bound."""
        self.buffer += chunk
        lines, start = [], 0
        while True:
            end = self.buffer.find(b"\n", max(start, self.scanned))
            if end < 0:
                break
            lines.append(bytes(self.buffer[start:end]))
            start = end + 1
        if start:
            del self.buffer[:start]
        self.scanned = len(self.buffer)
        if len(self.buffer) > limits.EVENT_BYTES:
            self.buffer.clear()
            self.scanned = 0
            raise Overflow(f"a line of more than {limits.EVENT_BYTES // 2**20} MiB")
        if any(len(line) > limits.EVENT_BYTES for line in lines):
            raise Overflow(f"a line of more than {limits.EVENT_BYTES // 2**20} MiB")
        return lines

    def rest(self) -> bytes:
        out = bytes(self.buffer)
        self.buffer.clear()
        self.scanned = 0
        return out


class Overflow(Exception):
    """More on the result channel than a file may send (grader/core/limits.py): the file's worker is
    stopped and the file cannot be graded."""


@dataclass
class JobEnd:
    """How a job ended: the child's exit status, its last line on stderr, whether it ran out of time,
    and why it was stopped for sending too much ("" if it was not)."""

    returncode: int | None
    stderr_tail: str
    timed_out: bool
    overflow: str = ""


class WorkerProcess:
    """One worker (in its keeper, grader/run/keeper.py) from :meth:`open` to :meth:`close`: it grades
    files one after the other through :meth:`job`, until it dies or is stopped (:attr:`alive`)."""

    def __init__(self, scratch: Path, device: str, check_timeout: float, memory: int, hidden: list[Path],
                 submissions: Path) -> None:
        self.scratch, self.device, self.check_timeout, self.memory = scratch, device, check_timeout, memory
        self.hidden = hidden
        self.submissions = submissions  # the copies of the files this worker grades
        self.stack = contextlib.ExitStack()
        self.alive = False
        self.returncode: int | None = None  # the worker's own, from its keeper's last event
        self.jobs = 0

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
                self._read_until(lambda ev: None, time.monotonic() + 30, 0)
        except (OSError, Overflow):
            pass
        finally:
            _stop(self.proc)
            self._drain_keeper(30.0)  # the keeper's last write must not block on a pipe a flood filled
            _end(self.proc)  # the keeper has killed all the worker left: its uid is free again
            self.pipe.close()
            self.stack.close()
            self.alive = False
            with _live_lock:
                _live.discard(self)

    def _start(self) -> None:
        read_fd, write_fd = os.pipe()
        self.user = self.stack.enter_context(containment.worker_user())  # released last, when nothing of it runs
        # the worker's folder: its working directory, which it cannot write (each file gets a folder
        # of its own in it, made by :meth:`job`), removed with everything in it when the worker ends
        self.home = Path(tempfile.mkdtemp(prefix="work-", dir=self.scratch))
        self.stack.callback(shutil.rmtree, self.home, True)
        os.chmod(self.home, 0o755)
        os.chmod(self.scratch, 0o711)
        if self.user is not None:  # its submissions: readable by its group, no other worker's
            os.chown(self.submissions, 0, self.user[1])
            os.chmod(self.submissions, 0o750)
        self.stderr_path = self.home / "stderr.txt"
        # the worker writes nothing of its own: every folder a library may write to is its home, which
        # it cannot write (torch's compile caches are named at import; each file's process is then
        # given a folder it may write: grader/run/worker_main.py's settle_in)
        # and nothing of the user's pytest set-up (PYTEST_ADDOPTS, PYTEST_PLUGINS...): the worker's pytest
        # runs the grader's suite with the grader's options, as `-o addopts=` keeps the course's own out
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        env.update(MPLBACKEND="Agg", **{name: str(self.home) for name in WRITABLE_PLACES})
        if self.user is not None:
            env.update(USER=containment.WORKER_USER, LOGNAME=containment.WORKER_USER)
        worker = containment.worker_command(["--device", self.device, "--check-timeout", str(self.check_timeout),
                                             "--result-fd", str(write_fd)]
                                            + (["--clean-tmp"] if self.user is not None else []))
        cap = containment.ProcessCap.create()
        self.stack.callback(lambda: cap.close() if cap is not None else None)
        # the keeper limits itself before it starts the worker, which inherits all of it: nothing runs
        # between fork and exec here, where the grader's threads would make it unsafe
        setup = ["--memory", str(self.memory), "--file-size", str(limits.FILE_SIZE)]
        if cap is not None:
            setup += ["--cgroup", str(cap.path)]
        elif os.geteuid() != 0:
            setup += ["--processes", str(limits.PROCESSES)]
        view = containment.view(self.home, self.submissions, self.hidden)
        if containment.namespaces():  # the course, the homes and the class covered; /tmp the worker's own
            setup += containment.mount_arguments(view)
        setup += containment.landlock_arguments(view)
        # appended to, so that the parent can empty it before each file while the worker holds it open
        with open(self.stderr_path, "ab") as stderr, _live_lock:
            if _stopping.is_set():
                os.close(write_fd)
                os.close(read_fd)
                raise RuntimeError("interrupted")
            self.proc = subprocess.Popen(
                containment.command(worker, write_fd, self.user, setup), pass_fds=(write_fd,), stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=stderr, cwd=self.home, env=env, start_new_session=True)
            _live.add(self)
        os.close(write_fd)
        self.pipe = os.fdopen(read_fd, "rb", buffering=0)
        self.channel = Channel(self.pipe)
        self.alive = True
        references = export_references()
        try:  # the worker reads them after its imports: this waits for them at most
            self.proc.stdin.write(json.dumps({"references": len(references)}).encode() + b"\n" + references)
            self.proc.stdin.flush()
        except OSError:  # it has gone already: its first job says how
            pass

    def _job_folder(self) -> Path:
        """A fresh folder for one file's process, made now (after the last file's processes are
        gone): the only folder its code may write, which no other file's code could reach before."""
        self.jobs += 1
        folder = self.home / f"job-{self.jobs}"
        folder.mkdir(mode=0o700)
        if self.user is not None:
            os.chown(folder, *self.user)
        return folder

    def job(self, path: str, planned: list[list[str]], deadline_total: float, on_event: Callable[[dict], None],
            alone: bool = False) -> JobEnd:
        """Grade ``path`` (the ``planned`` checks, nothing else) in a process forked by the worker
        (or, ``alone``, in the worker's own, which then ends), handing each of its events to
        ``on_event``. :attr:`alive` is False after it when the worker has ended or was stopped. A
        file whose process sends more than the channel's bounds (grader/core/limits.py) is stopped."""
        with contextlib.suppress(OSError):
            os.truncate(self.stderr_path, 0)
        folder = self._job_folder()
        try:
            self.proc.stdin.write(json.dumps({"path": path, "plan": planned, "folder": str(folder),
                                              "fork": not alone}).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:  # the worker has gone: its keeper's last event says how
            pass
        overflow = ""
        try:
            exit_event, timed_out = self._read_until(on_event, deadline_total, limits.EVENTS_PER_CHECK * len(planned) + limits.EXTRA_EVENTS)
        except Overflow as exc:
            self.stop()
            self._drain_keeper()
            exit_event, timed_out, overflow = None, False, str(exc)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if alone:
            self.alive = False  # it grades nothing after such a file: close() reads its end
        if exit_event is not None:
            returncode = exit_event.get("returncode")
        else:
            self.alive = False
            returncode = self.returncode
        return JobEnd(returncode if isinstance(returncode, int) else None, _tail(self.stderr_path), timed_out,
                      overflow)

    def stop(self) -> None:
        _stop(self.proc)
        self.alive = False

    def _read_until(self, take: Callable[[dict], None], deadline_total: float,
                    max_events: int) -> tuple[dict | None, bool]:
        """Hand the child's events to ``take`` until the worker reports the job's end (its event is
        returned), the pipe closes (the keeper closes it last, once nothing the worker started is
        left) or time runs out (the worker is then stopped); and whether time ran out. Raises
        :class:`Overflow` past ``max_events`` events or :data:`limits.CHANNEL_BYTES` bytes."""
        # a check may take check_timeout inside the worker (which then fails it itself); allow slack for
        # the worker's own start-up and for hangs in C code that its alarm cannot interrupt
        grace = self.check_timeout * 2 + 60
        last = time.monotonic()
        events = received = 0
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
            received += len(chunk)
            if received > limits.CHANNEL_BYTES:
                raise Overflow(f"more than {limits.CHANNEL_BYTES // 2**20} MiB")
            for line in self.channel.feed(chunk):
                if line.startswith(FILE_LINE):
                    events += 1
                    if max_events and events > max_events:
                        raise Overflow(f"more than {max_events} events")
                    take(_event(line[len(FILE_LINE):]) or {"event": "unreadable"})
                    continue
                ev = _event(line[len(WORKER_LINE):] if line.startswith(WORKER_LINE) else line)
                if ev is None:
                    continue
                if line.startswith(WORKER_LINE) and ev.get("event") == "job-exit":
                    return ev, False
                if not line.startswith(WORKER_LINE) and ev.get("event") == "worker-exit":
                    self.returncode = ev.get("returncode")  # the worker's own status, as its keeper saw it
            last = time.monotonic()  # time spent judging is not the worker's

    def _drain_keeper(self, seconds: float = 2.0) -> None:
        """After a stop: read what is left on the pipe until the keeper closes it (it reports the
        worker's end last) or ``seconds`` pass, keeping only the end (what the worker wrote before
        is dropped unread)."""
        self.channel.rest()
        deadline = time.monotonic() + seconds
        tail = b""
        while time.monotonic() < deadline and select.select([self.pipe], [], [], max(0.0, deadline - time.monotonic()))[0]:
            chunk = self.pipe.read(65536)
            if not chunk:
                break
            tail = (tail + chunk)[-4096:]  # the keeper's event is the last line
        for line in tail.split(b"\n"):
            ev = _event(line)
            if ev is not None and not line.startswith((FILE_LINE, WORKER_LINE)) and ev.get("event") == "worker-exit":
                self.returncode = ev.get("returncode")


def _event(line: bytes) -> dict | None:
    """One line of the result pipe (its prefix removed) as an event, or None; a line nested too deep
    for the parser is None too."""
    try:
        ev = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return ev if isinstance(ev, dict) else None


def _stop(proc: subprocess.Popen) -> None:
    """End the worker and everything below it. In namespaces ``proc`` is ``unshare``, which blocks
    SIGTERM while it waits: killed, it kills the keeper (``--kill-child``), PID 1 of the namespace,
    whose end the kernel turns into the end of every process in it. Otherwise ``proc`` is the keeper:
    asked, it kills the worker and every process left below it, and reports."""
    try:
        proc.send_signal(signal.SIGKILL if proc.args[0] == shutil.which("unshare") else signal.SIGTERM)
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
