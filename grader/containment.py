"""What holds a worker, beyond its resource limits: a keeper process that kills whatever the worker
leaves behind (grader/keeper.py, everywhere on Linux), and where the system allows it (root, as in
CI): PID and network namespaces of its own (the end of the keeper ends every process in them; no
network but a loopback that is down), and a pids cgroup that caps how many processes and threads
it can have at once. Without privileges the cap is RLIMIT_NPROC, which binds every user but root.

``ACTIVATIONS_GRADER_UNPRIVILEGED=1`` turns every privileged mechanism off (mount, PID and network
namespaces, the cgroup), so that a root machine can test what holds on machines without them.
"""
from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from . import limits

UNPRIVILEGED = "ACTIVATIONS_GRADER_UNPRIVILEGED"
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


def command(worker: list[str], result_fd: int) -> list[str]:
    """The worker's command line inside its keeper, and inside namespaces where they are allowed."""
    kept = [sys.executable, "-m", "grader.keeper", "--result-fd", str(result_fd), "--", *worker]
    return [shutil.which("unshare"), *_UNSHARE, "--", *kept] if namespaces() else kept


def describe() -> str:
    """What holds here, for the README's threat model and ``--version``-like diagnostics."""
    parts = ["keeper (subreaper)"]
    if namespaces():
        parts.append("PID and network namespaces")
    parts.append(f"at most {limits.PROCESSES} processes (pids cgroup)" if ProcessCap.available()
                 else f"at most {limits.PROCESSES} processes (RLIMIT_NPROC)" if os.geteuid() != 0
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

    def enter(self) -> None:
        """In the child, before exec: it and everything it starts count against the cap."""
        with open(self.path / "cgroup.procs", "w") as f:
            f.write("0")

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


def cap_processes_unprivileged() -> None:
    """In the child, before exec, where no cgroup is available: RLIMIT_NPROC counts every process
    of the user, so the cap is what the user has now plus the worker's share (root is exempt)."""
    if os.geteuid() == 0:
        return
    uid = os.getuid()
    mine = sum(_threads(p) for p in Path("/proc").iterdir() if p.name.isdigit() and _owner(p) == uid)
    cap = mine + limits.PROCESSES
    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_NPROC, (cap, cap))


def _threads(p: Path) -> int:
    try:
        return len(os.listdir(p / "task"))
    except OSError:
        return 0


def _owner(p: Path) -> int:
    try:
        return p.stat().st_uid
    except OSError:
        return -1
