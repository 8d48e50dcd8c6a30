"""What goes wrong, as exceptions every layer may raise or catch: a check that failed (with its
inputs, as data), a check that ran out of time, a file that cannot be graded at all."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # core stays light: no torch at import
    import torch


class CheckFailure(AssertionError):
    """A check failed; the message is one line that names the input.

    A failed numerical comparison also says, as data, which inputs failed (``inputs``: the input
    values, the one the message names first) and what differed (``kind``: value or grad); the
    checks add the parameter set, dtype and form they were testing. Feedback draws its plots from
    these, never from the message."""

    def __init__(self, message: str = "", inputs: tuple[float, ...] = (), kind: str = "") -> None:
        super().__init__(message)
        self.inputs = tuple(inputs)
        self.kind = kind
        self.case: dict | None = None
        self.dtype: torch.dtype | None = None
        self.form = "functional"


class CheckTimeout(CheckFailure):
    pass


class SubmissionError(Exception):
    """The file cannot be graded at all (missing, not a notebook, unreadable). One line."""


def one_line(exc: BaseException, limit: int | None = 200) -> str:
    """An exception as one line: its type and the first line of its message (at most ``limit``
    characters), as failures and notes show it."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:limit]}" if lines else type(exc).__name__
