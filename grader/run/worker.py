"""The worker process: grades a student's submissions one after the other, each in a process of its
own forked from this one, and streams their events.

Started by :mod:`grader.run.sandbox` (in its keeper, with resource limits, in a scratch directory);
never run by hand. It imports torch, pytest and the grader once, never runs student code itself,
and reads jobs on stdin, one JSON line each: ``{"path": ..., "skip": [...]}`` (after torch's
references the grader has computed, which spare the children computing them again). A job with
``"fork": false`` is a file graded in the worker's own process, as the last job: the grader's way
to grade, alone, a file whose code killed the worker that forked it. For each it forks a
child that loads that one submission and runs the checks on it, so every file starts from the same
untouched interpreter: what one file does to torch, to builtins or to the grader cannot reach the
next file (the child's memory is its own). When the child has ended, the worker kills whatever it
left running (it is a child subreaper) and only then reports the end of the job: nothing a file
started can write into the next file's events.

Events are JSON lines on ``--result-fd``, each prefixed by who wrote it: ``W `` a line of the
child's (``loaded``, ``start`` and ``result`` per check, ``done``, or ``error`` when the file
cannot be graded), ``Z `` the worker's own ``job-exit`` with the child's exit status. A child writes
only to a pipe of its own, which the worker relays line by line with that prefix, so a child cannot
write a ``Z `` line; the worker makes itself non-dumpable, so a child cannot reach its descriptors
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
CHILD, WORKER = b"W ", b"Z "  # who wrote a line on the result pipe


def grade_one(path: str, skip: frozenset[str], device: str, check_timeout: float, result_fd: int,
              prefix: str = "") -> int:
    """Load one submission, run the checks on it, emit its events (each line after ``prefix``)."""
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
    from grader.checks.registry import graded  # MLX submissions define mlx.nn's names (grader/spec/mlx_catalog.py)
    emit(event="loaded", sha256=submission.sha256, notes=submission.notes,
         graded=[a.name for a in graded(path, submission.namespace)])
    plugin = GraderPlugin(submission, emit=emit, skip=skip)
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
    grader, and what torch imports lazily on the checks' first use (``torch._dynamo``, about a
    second: the forbidden-op check and ``torch.testing.assert_close`` pull it in). Nothing here
    runs torch's thread pool: the children are forked from this process."""
    import pytest  # noqa: F401
    import torch._dynamo  # noqa: F401

    import grader.checks.torch_checks  # noqa: F401
    import grader.run.guard  # noqa: F401
    import grader.run.plugin  # noqa: F401
    import grader.submission.loader  # noqa: F401
    import grader.run.suite  # noqa: F401


def _relay(source: int, result_fd: int, child: int) -> int:
    """Copy the child's lines to the result pipe, each prefixed :data:`CHILD`, until the child has
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
            out = (CHILD if at_start else b"") + chunk.replace(b"\n", b"\n" + CHILD)
            at_start = out.endswith(b"\n" + CHILD)
            _write_all(result_fd, out[: -len(CHILD)] if at_start else out)
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


def _job(path: str, skip: frozenset[str], number: int, args: argparse.Namespace) -> int:
    """Grade one file in a forked child; returns the child's exit status."""
    # the file's own working directory, removed after it (a worker killed before could not remove its own)
    folder = tempfile.mkdtemp(prefix=f"job-{number}-", dir=os.getcwd())
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
            os.chdir(folder)
            code = grade_one(path, skip, args.device, args.check_timeout, args.result_fd)
        except BaseException:
            pass
        finally:
            sys.stdout.flush()
            os._exit(code)  # skip interpreter teardown (torch's takes seconds); the parent has every event
    os.close(write)
    try:
        status = _relay(read, args.result_fd, child)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
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
    p = argparse.ArgumentParser(prog="python -m grader.run.worker")
    p.add_argument("--device", default="all")
    p.add_argument("--check-timeout", type=float, required=True)
    p.add_argument("--result-fd", type=int, required=True)
    args = p.parse_args(argv)
    # only the grader's plugin: whatever else is installed (hypothesis, xdist, nbval) is not loaded,
    # which saves seconds per file and keeps third-party hooks out of the grading
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    _preload()
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
        if not isinstance(job, dict) or "path" not in job:
            continue
        path, skip, fork = str(job["path"]), frozenset(map(str, job.get("skip", []))), job.get("fork", True)
        if fork:
            status = _job(path, skip, number, args)
        else:  # the file's code runs in this process, which grades nothing after it
            os.chdir(tempfile.mkdtemp(prefix="job-", dir=os.getcwd()))
            status = grade_one(path, skip, args.device, args.check_timeout, os.dup(args.result_fd), CHILD.decode())
        number += 1
        _write_all(args.result_fd, WORKER + json.dumps({"event": "job-exit", "returncode": status}).encode() + b"\n")
        if not fork:
            break
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    os._exit(status)
