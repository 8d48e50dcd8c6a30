"""What holds a worker, beyond its resource limits (grader/run/keeper.py starts it inside all of it):

- **A user of its own.** Wherever the grader runs as root, the worker runs as an unprivileged user:
  ``activations-grader`` where it exists (the Gradescope bundle's setup.sh creates it), else a uid
  and gid of its own with no account (:func:`worker_user`). It owns nothing: it cannot write the
  interpreter, site-packages, the grader, the course, the results, nor another worker's folders,
  and cannot signal the grader. Not root, the worker is the grader's own user.
- **A file system view** (root with mount namespaces, as in CI): the course, the homes (``/root``,
  ``/home``), the class's folder and the reports' folders covered by empty read-only folders; the
  temporary folders private; the Python installation, the grader's own copy (outside the course:
  :func:`grader_library`) and the submissions' copies shown read-only, the worker's folder writable.
- **Landlock** (Linux 5.13 and newer, any user): the worker can read only the system, the Python
  installation, the grader's copy and the submissions' copies, and write only its folder; each
  file's process only that file's folder (grader/run/landlock.py). With ABI 4 and 6 also no TCP and
  no signal out of it.
- **PID and network namespaces** (root): the end of the keeper ends every process in them; no
  network but a loopback that is down. A pids cgroup caps the processes and threads; without it,
  RLIMIT_NPROC.

Where neither namespaces nor Landlock are available and the grader runs as root, only file
permissions hide what the worker must not read: the grader refuses, with one line, to grade where
the worker's user could read the solutions, the course's history or the class's folder
(:func:`exposed`). Not root and without Landlock, nothing holds the worker but its limits: the
reports say so (:func:`unconfined`).

``ACTIVATIONS_GRADER_UNPRIVILEGED=1`` turns every privileged mechanism off (mount, PID and network
namespaces, the cgroup) and ``ACTIVATIONS_GRADER_NO_LANDLOCK=1`` Landlock, so that a root machine can
test what holds on machines without them.
"""
from __future__ import annotations

import atexit
import contextlib
import functools
import os
import pwd
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from grader.core import limits, paths
from grader.run import keeper, landlock

UNPRIVILEGED = "ACTIVATIONS_GRADER_UNPRIVILEGED"
WORKER_USER = "activations-grader"  # created by the Gradescope bundle's setup.sh
FALLBACK_ID = 65534  # nobody / nogroup
_UNSHARE = ["--pid", "--fork", "--kill-child", "--mount-proc", "--net", "--ipc"]


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
    """Root: a worker must never run as root, even without capabilities in namespaces (root owns the
    interpreter, site-packages, the grader and the course, and could write them)."""
    return os.geteuid() == 0


@contextlib.contextmanager
def worker_user() -> Iterator[tuple[int, int] | None]:
    """The uid and gid one worker runs as, for as long as it runs; None where it runs as the
    grader's own user (not root). The dedicated user where it exists (the Gradescope bundle's) and no
    other worker of this grader holds it; else a uid of its own from systemd's range for dynamic
    users: no two workers at once share a user, so that none can write another's folders or signal
    it."""
    if not needs_another_user():
        yield None
        return
    try:
        entry = pwd.getpwnam(WORKER_USER)
    except KeyError:
        entry = None
    with _claimed_lock:
        dedicated = entry is not None and entry.pw_uid not in _claimed
        if dedicated:
            _claimed.add(entry.pw_uid)
    user = (entry.pw_uid, entry.pw_gid) if dedicated else (_claim(),) * 2
    try:
        yield user
    finally:
        with _claimed_lock:
            _claimed.discard(user[0])


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


def python_paths() -> list[str]:
    """What a worker must read to run Python, torch and the other packages the grader imports: the
    installation (and a virtual environment's), site-packages and any other folder on this
    process's ``sys.path`` that is not the course itself, each as it is found and as its real path."""
    import site

    found = [sys.base_prefix, sys.prefix, sys.base_exec_prefix, sys.exec_prefix,
             os.path.dirname(sys.executable), os.path.dirname(os.path.realpath(sys.executable))]
    with contextlib.suppress(AttributeError):
        found += site.getsitepackages()
    found += [p for p in sys.path if p and os.path.isdir(p)]
    out: list[str] = []
    for path in found:
        for p in (os.path.abspath(path), os.path.realpath(path)):
            if _course_or_above(p) or p == "/" or p in out:
                continue
            out.append(p)
    return out


