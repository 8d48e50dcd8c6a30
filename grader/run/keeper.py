"""The keeper: the one process between the grader and a worker, so that nothing a worker starts
outlives it.

``python -m grader.run.keeper --result-fd N [--user UID:GID] -- WORKER_COMMAND...`` makes itself a child subreaper
(``PR_SET_CHILD_SUBREAPER``: processes orphaned below it, even after ``setsid()`` or a double fork,
become its children), runs the worker, and when the worker has exited (or the grader sends SIGTERM)
kills every process left below it until none remains. Then it reports the worker's exit status as
the last event on the result pipe and exits. Where namespaces are allowed it runs as PID 1 of a PID
namespace of its own, whose end the kernel turns into the end of every process in it. With
``--user`` (root where namespaces are not allowed, as in a Gradescope container) the worker runs as
that unprivileged user: it cannot write what root owns (the results, the grader, the course) nor
signal the grader or this keeper, and its processes are capped by ``RLIMIT_NPROC``.
Standard library only: it starts in milliseconds and imports nothing a submission could patch.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 36, 24, 38


def set_subreaper() -> bool:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def drop_capabilities() -> None:
    """Before the worker's exec: an empty capability bounding set, so that a worker started as root
    has no capability at all (it cannot unmount what hides the solutions, remount the course
    writable or leave its namespaces), and no way to regain one through a set-uid program."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # fails harmlessly without privileges
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def become(uid: int, gid: int, processes: int) -> None:
    """In the worker's child, before exec, as root: become ``uid``/``gid`` with no supplementary
    group, at most ``processes`` more processes and threads than that user has now."""
    mine = threads_of_user(uid)
    os.setgroups([])
    os.setgid(gid)
    # RLIMIT_NPROC counts the real uid's processes: set while still root, it binds once we are uid
    resource.setrlimit(resource.RLIMIT_NPROC, (mine + processes, mine + processes))
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != gid:
        raise OSError("could not change to the worker's user")


def threads_of_user(uid: int) -> int:
    """How many processes and threads ``uid`` runs now: what RLIMIT_NPROC counts."""
    return sum(threads_of(p) for p in os.listdir("/proc") if p.isdigit() and owner_of(p) == uid)


def threads_of(pid: str) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def owner_of(pid: str) -> int:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return -1


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc: ``/proc/PID/task/TID/children`` is not on
    every kernel)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # the command name may contain spaces and parentheses: fields start after the last ')'
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(name))
    return found


def kill_children() -> int:
    """SIGKILL every child, reap, repeat (their orphans become ours) until none is left."""
    me, killed = os.getpid(), 0
    while True:
        for pid in children_of(me):
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            return killed
        time.sleep(0.005)


_CLONE_NEWNS, _MS_RDONLY, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x20000, 1, 32, 4096, 16384, 1 << 18


def private_mounts(read_only: list[str], hidden: list[str]) -> None:
    """In a private mount namespace (root only), remount ``read_only`` read-only for this process and
    what it starts, and cover each of ``hidden`` with an empty read-only tmpfs. Does nothing where
    the system refuses."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNS) != 0 or libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        return
    for path in map(os.fsencode, read_only):
        if libc.mount(path, path, None, _MS_BIND | _MS_REC, None) == 0:
            libc.mount(None, path, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY, None)
    for path in map(os.fsencode, hidden):
        libc.mount(b"tmpfs", path, b"tmpfs", _MS_RDONLY, b"size=4k")


def limit_self(memory: int, file_size: int, cgroup: str | None, processes: int | None) -> None:
    """Before the worker is started: bounded memory and files, no core file, and a cap on processes
    (a pids cgroup, or RLIMIT_NPROC over what this user runs now), all inherited by the worker."""
    if cgroup:
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
            f.write("0")
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    # a write past the file-size limit then fails with EFBIG in student code instead of killing the worker
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    if processes is not None and os.geteuid() != 0:  # RLIMIT_NPROC does not bind root
        uid = os.getuid()
        cap = threads_of_user(uid) + processes
        hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        resource.setrlimit(resource.RLIMIT_NPROC, (cap, cap))


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        raise SystemExit(USAGE)
    split = argv.index("--")
    p = argparse.ArgumentParser(prog="python -m grader.run.keeper", usage=USAGE.removeprefix("usage: "))
    p.add_argument("--result-fd", type=int, required=True)
    p.add_argument("--user", help="UID:GID:PROCESSES: run the worker as this user, with this many more processes")
    p.add_argument("--memory", type=int, help="bytes of address space")
    p.add_argument("--file-size", type=int, help="bytes: the largest file the worker may write")
    p.add_argument("--cgroup", help="a pids cgroup to enter")
    p.add_argument("--processes", type=int, help="RLIMIT_NPROC's share where there is no cgroup")
    p.add_argument("--read-only", action="append", default=[], help="a folder to remount read-only")
    p.add_argument("--hide", action="append", default=[], help="a folder to cover with an empty tmpfs")
    args = p.parse_args(argv[:split])
    if args.user is not None:
        user = tuple(int(n) for n in args.user.split(":"))
        if len(user) != 3:
            p.error("--user UID:GID:PROCESSES")
        args.user = user
    return args, argv[split + 1:]


USAGE = "usage: python -m grader.run.keeper --result-fd N [--user UID:GID:PROCESSES] [--memory BYTES] [...] -- COMMAND..."


def main(argv: list[str]) -> int:
    try:
        args, command = parse(argv)
    except (SystemExit, ValueError) as exc:
        print(exc if isinstance(exc, SystemExit) and isinstance(exc.code, str) else USAGE, file=sys.stderr)
        return 2
    # the set-up happens here, in a process of its own, not between fork and exec in the grader (whose
    # threads make anything but exec unsafe there)
    if args.read_only or args.hide:
        private_mounts(args.read_only, args.hide)
    if args.memory is not None:
        limit_self(args.memory, args.file_size or resource.RLIM_INFINITY, args.cgroup, args.processes)
    set_subreaper()
    worker = os.fork()
    if worker == 0:
        try:
            drop_capabilities()
            if args.user is not None:
                become(*args.user)
            os.execvp(command[0], command)
        except BaseException as exc:  # never run the worker as root when it was to be another user
            os.write(2, f"keeper: cannot start the worker: {exc}\n".encode())
        finally:
            os._exit(127)

    def stop(signum: int, frame: object) -> None:  # the grader's time limit
        try:
            os.kill(worker, signal.SIGKILL)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, stop)
    status = None
    try:
        _, raw = os.waitpid(worker, 0)
        status = os.waitstatus_to_exitcode(raw)
    except ChildProcessError:
        pass
    left = kill_children()
    try:
        os.write(args.result_fd, (json.dumps({"event": "worker-exit", "returncode": status, "killed": left}) + "\n").encode())
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
