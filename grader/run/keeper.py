"""The keeper: the one process between the grader and a worker, so that nothing a worker starts
outlives it.

``python -I -S grader/run/keeper.py --result-fd N [--user UID:GID] -- WORKER_COMMAND...`` makes itself a child subreaper
(``PR_SET_CHILD_SUBREAPER``: processes orphaned below it, even after ``setsid()`` or a double fork,
become its children), runs the worker, and when the worker has exited (or the grader sends SIGTERM)
kills every process left below it until none remains. Then it reports the worker's exit status as
the last event on the result pipe and exits. Where namespaces are allowed it runs as PID 1 of a PID
namespace of its own, whose end the kernel turns into the end of every process in it. With
``--user`` (whenever the grader is root) the worker runs as that unprivileged user: it cannot write
what root owns (the interpreter, the results, the grader, the course) nor signal the grader or this
keeper, and its processes are capped by ``RLIMIT_NPROC``.
Before it starts the worker it may build the worker's view of the file system (a private mount
namespace: the course, the class and the homes covered, the temporary folders private) and confine
it with Landlock (grader/run/landlock.py). Standard library only, started in isolated mode without
site-packages (``-I -S``): it starts in milliseconds and runs no ``.pth`` file nor anything else a
submission could have planted.
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

if __package__:
    from grader.run import landlock
else:  # run as a script (python -I -S .../keeper.py): nothing but the standard library and its sibling
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from grader.run import landlock

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


def private_mounts(read_only: list[str], hidden: list[str], keep: list[str] = (), keep_writable: list[str] = (),
                   private: list[str] = ()) -> bool:
    """In a private mount namespace (root only): cover each of ``hidden`` with an empty read-only
    tmpfs and each of ``private`` (the temporary folders) with a fresh writable one; show again, at
    their own paths, ``keep`` (read-only) and ``keep_writable``, wherever they were covered (the
    Python installation under a hidden home, the worker's folders under the temporary folder);
    remount ``read_only`` read-only. Returns False where the system refuses a private namespace
    (nothing is changed then)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNS) != 0 or libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        return False
    shown = [(p, False) for p in keep] + [(p, True) for p in keep_writable]
    # held open before anything is covered: a bind mount from /proc/self/fd/N reaches the original
    handles = {p: os.open(p, os.O_PATH | os.O_CLOEXEC) for p, _ in shown if os.path.exists(p)}
    for path in map(os.fsencode, private):
        libc.mount(b"tmpfs", path, b"tmpfs", 0, b"mode=1777,size=1g")
    for path in map(os.fsencode, hidden):
        libc.mount(b"tmpfs", path, b"tmpfs", 0, b"mode=0755,size=64k")
    covered = [*hidden, *private]
    for path, writable in sorted(shown, key=lambda pw: len(pw[0])):
        if path not in handles or not any(path == c or path.startswith(c.rstrip("/") + "/") for c in covered):
            continue
        _make_mount_point(path, os.path.isdir(f"/proc/self/fd/{handles[path]}"))
        target = os.fsencode(path)
        if libc.mount(os.fsencode(f"/proc/self/fd/{handles[path]}"), target, None, _MS_BIND | _MS_REC, None) == 0 \
                and not writable:
            libc.mount(None, target, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY, None)
    for handle in handles.values():
        os.close(handle)
    for path in map(os.fsencode, hidden):  # the covers themselves hold nothing anyone may write
        libc.mount(b"tmpfs", path, b"tmpfs", _MS_REMOUNT | _MS_RDONLY, b"mode=0755")
    for path in map(os.fsencode, read_only):
        if libc.mount(path, path, None, _MS_BIND | _MS_REC, None) == 0:
            libc.mount(None, path, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY, None)
    return True


def _make_mount_point(path: str, folder: bool) -> None:
    """Where a kept path lies under a cover, make the (empty) folder or file to mount it on."""
    if os.path.lexists(path):
        return
    parent = os.path.dirname(path)
    os.makedirs(parent, mode=0o755, exist_ok=True)
    if folder:
        os.mkdir(path, 0o755)
    else:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


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
    p.add_argument("--keep", action="append", default=[], help="a path shown read-only, even under a cover")
    p.add_argument("--keep-writable", action="append", default=[], help="a path shown writable, even under a cover")
    p.add_argument("--private", action="append", default=[], help="a folder replaced by a fresh writable tmpfs")
    p.add_argument("--read", action="append", default=[], help="Landlock: a path the worker may read")
    p.add_argument("--write", action="append", default=[], help="Landlock: a path the worker may write")
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
    os.umask(0o022)
    if args.read_only or args.hide or args.private:
        private_mounts(args.read_only, args.hide, args.keep, args.keep_writable, args.private)
    if args.memory is not None:
        limit_self(args.memory, args.file_size or resource.RLIM_INFINITY, args.cgroup, args.processes)
    set_subreaper()
    worker = os.fork()
    if worker == 0:
        try:
            drop_capabilities()
            if args.user is not None:
                become(*args.user)
            if args.read or args.write:
                landlock.restrict(args.read, args.write)
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