def _course_or_above(path: str) -> bool:
    root = str(paths.ROOT)
    return root == path or root.startswith(path.rstrip("/") + "/")


_library: list[Path] = []
_library_lock = threading.Lock()


def grader_library() -> Path:
    """A copy of the grader's package outside the course, made once per process, that every user
    can read and none but this one write: the worker imports the grader from it (``python -I``, the
    copy first on ``sys.path``), so that neither the course nor a folder the worker can write is
    on its ``sys.path``. Removed when this process exits."""
    with _library_lock:
        if not _library:
            folder = Path(tempfile.mkdtemp(prefix="grader-lib-"))
            os.chmod(folder, 0o755)
            # with its bytecode, where it was compiled (`make` does; copied with the sources' times, so
            # it stays valid): a worker runs with -B and would otherwise compile what it imports each time
            shutil.copytree(paths.PACKAGE, folder / "grader")
            for dirpath, dirnames, filenames in os.walk(folder):
                for d in dirnames:
                    os.chmod(os.path.join(dirpath, d), 0o755)
                for f in filenames:
                    os.chmod(os.path.join(dirpath, f), 0o644)
            atexit.register(shutil.rmtree, folder, True)
            _library.append(folder)
        return _library[0]


def worker_command(args: list[str]) -> list[str]:
    """The worker's command line: isolated mode (no environment variables, no user site-packages,
    no script or working folder on ``sys.path``), no bytecode written, and the grader imported from
    :func:`grader_library`."""
    # isolated mode leaves out PYTHONPATH: what the grader found there (torch, where only PYTHONPATH
    # names it) is appended, never the course itself (the grader is imported from its copy)
    extra = [os.path.abspath(p) for p in sys.path if p and os.path.isdir(p) and not _course_or_above(os.path.abspath(p))]
    boot = (f"import sys; sys.path.insert(0, {str(grader_library())!r}); "
            f"sys.path += [p for p in {extra!r} if p not in sys.path]; "
            "from grader.run.worker_main import run_main; run_main()")
    return [sys.executable, "-I", "-B", "-c", boot, *args]


@dataclass
class View:
    """What one worker sees of the file system, and where it may write."""

    keep: list[str]  # shown read-only, even where covered: Python, the grader's copy, the submissions' copies
    keep_writable: list[str]  # the worker's folder
    hidden: list[str]  # covered by an empty folder: the course, the homes, the class, the reports
    private: list[str]  # the temporary folders, fresh and the worker's own

    @property
    def read(self) -> list[str]:
        """Landlock: what the worker may read."""
        return [*landlock.SYSTEM_READ, *self.keep]

    @property
    def write(self) -> list[str]:
        return [*self.keep_writable, *landlock.system_write()]


