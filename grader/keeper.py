"""The keeper: the one process between the grader and a worker, so that nothing a worker starts
outlives it.

``python -m grader.keeper --result-fd N -- WORKER_COMMAND...`` makes itself a child subreaper
(``PR_SET_CHILD_SUBREAPER``: processes orphaned below it, even after ``setsid()`` or a double fork,
become its children), runs the worker, and when the worker has exited (or the grader sends SIGTERM)
kills every process left below it until none remains. Then it reports the worker's exit status as
the last event on the result pipe and exits. Where namespaces are allowed it runs as PID 1 of a PID
namespace of its own, whose end the kernel turns into the end of every process in it.
Standard library only: it starts in milliseconds and imports nothing a submission could patch.
"""
from __future__ import annotations

import ctypes
import json
import os
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


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[0] != "--result-fd" or argv[2] != "--":
        print("usage: python -m grader.keeper --result-fd N -- COMMAND...", file=sys.stderr)
        return 2
    result_fd, command = int(argv[1]), argv[3:]
    set_subreaper()
    worker = os.fork()
    if worker == 0:
        try:
            drop_capabilities()
            os.execvp(command[0], command)
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
        os.write(result_fd, (json.dumps({"event": "worker-exit", "returncode": status, "killed": left}) + "\n").encode())
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
