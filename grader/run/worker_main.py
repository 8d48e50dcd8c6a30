"""The worker process: grades a student's submissions one after the other, each in a process of its
own forked from this one, and streams their events.

Started by :mod:`grader.run.supervisor` (in its keeper, with resource limits, in a scratch directory);
never run by hand. It imports torch, pytest and the grader once, never runs student code itself,
and reads jobs on stdin, one JSON line each: ``{"path": ..., "plan": [[activation, check, device],
...], "folder": ...}`` (after torch's references the grader has computed, which spare the children
computing them again): the file, the checks the grader planned for it (nothing else is run), and
the fresh folder the grader made for it, the only one its code may write. A job with
``"fork": false`` is a file graded in the worker's own process, as the last job: the grader's way
to grade, alone, a file whose code killed the worker that forked it. For each it forks a
child that loads that one submission and runs the checks on it, so every file starts from the same
untouched interpreter: what one file does to torch, to builtins or to the grader cannot reach the
next file (the child's memory is its own). When the child has ended, the worker kills whatever it
left running (it is a child subreaper) and only then reports the end of the job: nothing a file
started can write into the next file's events.

Events are JSON lines on ``--result-fd``, each prefixed by who wrote it: ``F `` a line of the
child's (``loaded``, ``start`` and ``result`` per check, ``done``, or ``error`` when the file
cannot be graded), ``W `` the worker's own ``job-exit`` with the child's exit status. A child writes
only to a pipe of its own, which the worker relays line by line with that prefix, so a child cannot
write a ``W `` line; the worker makes itself non-dumpable, so a child cannot reach its descriptors
through ``/proc`` nor attach to it.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import select
import shutil
import signal
import sys
import tempfile
import warnings

PR_SET_DUMPABLE = 4
# where programs write what they keep between runs: the file's own folder, nothing shared
WRITABLE_PLACES = ("HOME", "TMPDIR", "TEMP", "TMP", "MPLCONFIGDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME",
                   "XDG_DATA_HOME", "XDG_RUNTIME_DIR", "IPYTHONDIR", "JUPYTER_CONFIG_DIR", "TORCHINDUCTOR_CACHE_DIR",
                   "TRITON_CACHE_DIR", "TORCH_HOME", "CUDA_CACHE_PATH")
FILE_LINE, WORKER_LINE = b"F ", b"W "  # who wrote a line on the result pipe: a file's process, the worker


def grade_one(path: str, planned: list, device: str, check_timeout: float, result_fd: int,
              prefix: str = "") -> int:
    """Load one submission, run the parent's ``planned`` checks on it (``[activation, check,
    device]`` each), emit its events (each line after ``prefix``)."""
    channel = os.fdopen(result_fd, "w", buffering=1, encoding="utf-8")

    def emit(**event) -> None:
        channel.write(prefix + json.dumps(event) + "\n")
        channel.flush()

    import pytest

    from grader.checks import harness
    from grader.run.guard import Guard
    from grader.submission.loader import BoundedOutput, load
    from grader.core.errors import SubmissionError
    from grader.run.plugin import SUITE, GraderPlugin

    # the hook is set first so that the snapshot holds it; it calls the guard created next
    harness.after_student_code(lambda: guard.restore())
    guard = Guard()  # snapshot before any student code runs
    try:
        submission = load(path, after_cell=guard.restore, cell_timeout=check_timeout)
    except SubmissionError as exc:
        emit(event="error", message=str(exc))
        return 0
    from grader.checks.plan import PlannedCheck

    emit(event="loaded", notes=submission.notes)
    plugin = GraderPlugin(submission, emit=emit, planned=[PlannedCheck(*map(str, p)) for p in planned])
    pytest_args = [SUITE, "--submission", path, "--device", device,
                   "--check-timeout", str(check_timeout), "-p", "no:cacheprovider", "-p", "no:randomly",
                   "-q", "--no-header", "-W", "ignore", "-s",
                   # the course's own pytest options (nbval) are not the grader's and may not be installed
                   "-o", "addopts=", "--rootdir", os.path.dirname(SUITE),
                   # the suite's plain asserts need no rewriting (seconds of start-up otherwise)
                   "--assert=plain",
                   # these two report exceptions nobody catches in threads and finalizers as warnings, which
                   # the worker ignores, and force five garbage collections at the end of every file:
                   # without them a generated class took a fifth less worker time (bench/class_throughput.py)
                   "-p", "no:unraisableexception", "-p", "no:threadexception"]
    # what student code prints during the checks is nobody's business, and must not fill the memory
    sink = BoundedOutput()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        code = pytest.main(pytest_args, plugins=[plugin, "grader.run.plugin"])
    guard.restore()
    emit(event="done", exit_code=int(code), restored=guard.restored)
    channel.close()
    return 0


def _preload() -> None:
    """What every child needs, imported once here instead of once per file: torch, pytest, the
    grader, and what torch imports on the first ``torch.autograd.grad`` (its symbolic shapes, a
    third of a second). Not ``torch._dynamo`` (about a second more): the checks' recorder no longer
    pulls it in, and where a student's backward does, a time limit waits for the import's end
    (grader/submission/loader.py). Nothing here runs torch's thread pool: the children are forked
    from this process."""
    import pytest  # noqa: F401
    import torch.fx.experimental.symbolic_shapes  # noqa: F401

    import grader.checks.torch_checks  # noqa: F401
    import grader.run.guard  # noqa: F401
    import grader.run.plugin  # noqa: F401
    import grader.submission.loader  # noqa: F401
    import grader.run.suite  # noqa: F401


def _relay(source: int, result_fd: int, child: int) -> int:
    """Copy the child's lines to the result pipe, each prefixed :data:`FILE_LINE`, until the child has
    exited and whatever it left running is killed (then every end of its pipe is closed). Returns
    the child's exit status."""
    from grader.run.keeper import kill_children

    try:
        exited = os.pidfd_open(child)  # readable when the child exits
    except (AttributeError, OSError):
        exited = None
    at_start, status = True, None
    with os.fdopen(source, "rb", buffering=0) as pipe:
        while True:
            watch = [pipe] + ([exited] if status is None and exited is not None else [])
            ready, _, _ = select.select(watch, [], [], 0.05 if status is None and exited is None else None)
            if status is None:
                pid, raw = os.waitpid(child, os.WNOHANG)
                if pid:
                    status = os.waitstatus_to_exitcode(raw)
                    kill_children()  # what it started: the other ends of its pipe close with them
            if pipe not in ready:
                continue
            chunk = pipe.read(65536)
            if not chunk:
                break
            out = (FILE_LINE if at_start else b"") + chunk.replace(b"\n", b"\n" + FILE_LINE)
            at_start = out.endswith(b"\n" + FILE_LINE)
            _write_all(result_fd, out[: -len(FILE_LINE)] if at_start else out)
    if exited is not None:
        os.close(exited)
    if status is None:  # it closed its pipe and ran on
        status = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
        kill_children()
    if not at_start:
        _write_all(result_fd, b"\n")  # a line the child left unfinished ends here, not in the worker's
    return status


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def settle_in(folder: str) -> None:
    """Make ``folder`` (fresh, made by the grader for this file alone) everything this process may
    write: its working directory, home, temporary and cache folders, and, where the kernel has
    Landlock, the only place it can write at all (grader/run/landlock.py). Called in the process
    that runs the file's code, before any of it runs."""
    from grader.run import landlock

    os.chdir(folder)
    for name in WRITABLE_PLACES:
        os.environ[name] = folder
    tempfile.tempdir = None  # read TMPDIR again
    landlock.restrict(read=["/"], write=[folder, *landlock.system_write()])  # within what the worker may read


