"""Student functions that did not return: once a function has used up a check's time limit, every
later call of it fails at once instead of waiting out the limit again.

The alarm that ends a check (:func:`grader.submission.loader.time_limit`) records which functions of the
submission were on the stack when it fired, if the call into them had lasted most of the limit (its
``student_code``: a check that is merely slow over many calls costs that check alone). They are
remembered here; while any are remembered, each call into student code runs under a profile hook
that refuses to enter them, with a message naming the function. Submissions without a hang never pay
for the hook.

The memo is **scoped** and keyed by **identity**. A scope is one submission (grader/submission/loader.py starts
one per file it loads) or one ``check()`` in a notebook (grader/run/live.py): nothing remembered in one
scope is refused in another, so a student who fixes the helper that made ``relu`` hang is not told
again that ``relu`` timed out, and one process may grade many submissions. Student code is what runs
in the scope's namespace (a frame whose globals *are* that dict), and a hung function is its code
object itself, not its value: CPython's code objects compare equal across files when their text is
the same (the filename is not compared), so equality would let one student's hang fail another's
identical-looking function.
"""
from __future__ import annotations

import contextlib
import math
import sys
import time
from types import CodeType, FrameType
from typing import Iterator

from grader.core.errors import CheckFailure


class EarlierTimeout(CheckFailure):
    pass


class Memo:
    """The functions of one submission (whose code runs with ``namespace`` as its globals) that did
    not return, by identity: ``id(code) -> (code, message)``; the code object is kept so that its id
    cannot be reused by another while it is remembered."""

    def __init__(self, namespace: dict) -> None:
        self.namespace = namespace
        self.hung: dict[int, tuple[CodeType, str]] = {}

    def refuses(self, code: CodeType) -> str | None:
        found = self.hung.get(id(code))
        return found[1] if found is not None and found[0] is code else None


_memo: Memo | None = None  # the scope now open; None: nothing is student code, nothing is remembered
_started: list[float] = []  # when each call into student code now running began, outermost first


def start(namespace: dict) -> Memo:
    """Open a new scope for a submission whose code runs in ``namespace``, forgetting the last one
    (a worker or a test grades one submission after another in one process)."""
    global _memo
    _memo = Memo(namespace)
    return _memo


@contextlib.contextmanager
def scope(namespace: dict) -> Iterator[Memo]:
    """A scope for the duration of the block (``check()`` in a kernel); the one open before it is
    restored after it."""
    global _memo
    previous = _memo
    memo = start(namespace)
    try:
        yield memo
    finally:
        _memo = previous


def current() -> Memo | None:
    return _memo


def stuck(frame: FrameType | None, seconds: float) -> list[CodeType]:
    """When a time limit expires: the submission's functions on the stack (innermost first) if the
    call into student code that is running has itself lasted most of the limit, i.e. did not return;
    none if the check was merely slow over many calls (that costs the check, not the function)."""
    if not _started or not time.monotonic() - _started[0] >= seconds / 2:
        return []
    return student_code_on_stack(frame)


def student_code_on_stack(frame: FrameType | None) -> list[CodeType]:
    """The functions of the open scope's submission (not its top-level cell code) on the stack,
    innermost first."""
    memo = _memo
    found: list[CodeType] = []
    if memo is None:
        return found
    while frame is not None:
        if frame.f_globals is memo.namespace and frame.f_code.co_name != "<module>":
            found.append(frame.f_code)
        frame = frame.f_back
    return found


def name_of(code: CodeType) -> str:
    return getattr(code, "co_qualname", code.co_name)


def remember(exc: BaseException) -> None:
    """After a timeout: the functions that were running will not be called again in this scope."""
    memo = _memo
    if memo is None:
        return
    seconds = getattr(exc, "seconds", None)
    for code in getattr(exc, "student_code", ()):
        memo.hung.setdefault(id(code), (code, f"timed out in an earlier check (`{name_of(code)}` did not "
                                              f"return within {seconds:g} s)"))


def forget() -> None:
    """Close the open scope (nothing is remembered until the next one starts)."""
    global _memo
    _memo = None


def _refuse(frame: FrameType, event: str, arg: object) -> None:
    if event == "call" and _memo is not None:
        message = _memo.refuses(frame.f_code)
        if message is not None:
            raise EarlierTimeout(message)


@contextlib.contextmanager
def calling(timed: bool = True) -> Iterator[None]:
    """Run a call into student code: timed (for :func:`stuck`), and calls of a remembered function
    raise :class:`EarlierTimeout` at once. A notebook cell is not timed: what it calls in a loop
    cannot be told from what never returns."""
    _started.append(time.monotonic() if timed else math.inf)
    previous = sys.getprofile()
    hooked = _memo is not None and bool(_memo.hung)
    if hooked:
        sys.setprofile(_refuse)
    try:
        yield
    finally:
        _started.pop()
        if hooked or (_memo is not None and _memo.hung):
            sys.setprofile(previous)  # also needed after a refusal: raising in a profile hook unsets it
