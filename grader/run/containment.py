"""What holds a worker, beyond its resource limits: a keeper process that kills whatever the worker
leaves behind (grader/run/keeper.py, everywhere on Linux), and where the system allows it (root, as in
CI): PID and network namespaces of its own (the end of the keeper ends every process in them; no
network but a loopback that is down), and a pids cgroup that caps how many processes and threads
it can have at once. Without privileges the cap is RLIMIT_NPROC, which binds every user but root.

Root where namespaces are not allowed (a Gradescope container, or the switch below) runs each worker
as an unprivileged user instead: ``activations-grader`` where it exists (the Gradescope bundle's
setup.sh creates it), else a uid and gid with no account. That user cannot write what root owns (the
results, the grader, the course), cannot signal the grader's processes, and ``RLIMIT_NPROC`` caps
its processes. Without the dedicated user each worker gets a uid of its own (see
:func:`worker_user`).

``ACTIVATIONS_GRADER_UNPRIVILEGED=1`` turns every privileged mechanism off (mount, PID and network
namespaces, the cgroup), so that a root machine can test what holds on machines without them.
"""
from __future__ import annotations

import contextlib
import functools
import os
import pwd
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

from grader.run import keeper
from grader.core import limits

UNPRIVILEGED = "ACTIVATIONS_GRADER_UNPRIVILEGED"
WORKER_USER = "activations-grader"  # created by the Gradescope bundle's setup.sh
FALLBACK_ID = 65534  # nobody / nogroup
_UNSHARE = ["--pid", "--fork", "--kill-child", "--mount-proc", "--net"]


def privileged() -> bool:
    return os.geteuid() == 0 and not os.environ.get(UNPRIVILEGED)


@functools.cache
def namespaces() -> bool:
    """Whether ``unshare`` can give a worker PID and network namespaces here (tried once)."""
    unshare = shutil.which("unshare")
    if not privileged() or unshare is None:
        return False
    try:
        return subprocess.run([unshare, *_UNSHARE, "true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def needs_another_user() -> bool:
    """Root without namespaces: a worker must not run as root (it could write the results, the
    grader and the course, and signal the grader)."""
    return os.geteuid() == 0 and not namespaces()


@contextlib.contextmanager
def worker_user() -> Iterator[tuple[int, int] | None]:
    """The uid and gid one worker runs as, for as long as it runs; None where it runs as the
    grader's own user (not root; or root inside namespaces, without capabilities). The dedicated
    user where it exists (the Gradescope bundle's, which grades one file at a time); else a uid of
    its own from systemd's range for dynamic users, so that workers graded side by side (``--jobs``)
    cannot signal one another either."""
    if not needs_another_user():
        yield None
        return
    try:
        entry = pwd.getpwnam(WORKER_USER)
    except KeyError:
        entry = None
    if entry is not None:
        yield entry.pw_uid, entry.pw_gid
        return
    uid = _claim()
    try:
        yield uid, uid
    finally:
        with _claimed_lock:
            _claimed.discard(uid)


DYNAMIC_IDS = range(61184, 65520)  # systemd's DynamicUser= range: no account, no file owned
_claimed: set[int] = set()
_claimed_lock = threading.Lock()


def _claim() -> int:
    """A uid in :data:`DYNAMIC_IDS` that no account has, no process runs as, and no worker of this
    grader holds."""
    busy = {keeper.owner_of(p) for p in os.listdir("/proc") if p.isdigit()}
    start = random.randrange(len(DYNAMIC_IDS))
    with _claimed_lock:
        for i in range(len(DYNAMIC_IDS)):
            uid = DYNAMIC_IDS[(start + i) % len(DYNAMIC_IDS)]
            if uid in busy or uid in _claimed or _has_account(uid):
                continue
            _claimed.add(uid)
            return uid
    raise RuntimeError("no free uid for a worker")


def _has_account(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


def unreachable() -> str | None:
    """Why a worker's user could not run a worker here (a path it cannot read), or None. Asked
    once: a forked child takes on the user ``nobody`` would be and looks at the interpreter, the
    standard library, torch and the grader (what any user that owns none of them can read)."""
    import torch  # the parent has it; where the worker would import it from

    paths = [os.path.realpath(sys.executable), os.path.dirname(os.__file__), os.path.dirname(torch.__file__),
             os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")]
    return _unreachable((FALLBACK_ID, FALLBACK_ID), tuple(paths))


@functools.cache
def _unreachable(user: tuple[int, int], paths: tuple[str, ...]) -> str | None:
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:  # only system calls until _exit: safe in a parent that has threads
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(user[1])
            os.setuid(user[0])
            for path in paths:
                if not os.access(path, os.R_OK):
                    os.write(write_fd, path.encode())
                    break
        except BaseException:
            os.write(write_fd, b"?")
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        blocked = pipe.read().decode(errors="replace")
    os.waitpid(child, 0)
    if not blocked:
        return None
    what = "could not take on that user" if blocked == "?" else f"cannot read {blocked}"
    return (f"the grader runs as root without namespaces, so submissions run as another user, who {what}: "
            "install Python, torch and the grader where every user can read them, or allow namespaces")


def command(worker: list[str], result_fd: int, user: tuple[int, int] | None = None,
            setup: list[str] = ()) -> list[str]:
    """The worker's command line inside its keeper (as ``user`` when given; ``setup``: the keeper's
    limits and mounts), and inside namespaces where they are allowed."""
    switch = ["--user", f"{user[0]}:{user[1]}:{limits.PROCESSES}"] if user is not None else []
    kept = [sys.executable, "-m", "grader.run.keeper", "--result-fd", str(result_fd), *switch, *setup, "--", *worker]
    return [shutil.which("unshare"), *_UNSHARE, "--", *kept] if namespaces() else kept


def describe() -> str:
    """What holds here, for the README's threat model and ``--version``-like diagnostics."""
    parts = ["keeper (subreaper)"]
    if namespaces():
        parts.append("PID and network namespaces")
    user = needs_another_user()
    if user:
        parts.append("workers as another user")
    parts.append(f"at most {limits.PROCESSES} processes (pids cgroup)" if ProcessCap.available()
                 else f"at most {limits.PROCESSES} processes (RLIMIT_NPROC)" if os.geteuid() != 0 or user
                 else "no process cap (root without a pids cgroup)")
    return ", ".join(parts)


class ProcessCap:
    """A pids cgroup for one worker (cgroup v1's pids hierarchy, or v2 where pids is enabled)."""

    ROOTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))

    def __init__(self, path: Path) -> None:
        self.path = path

    @staticmethod
    def _root() -> Path | None:
        for root in ProcessCap.ROOTS:
            if (root / "cgroup.procs").exists() and os.access(root, os.W_OK):
                v2 = (root / "cgroup.subtree_control").exists()
                if not v2 or "pids" in (root / "cgroup.subtree_control").read_text().split():
                    return root
        return None

    @staticmethod
    def available() -> bool:
        return privileged() and ProcessCap._root() is not None

    @classmethod
    def create(cls) -> "ProcessCap | None":
        if not privileged():
            return None
        root = cls._root()
        if root is None:
            return None
        path = root / f"activations-grader-{uuid.uuid4().hex[:12]}"
        try:
            path.mkdir()
            (path / "pids.max").write_text(str(limits.PROCESSES))
        except OSError:
            shutil.rmtree(path, ignore_errors=True)
            return None
        return cls(path)

    def close(self) -> None:
        """Kill what is left in the cgroup and remove it."""
        for _ in range(100):
            try:
                pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
            except OSError:
                break
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)
        try:
            self.path.rmdir()
        except OSError:
            pass
