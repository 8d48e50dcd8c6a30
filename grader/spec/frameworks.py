"""The frameworks a submission is written for: torch (chapters 1 to 9), MLX (``10_mlx``) and the 8-bit
chapter's quantized torch (``11_quantized``).

One :class:`Framework` object stands for each, so that what differs between them (the chapter, the
names its implementations take, whether it runs on CUDA, how tensors cross into it) is said once,
here, and not as ``"mlx"`` tests scattered over the grader. Its ``name`` is what reports record
("torch", "mlx", "quantized"): the JSON and CSV outputs keep those strings. Which checks grade a
framework is the checks' registry's (grader/checks/registry.py): the checks sit above this layer.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Callable, Collection

import torch

from grader.core.errors import CheckFailure
from grader.spec import mlx_catalog, quantized_catalog
from grader.spec.catalog import ACTIVATIONS, Activation


def _torch_graded(names: Collection[str]) -> list[Activation]:
    return [a for a in ACTIVATIONS if any(name in names for name in a.names)]


@dataclass(frozen=True)
class Framework:
    name: str  # as reports record it
    chapter: str  # the exercise notebook's stem; "" for torch, whose exercises span chapters 1 to 9
    key_prefix: str | None  # before the activation's name in an exercise's key ("MLX ReLU"); None: its own keys
    cpu_only: bool  # graded on the CPU whatever devices are asked for (MLX's CPU backend; quantized kernels)
    _graded: Callable[[Collection[str]], list[Activation]]

    def graded(self, names: Collection[str]) -> list[Activation]:
        """The activations whose names (as this framework's chapter spells them) are among ``names``
        (a namespace, or the names a file defines), in the catalogue's order."""
        return self._graded(names)

    def available(self) -> bool:
        """Whether this machine can run its checks."""
        return True

    def __str__(self) -> str:
        return self.name


# ------------------------------------------------------------------------ MLX's conversions

def to_mx(t: torch.Tensor) -> object:
    """A torch tensor as an ``mlx.core.array`` of the same dtype (through numpy; halves through float32)."""
    import mlx.core as mx
    import numpy as np

    data = t.detach().cpu()
    array = mx.array(np.asarray(data.float().numpy() if data.dtype in (torch.float16, torch.bfloat16) else data.numpy()))
    return array.astype(getattr(mx, str(data.dtype).removeprefix("torch.")))


def to_torch(a: object, what: str) -> torch.Tensor:
    """An ``mlx.core.array`` the student returned, as a torch tensor of its dtype; anything else fails."""
    import mlx.core as mx
    import numpy as np

    if not isinstance(a, mx.array):
        raise CheckFailure(f"{what}: returned {type(a).__name__}, expected an mlx.core.array")
    name = str(a.dtype).rsplit(".", 1)[-1]
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise CheckFailure(f"{what}: returned an array of dtype {name}")
    half = name in ("float16", "bfloat16")
    return torch.from_numpy(np.array(a.astype(mx.float32) if half else a)).to(dtype)


@dataclass(frozen=True)
class MLXFramework(Framework):
    """MLX: the checks compare its arrays with torch's tensors, converted both ways."""

    def available(self) -> bool:
        return mlx_catalog.available()  # looked up at each call: tests take MLX away

    def to_native(self, t: torch.Tensor) -> object:
        return to_mx(t)

    def to_torch(self, a: object, what: str) -> torch.Tensor:
        return to_torch(a, what)


TORCH = Framework("torch", "", "", False, _torch_graded)
MLX = MLXFramework("mlx", "10_mlx", "MLX ", True, mlx_catalog.graded)
QUANTIZED = Framework("quantized", "11_quantized", None, True, quantized_catalog.graded)
FRAMEWORKS: tuple[Framework, ...] = (TORCH, MLX, QUANTIZED)
BY_NAME: dict[str, Framework] = {f.name: f for f in FRAMEWORKS}


def framework(name: str | Framework) -> Framework:
    """The framework a report's string names (a Framework stands for itself)."""
    return name if isinstance(name, Framework) else BY_NAME[name]


def in_namespace(namespace: dict) -> Framework:
    """The framework a live namespace (a kernel's) is written for, as the grader reads a file
    (grader/submission/framework.py): MLX where mlx was imported, the 8-bit chapter where its
    functions are defined, else torch."""
    for value in list(namespace.values()):
        if isinstance(value, ModuleType) and value.__name__.split(".")[0] == "mlx":
            return MLX
    if quantized_catalog.NAMES & set(namespace):
        return QUANTIZED
    return TORCH
