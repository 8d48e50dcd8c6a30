"""Load a submission (.ipynb or .py) into a namespace, cell by cell, as a kernel would."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from grader.core import hangs, limits
from grader.spec.catalog import ACTIVATIONS, Activation
from grader.core.env import RUNNING
from grader.core.errors import SubmissionError, one_line
from grader.submission.reading import MAX_BYTES, read_cells, strip_ipython  # noqa: F401  (loaded as read)



@dataclass
class Submission:
    path: str
    sha256: str
    namespace: dict
    notes: list[str] = field(default_factory=list)

    def defines(self, entry: Activation) -> bool:
        return any(name in self.namespace for name in entry.names)

    @property
    def graded(self) -> list[Activation]:
        """Every activation whose names the submission defines, in catalogue order."""
        return [a for a in ACTIVATIONS if self.defines(a)]


class CellTimeout(Exception):
    pass


class BoundedOutput(io.TextIOBase):
    """Where printed output goes while student code runs: the first ``limit`` characters are kept and
    the rest only counted, so printing 10 GB costs time, not memory."""

    def __init__(self, limit: int = limits.OUTPUT) -> None:
        self.limit, self.kept, self.dropped = limit, io.StringIO(), 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        room = self.limit - self.kept.tell()
        if room > 0:
            self.kept.write(text[:room])
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def getvalue(self) -> str:
        return self.kept.getvalue()


# torch imports some of its modules on first use (torch._dynamo, about a second, when an op's backward
# is a Python decomposition): a time limit that expires inside such an import waits for its end,
# checking every IMPORT_RECHECK seconds. Only module code from torch's folder earns that grace, and
# student code cannot write there; but it can compile its own code under a filename of torch's, so the
# grace is IMPORT_GRACE seconds for the whole process (a worker's process grades one file), not per
# limit: each lazy import happens once.
IMPORT_RECHECK = 0.25
IMPORT_GRACE = 10.0
_grace_left = IMPORT_GRACE


def _importing_torch(frame) -> bool:
    torch = sys.modules.get("torch")
    folder = os.path.dirname(getattr(torch, "__file__", None) or "") + os.sep if torch else None
    while folder and frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_code.co_filename.startswith(folder):
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def time_limit(seconds: float | None, error: Callable[[str], BaseException]):
    """SIGALRM interrupts Python code that runs longer than ``seconds`` by raising ``error(what)``,
    ``what`` naming the submission's function that was running, if any (main thread only; C code
    that holds the GIL runs on until it returns). The exception carries ``student_code`` and
    ``seconds`` for :func:`grader.core.hangs.remember`."""
    if not seconds or seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        global _grace_left
        if _grace_left > 0 and _importing_torch(frame):
            _grace_left -= IMPORT_RECHECK  # raised inside that import, it would leave it half-done for later checks
            signal.setitimer(signal.ITIMER_REAL, IMPORT_RECHECK)
            return
        running = hangs.stuck(frame, seconds)
        what = (f"`{hangs.name_of(running[-1])}` did not return within {seconds:g} s" if running
                else f"took longer than {seconds:g} s")
        exc = error(what)
        exc.student_code, exc.seconds = running, seconds
        raise exc

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def load(path: str | Path, after_cell: Callable[[], None] = lambda: None,
         cell_timeout: float | None = None) -> Submission:
    """Execute the submission's code cells in order in one namespace; errors become notes.
    ``after_cell`` runs after each cell (the worker undoes monkeypatching there); a cell running
    longer than ``cell_timeout`` seconds is interrupted."""
    path = Path(path)
    cells = read_cells(path)
    sub = Submission(str(path), hashlib.sha256(path.read_bytes()).hexdigest(),
                     {"__name__": "__submission__", "__file__": str(path)})
    hangs.start(sub.namespace)  # a new scope: what hung in an earlier submission is not this one's
    with _grading():
        for number, source in enumerate(cells, start=1):
            _run_cell(sub, path, number, source, after_cell, cell_timeout)
    return sub


@contextlib.contextmanager
def _grading():
    """Tell a ``grade()`` cell in the submission that it is being graded (so it does not recurse)."""
    old = os.environ.get(RUNNING)
    os.environ[RUNNING] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(RUNNING, None)
        else:
            os.environ[RUNNING] = old


def _run_cell(sub: Submission, path: Path, number: int, source: str, after_cell: Callable[[], None],
              cell_timeout: float | None) -> None:
    where = f"code cell {number}" if path.suffix == ".ipynb" else "file"
    source, dropped = strip_ipython(source)
    for magic in dropped:
        sub.notes.append(f"{where}: skipped '{magic[:60]}' (magics and shell commands do not run when graded)")
    filename = f"<{path.name} {where}>"
    try:
        code = compile(source, filename, "exec")
    except SyntaxError as exc:
        sub.notes.append(f"{where}: SyntaxError: {exc.msg} (line {exc.lineno}); the cell was skipped")
        return
    out = BoundedOutput()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), time_limit(
                cell_timeout, CellTimeout), hangs.calling(timed=False):
            exec(code, sub.namespace)
    except (Exception, SystemExit, KeyboardInterrupt) as exc:  # a failing cell must not stop the others
        hangs.remember(exc)
        line = _failing_line(exc, code.co_filename)
        sub.notes.append(f"{where}: {one_line(exc, None)}{line}")
    finally:
        after_cell()


def _failing_line(exc: BaseException, filename: str) -> str:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == filename:
            return f" (line {frame.lineno})"
    return ""
