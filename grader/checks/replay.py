"""Student code runs in the worker; the verdict is computed in the parent.

Every interaction of a check with student code goes through :func:`interact`. In the worker
(mode ``record``) it runs, and its result, or the failure it raised, is written to the check's
tape. The parent then runs the same check again in mode ``replay``: torch's references are computed
in the parent's own process, which never ran student code, and each interaction returns what the
tape recorded, without running anything. Outside the grader's processes (the self-tests,
``pytest --submission``) the mode is ``direct``: interactions simply run.
"""
from __future__ import annotations

import base64
import contextlib
import contextvars
import io
import zipfile
from typing import Any, Callable, Iterator

import torch

from grader.core import limits
from grader.core.errors import CheckFailure


class Foreign:
    """A value that stays in the worker (a module instance, a function): only its type name crosses."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __getattr__(self, name: str) -> "Foreign":
        if name.startswith("__"):
            raise AttributeError(name)
        return Foreign(f"{self.type_name}.{name}")

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"grader error: {self.type_name} was called outside a recorded interaction")

    def __repr__(self) -> str:
        return f"<{self.type_name}>"


def type_name(value: object) -> str:
    return value.type_name if isinstance(value, Foreign) else type(value).__name__


class TapeEnded(CheckFailure):
    """The worker's check stopped before this point (it failed, timed out or crashed there)."""


class Tape:
    def __init__(self, mode: str = "direct", entries: list | None = None) -> None:
        assert mode in ("direct", "record", "replay")
        self.mode = mode
        self.entries: list = list(entries or [])
        self.position = 0
        self.depth = 0  # interactions inside a recorded one run directly: only the outer one is taped


# per thread (and task): the parent judges several submissions at once (grader/commands/grade.py --jobs)
_tape: contextvars.ContextVar[Tape] = contextvars.ContextVar("tape", default=Tape())
_watchers: contextvars.ContextVar[tuple[tuple[list[Tape], Callable[[Tape], bool]], ...]] = \
    contextvars.ContextVar("watchers", default=())


@contextlib.contextmanager
def using(tape: Tape) -> Iterator[Tape]:
    if tape.mode == "replay":
        for seen, keep in _watchers.get():
            if keep(tape):
                seen.append(tape)
    token = _tape.set(tape)
    try:
        yield tape
    finally:
        _tape.reset(token)


@contextlib.contextmanager
def watching(keep: Callable[[Tape], bool] = lambda tape: True) -> Iterator[list[Tape]]:
    """The tapes replayed while inside (those ``keep`` accepts), in order. The parent's HTML feedback
    reads what the worker recorded after a failed check from them (grader/feedback/curves.py); verdicts never
    depend on it."""
    seen: list[Tape] = []
    token = _watchers.set(_watchers.get() + ((seen, keep),))
    try:
        yield seen
    finally:
        _watchers.reset(token)


def recorded(entries: list, label: str) -> list[Any]:
    """What the successful interactions labelled ``label`` returned, wherever they are on the tape."""
    return [_restore(item[2]) for item in entries
            if isinstance(item, (list, tuple)) and len(item) == 3 and item[0] == label and item[1] is True]


def interact(label: str, thunk: Callable[[], Any]) -> Any:
    tape = _tape.get()
    if tape.mode == "direct" or (tape.mode == "record" and tape.depth):
        return thunk()
    if tape.mode == "record":
        tape.depth += 1
        try:
            value = thunk()
        except CheckFailure as exc:
            tape.entries.append([label, False, str(exc)])
            raise
        finally:
            tape.depth -= 1
        tape.entries.append([label, True, _portable(value)])
        return value
    if tape.position >= len(tape.entries):
        raise TapeEnded(f"{label}: the worker stopped before this point")
    recorded, ok, payload = tape.entries[tape.position]
    tape.position += 1
    if recorded != label:
        raise CheckFailure(f"grader error: the worker recorded {recorded!r} where {label!r} was expected")
    if not ok:
        raise CheckFailure(str(payload))
    return _restore(payload)


def _portable(value: Any) -> Any:
    """What crosses the process boundary: tensors (detached, on the CPU), plain data, type names."""
    if isinstance(value, torch.Tensor):
        return {"__tensor__": value.detach().cpu().clone(), "device": str(value.device),
                "requires_grad": bool(value.requires_grad)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (torch.dtype, torch.device)):
        return {"__str__": str(value), "kind": type(value).__name__}
    if isinstance(value, (list, tuple)):
        items = [_portable(v) for v in value]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": [[k, _portable(v)] for k, v in value.items()]}
    return {"__foreign__": type(value).__name__}


def _restore(value: Any) -> Any:
    if isinstance(value, list):
        return [_restore(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        t = value["__tensor__"]
        device = value["device"]
        if device != "cpu" and (not device.startswith("cuda") or torch.cuda.is_available()):
            t = t.to(device)
        return t.requires_grad_() if value["requires_grad"] and t.is_floating_point() else t
    if "__tuple__" in value:
        return tuple(_restore(v) for v in value["__tuple__"])
    if "__dict__" in value:
        return {k: _restore(v) for k, v in value["__dict__"]}
    if "__str__" in value:
        return getattr(torch, value["__str__"].removeprefix("torch.")) if value["kind"] == "dtype" \
            else torch.device(value["__str__"])
    if "__foreign__" in value:
        return Foreign(str(value["__foreign__"]))
    raise ValueError(f"unreadable tape entry {sorted(value)}")


def encode(entries: list) -> str:
    buffer = io.BytesIO()
    torch.save(entries, buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode(text: str, budget: int = limits.TAPE_BYTES) -> list:
    """A tape the worker sent, read within ``budget`` bytes whatever it holds: only torch's zip
    format with stored (uncompressed) records, so that nothing inflates (a deflated tensor of zeros
    is a bomb), at most ``budget`` bytes of records, only plain data and tensors (``weights_only``
    refuses any other pickled object), and no tensor larger than the storage it views (a view with
    stride 0 is as large as its shape says once a check computes with it). Raises ValueError."""
    if len(text) > budget * 4 // 3 + 4:
        raise ValueError("a tape larger than the grader reads")
    raw = base64.b64decode(text, validate=True)
    if not raw.startswith(b"PK\x03\x04"):
        raise ValueError("not a tape (torch's zip format)")
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        records = archive.infolist()
        if any(r.compress_type != zipfile.ZIP_STORED for r in records):
            raise ValueError("a tape with compressed records")
        if sum(r.file_size for r in records) > budget:
            raise ValueError("a tape larger than the grader reads")
    entries = torch.load(io.BytesIO(raw), weights_only=True)
    if not isinstance(entries, list):
        raise ValueError("a tape is a list")
    _check_tensors(entries, budget)
    return entries


def _check_tensors(entries: list, budget: int) -> None:
    """Every tensor on the tape as large as its storage allows, all of them within ``budget``."""
    todo, total, seen = [entries], 0, 0
    while todo:
        item = todo.pop()
        seen += 1
        if seen > 1_000_000:
            raise ValueError("a tape with too many items")
        if isinstance(item, torch.Tensor):
            size = item.numel() * item.element_size()
            if size > item.untyped_storage().nbytes() or any(s < 0 for s in item.stride()):
                raise ValueError("a tensor larger than its storage")
            total += size
            if total > budget:
                raise ValueError("tensors larger than the grader reads")
        elif isinstance(item, (list, tuple)):
            todo.extend(item)
        elif isinstance(item, dict):
            todo.extend(item.values())
