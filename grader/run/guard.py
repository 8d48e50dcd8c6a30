"""Undo what student code does to the modules the grader relies on.

A submission can replace ``torch.allclose``, ``torch.nn.functional.relu``, ``torch.Tensor.__eq__``,
a grader function or a pytest helper, at load time or from inside the function being graded. The
worker snapshots these modules before the submission runs and restores every replaced or deleted
attribute after each piece of student code, so references and comparisons always use the real
implementations. Code that patches torch below Python (ctypes, C extensions) is not covered: see
the threat model in the README.
"""
from __future__ import annotations

import builtins
import math
import sys
import types
from itertools import repeat
from operator import is_

import torch

_MISSING = object()


def _targets() -> list[object]:
    import pytest

    mods = [torch, torch.nn, torch.nn.functional, torch.nn.modules.activation, torch.autograd,
            torch.autograd.function, torch.testing, torch.overrides, torch.utils._python_dispatch,
            torch.special, math, builtins, types, pytest]
    mods += [m for name, m in sorted(sys.modules.items())
             if m is not None and (name == "grader" or name.startswith("grader."))]
    return mods + [torch.Tensor, torch.nn.Module, torch.autograd.Function]


def _guarded(value: object) -> bool:
    """Functions, classes and modules: what a submission could swap to change a verdict."""
    return callable(value) or isinstance(value, types.ModuleType)


class Guard:
    def __init__(self) -> None:
        # per object: the names of what can be restored and their values, in two lists, so that
        # restore() compares them all in C (it runs after every call into student code)
        self._snapshots = []
        for obj in _targets():
            keys = [k for k, v in vars(obj).items() if _guarded(v)]
            self._snapshots.append((obj, keys, [vars(obj)[k] for k in keys]))
        self._modules = {k: v for k, v in sys.modules.items()
                         if k.split(".")[0] in ("torch", "grader", "pytest", "_pytest", "math", "builtins")}
        self.restored: list[str] = []

    def restore(self, vars=vars, list=list, map=map, all=all, zip=zip, getattr=getattr, setattr=setattr,
                repeat=repeat, is_=is_) -> None:
        """Put back every attribute that student code replaced or deleted; remember which. (The
        builtins it uses are bound when it is defined: student code may have replaced them.)"""
        for obj, keys, values in self._snapshots:
            current = vars(obj)
            now = list(map(current.get, keys, repeat(_MISSING)))
            if all(map(is_, now, values)):
                continue  # nothing of this object was touched: the common case
            for key, value, new in zip(keys, values, now):
                if new is value or getattr(new, "__wrapped__", None) is value:
                    continue  # torch's lazy wrappers stay as they are
                try:
                    setattr(obj, key, value)
                except (AttributeError, TypeError):
                    continue
                name = f"{getattr(obj, '__name__', type(obj).__name__)}.{key}"
                if name not in self.restored:
                    self.restored.append(name)
        for key, module in self._modules.items():
            if sys.modules.get(key) is not module:
                sys.modules[key] = module
                if f"sys.modules[{key!r}]" not in self.restored:
                    self.restored.append(f"sys.modules[{key!r}]")
