"""Student functions that did not return: once a function has used up a check's time limit, every
later call of it fails at once instead of waiting out the limit again.

The alarm that ends a check or a cell (:func:`grader.loader.time_limit`) records which functions of
the submission were on the stack when it fired (its ``student_code``). They are remembered here;
while any are remembered, each call into student code runs under a profile hook that refuses to
enter them, with a message naming the function. Submissions without a hang never pay for the hook.
"""
from __future__ import annotations

import contextlib
import sys
from types import CodeType, FrameType
from typing import Iterator

from .compare import CheckFailure

# filenames of the code compiled from submissions (grader.loader): how the alarm tells student frames
STUDENT_FILES: set[str] = set()
_hung: dict[CodeType, str] = {}


class EarlierTimeout(CheckFailure):
    pass


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
def refusing() -> Iterator[None]:
    """Run student code; calls of a remembered function raise :class:`EarlierTimeout` at once."""
    if not _hung:
        yield
        return
    previous = sys.getprofile()
    sys.setprofile(_refuse)
    try:
        yield
    finally:
        sys.setprofile(previous)  # also needed after a refusal: raising in a profile hook unsets it
