"""Student functions that did not return: once a function has used up a check's time limit, every
later call of it fails at once instead of waiting out the limit again.

The alarm that ends a check (:func:`grader.loader.time_limit`) records which functions of the
submission were on the stack when it fired, if the call into them had lasted most of the limit (its
``student_code``: a check that is merely slow over many calls costs that check alone). They are
remembered here;
while any are remembered, each call into student code runs under a profile hook that refuses to
enter them, with a message naming the function. Submissions without a hang never pay for the hook.
"""
from __future__ import annotations

import contextlib
import math
import sys
import time
from types import CodeType, FrameType
from typing import Iterator

from .compare import CheckFailure

# filenames of the code compiled from submissions (grader.loader): how the alarm tells student frames
STUDENT_FILES: set[str] = set()
_hung: dict[CodeType, str] = {}
_started: list[float] = []  # when each call into student code now running began, outermost first


class EarlierTimeout(CheckFailure):
    pass


def stuck(frame: FrameType | None, seconds: float) -> list[CodeType]:
    """When a time limit expires: the submission's functions on the stack (innermost first) if the
    call into student code that is running has itself lasted most of the limit, i.e. did not return;
    none if the check was merely slow over many calls (that costs the check, not the function)."""
    if not _started or not time.monotonic() - _started[0] >= seconds / 2:
        return []
    return student_code_on_stack(frame)


def student_code_on_stack(frame: FrameType | None) -> list[CodeType]:
    """The submission's functions (not its top-level cell code) on the stack, innermost first."""
    found = []
    while frame is not None:
        code = frame.f_code
        if code.co_filename in STUDENT_FILES and code.co_name != "<module>":
            found.append(code)
        frame = frame.f_back
    return found


def name_of(code: CodeType) -> str:
    return getattr(code, "co_qualname", code.co_name)


def remember(exc: BaseException) -> None:
    """After a timeout: the functions that were running will not be called again."""
    seconds = getattr(exc, "seconds", None)
    for code in getattr(exc, "student_code", ()):
        _hung.setdefault(code, f"timed out in an earlier check (`{name_of(code)}` did not return within {seconds:g} s)")


def forget() -> None:
    _hung.clear()


def _refuse(frame: FrameType, event: str, arg: object) -> None:
    if event == "call" and frame.f_code in _hung:
        raise EarlierTimeout(_hung[frame.f_code])


@contextlib.contextmanager
def calling(timed: bool = True) -> Iterator[None]:
    """Run a call into student code: timed (for :func:`stuck`), and calls of a remembered function
    raise :class:`EarlierTimeout` at once. A notebook cell is not timed: what it calls in a loop
    cannot be told from what never returns."""
    _started.append(time.monotonic() if timed else math.inf)
    previous = sys.getprofile()
    if _hung:
        sys.setprofile(_refuse)
    try:
        yield
    finally:
        _started.pop()
        if _hung:
            sys.setprofile(previous)  # also needed after a refusal: raising in a profile hook unsets it
