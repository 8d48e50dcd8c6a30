"""Record what an implementation asks torch to do, below Python: ATen ops and torch API calls."""
from __future__ import annotations

from collections import Counter

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode


class _DispatchRecorder(TorchDispatchMode):
    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # torch wraps a mode's __torch_dispatch__ in torch._dynamo.disable unless told not to, which
        # imports torch._dynamo (about a second of every worker's start) on the first op recorded;
        # nothing here is compiled, and a student's torch.compile under the recorder still records
        return False

    def __init__(self, ops: Counter, floats: list) -> None:
        super().__init__()
        self.ops = ops
        self.floats = floats

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        self.ops[name] += 1
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor) and out.is_floating_point():
            self.floats.append((name, out.numel()))
        return out


class _FunctionRecorder(TorchFunctionMode):
    def __init__(self, calls: list) -> None:
        super().__init__()
        self.calls = calls

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls.append(func)
        return func(*args, **(kwargs or {}))


class Recorder:
    """``with Recorder() as rec: ...`` then ``rec.ops`` (ATen op name -> count), ``rec.calls`` and
    ``rec.floats`` ((ATen op, number of elements) of each floating-point tensor an op returned: the
    8-bit chapter's table check sees where the arithmetic happens).

    A dispatch mode sees ATen ops (after composite ops decompose: ``F.softmax`` -> ``_softmax``);
    a function mode sees the Python-level API call (``F.tanhshrink``, which has no op of its own).
    """

    def __init__(self) -> None:
        self.ops: Counter = Counter()
        self.calls: list = []
        self.floats: list[tuple[str, int]] = []
        self._modes = (_FunctionRecorder(self.calls), _DispatchRecorder(self.ops, self.floats))

    def __enter__(self) -> "Recorder":
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc)


def resolve(dotted: str) -> object:
    """``torch.nn.functional.softsign`` -> the function object."""
    module, _, attr = dotted.rpartition(".")
    obj = torch
    for part in module.split(".")[1:]:
        obj = getattr(obj, part)
    return getattr(obj, attr)