def clean_temporary_folders() -> None:
    """Remove what this user left in the machine's shared temporary folders, so that nothing one
    file's code wrote there is found by the next file's (asked only where the worker has a user of
    its own: the grader runs as root)."""
    me = os.getuid()
    for folder in ("/tmp", "/var/tmp", "/dev/shm"):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != me:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass


def _job(path: str, planned: list, folder: str, args: argparse.Namespace) -> int:
    """Grade one file in a forked child, in ``folder``; returns the child's exit status."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        code = 70
        try:
            os.close(read)
            os.dup2(write, args.result_fd)  # the child's events go to its own pipe, under the same number
            os.close(write)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)  # the next jobs are not the child's to read
            os.close(null)
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as in any Python process: student code sees EPIPE
            settle_in(folder)
            code = grade_one(path, planned, args.device, args.check_timeout, args.result_fd)
        except BaseException:
            pass
        finally:
            sys.stdout.flush()
            os._exit(code)  # skip interpreter teardown (torch's takes seconds); the parent has every event
    os.close(write)
    status = _relay(read, args.result_fd, child)
    if args.clean_tmp:
        clean_temporary_folders()
    return status


def _references(stdin, size: object) -> None:
    """The grader's first message, ``{"references": N}`` and N bytes: torch's references it has
    computed (grader/checks/harness.py), so that the children do not compute them again."""
    try:
        data = stdin.read(int(size)) if int(size) > 0 else b""
        if data:
            from grader.checks import harness

            harness.import_references(data)
    except Exception:  # the worker computes them itself
        pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m grader.run.worker_main")
    p.add_argument("--device", default="all")
    p.add_argument("--check-timeout", type=float, required=True)
    p.add_argument("--result-fd", type=int, required=True)
    p.add_argument("--clean-tmp", action="store_true", help="after each file, remove what this user left in /tmp")
    args = p.parse_args(argv)
    # only the grader's plugin: whatever else is installed (hypothesis, xdist, nbval) is not loaded,
    # which saves seconds per file and keeps third-party hooks out of the grading
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    _preload()
    from grader.checks.harness import use_grading_threads

    use_grading_threads()  # before the first fork: every file's process inherits it
    from grader.run.keeper import set_subreaper

    set_subreaper()  # what a child leaves running becomes this process's to kill
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # the grader has gone: so does this worker
    number = 0
    for line in iter(sys.stdin.buffer.readline, b""):
        try:
            job = json.loads(line)
        except ValueError:
            continue
        if isinstance(job, dict) and "references" in job and number == 0:
            _references(sys.stdin.buffer, job["references"])
            continue
        if not isinstance(job, dict) or "path" not in job or "folder" not in job:
            continue
        path, planned, folder = str(job["path"]), list(job.get("plan", [])), str(job["folder"])
        if job.get("fork", True):
            status = _job(path, planned, folder, args)
        else:  # the file's code runs in this process, which grades nothing after it
            settle_in(folder)
            status = grade_one(path, planned, args.device, args.check_timeout, os.dup(args.result_fd), FILE_LINE.decode())
        number += 1
        _write_all(args.result_fd, WORKER_LINE + json.dumps({"event": "job-exit", "returncode": status}).encode() + b"\n")
        if not job.get("fork", True):
            break
    return 0


def run_main() -> None:
    """The worker process's entry (grader/run/containment.py's worker_command)."""
    status = main()
    sys.stdout.flush()
    os._exit(status)  # skip interpreter teardown: the grader has every event


if __name__ == "__main__":
    run_main()
