"""Signatures as the MLX and the 8-bit chapters grade them: the student's parameters, names then
defaults, against the expected list, with both signatures in the failure. (torch's chapters word
their signature failures differently, against torch's own; see grader/checks/torch_adapter.py.)"""
from __future__ import annotations

import inspect
from typing import Callable

from grader.checks.harness import observe
from grader.core.errors import CheckFailure
from grader.spec.catalog import REQUIRED


def signature_of(label: str, target: Callable[[], object], drop_self: bool = False) -> list[tuple[str, object]]:
    def read() -> list:
        try:
            params = list(inspect.signature(target()).parameters.values())
        except (TypeError, ValueError):
            raise CheckFailure(f"{label}: has no inspectable signature") from None
        params = params[1:] if drop_self and params and params[0].name == "self" else params
        return [[p.name, "<required>" if p.default is inspect.Parameter.empty else p.default] for p in params]
    return [(n, REQUIRED if isinstance(d, str) and d == "<required>" else d) for n, d in observe(label, read)]


def format_signature(name: str, params: list) -> str:
    return f"{name}({', '.join(n if d is REQUIRED else f'{n}={d!r}' for n, d in params)})"


def same_default(a: object, b: object) -> bool:
    if a is REQUIRED or b is REQUIRED:
        return a is b
    return type(a) is type(b) and a == b or (type(a) in (int, float) and type(b) in (int, float) and a == b)


def assert_signature(name: str, target: Callable[[], object], expected: list[tuple[str, object]],
                     drop_self: bool = False, label: str = "") -> None:
    """The student's parameters (names, then defaults; REQUIRED for none) are ``expected``: the
    failure shows both signatures. Used by the MLX and the 8-bit chapters alike."""
    got = signature_of(f"signature of {label or name}", target, drop_self)
    if [n for n, _ in got] != [n for n, _ in expected] or any(not same_default(a, b) for (_, a), (_, b) in zip(got, expected)):
        raise CheckFailure(f"{format_signature(name, got)}: expected {format_signature(name, expected)}")