def view(home: Path, submissions: Path, hidden: list[Path]) -> View:
    """The view of a worker whose folder is ``home``, grading the copies in ``submissions``, and
    must not see ``hidden`` (besides the course and the homes)."""
    keep = [*python_paths(), str(grader_library()), str(submissions)]
    covers = [str(paths.ROOT), "/root", "/home", *map(str, hidden), *_closed_above(keep)]
    # what the worker needs lies under a cover (Python under /root, a virtual environment in the
    # course): the keeper shows it again at its own path
    covers = [c for c in dict.fromkeys(covers) if os.path.isdir(c) and c != "/" and c not in keep]
    private = [p for p in dict.fromkeys([tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm"]) if os.path.isdir(p)]
    return View(keep, [str(home)], covers, private)


def _closed_above(kept: list[str]) -> list[str]:
    """Folders above what the worker needs that other users cannot cross (Python under a 0700
    home): covered too, by a folder they can cross, which shows only what is kept."""
    closed = []
    for path in kept:
        for folder in Path(path).parents:
            if str(folder) == "/":
                continue
            try:
                if not folder.stat().st_mode & stat.S_IXOTH:
                    closed.append(str(folder))
            except OSError:
                continue
    return closed


def mount_arguments(v: View) -> list[str]:
    """The keeper's options that build ``v`` in a private mount namespace (root only)."""
    out: list[str] = []
    for flag, items in (("--hide", v.hidden), ("--private", v.private), ("--keep", v.keep),
                        ("--keep-writable", v.keep_writable)):
        out += [a for item in items for a in (flag, item)]
    return out


def landlock_arguments(v: View) -> list[str]:
    return [a for path in v.read for a in ("--read", path)] + [a for path in v.write for a in ("--write", path)]


def unreachable() -> str | None:
    """Why a worker's user could not run a worker here (a path it cannot read), or None. Asked
    once: a forked child takes on the user ``nobody`` would be and looks at the interpreter, the
    standard library, torch and the grader's copy (what any user that owns none of them can read)."""
    import torch  # the parent has it; where the worker would import it from

    paths_ = [os.path.realpath(sys.executable), os.path.dirname(os.__file__), os.path.dirname(torch.__file__),
              str(grader_library() / "grader" / "run" / "worker_main.py")]
    blocked = _probe((FALLBACK_ID, FALLBACK_ID), tuple(paths_), want=True)
    if not blocked:
        return None
    what = "could not take on that user" if blocked == "?" else f"cannot read {blocked}"
    return (f"the grader runs as root, so submissions run as another user, who {what}: "
            "install Python, torch and the grader where every user can read them")


def exposed(secret: list[Path]) -> str | None:
    """Where file permissions alone hide what the worker must not read (root, without mount
    namespaces or Landlock): why grading must not start, as one line, if the worker's user could
    read one of ``secret`` (the solutions, the course's history, the class's folder); else None."""
    if not needs_another_user() or namespaces() or landlock.abi():
        return None
    existing = tuple(str(p) for p in secret if Path(p).exists())
    readable = _probe((FALLBACK_ID, FALLBACK_ID), existing, want=False) if existing else ""
    if not readable:
        return None
    if readable == "?":
        return "the grader runs as root, so submissions run as another user, whom it could not take on"
    return (f"submissions would run where nothing hides {readable} from them (no mount namespaces, no "
            f"Landlock, and other users may read it): make it unreadable to other users "
            f"(chmod -R o-rwx {readable}) or grade where namespaces or Landlock are available")


def unconfined() -> str | None:
    """A note for every report where nothing confines the worker's file system: not root (no other
    user) and no Landlock."""
    if needs_another_user() or landlock.abi():
        return None
    return ("not isolated: this machine has no Landlock and the grader does not run as root, so the "
            "submission's code could read and write whatever your user can")


@functools.cache
def _probe(user: tuple[int, int], paths_: tuple[str, ...], want: bool) -> str:
    """As ``user``, in a forked child: the first of ``paths_`` it cannot read (``want``) or can
    read (not ``want``); "" for none, "?" when the child could not take on the user."""
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:  # only system calls until _exit: safe in a parent that has threads
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(user[1])
            os.setuid(user[0])
            for path in paths_:
                if os.access(path, os.R_OK) != want:
                    os.write(write_fd, path.encode())
                    break
        except BaseException:
            os.write(write_fd, b"?")
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        found = pipe.read().decode(errors="replace")
    os.waitpid(child, 0)
    return found


def command(worker: list[str], result_fd: int, user: tuple[int, int] | None = None,
            setup: list[str] = ()) -> list[str]:
    """The worker's command line inside its keeper (as ``user`` when given; ``setup``: the keeper's
    limits, mounts and Landlock rules), and inside namespaces where they are allowed. The keeper
    runs as a script of the grader's copy, isolated and without site-packages."""
    switch = ["--user", f"{user[0]}:{user[1]}:{limits.PROCESSES}"] if user is not None else []
    keeper_script = str(grader_library() / "grader" / "run" / "keeper.py")
    kept = [sys.executable, "-I", "-S", "-B", keeper_script, "--result-fd", str(result_fd), *switch, *setup,
            "--", *worker]
    return [shutil.which("unshare"), *_UNSHARE, "--", *kept] if namespaces() else kept


def describe() -> str:
    """What holds here, for the README's threat model and ``--version``-like diagnostics."""
    parts = ["keeper (subreaper)"]
    if namespaces():
        parts.append("PID, network, IPC and mount namespaces")
    if needs_another_user():
        parts.append("workers as another user")
    version = landlock.abi()
    parts.append(f"Landlock ABI {version}" if version else "no Landlock")
    parts.append(f"at most {limits.PROCESSES} processes (pids cgroup)" if ProcessCap.available()
                 else f"at most {limits.PROCESSES} processes (RLIMIT_NPROC)")
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
