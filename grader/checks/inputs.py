"""What the checks feed an activation: seeded random inputs, non-contiguous views, upstream
gradients, and the edge inputs in the layout each activation needs."""
from __future__ import annotations

import math
import zlib

import torch

from grader.spec.catalog import Activation
from grader.checks.compare import Locate, fmt, locate_elementwise

# ---------------------------------------------------------------------------------- inputs

def seed_of(*parts: object) -> int:
    return zlib.crc32(repr(parts).encode())


def random_input(entry: Activation, dtype: torch.dtype, device: str, seed: int,
                 shape: tuple[int, ...] | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(shape if shape is not None else entry.shape, generator=g, dtype=torch.float64) * 2 - 1)
    return (x * entry.scale).to(dtype).to(device)


def noncontiguous(x: torch.Tensor) -> torch.Tensor:
    """The same values in a transposed (non-contiguous) layout."""
    if x.dim() < 2:
        return x
    y = x.transpose(-1, -2).contiguous().transpose(-1, -2)
    assert not y.is_contiguous() or min(x.shape[-2:]) <= 1
    return y


def upstream_for(entry: Activation, y: torch.Tensor, seed: int) -> torch.Tensor:
    """Ones for elementwise functions (the gradient is then the derivative itself); random otherwise,
    since the gradient of sum(softmax) is 0 whatever the implementation."""
    if entry.elementwise:
        return torch.ones_like(y)
    # multiples of 1/8 in ±[1/8, 2]: exact in every dtype, so half-precision runs and their float64
    # truth see the same upstream gradient
    g = torch.Generator().manual_seed(seed)
    magnitude = torch.randint(1, 17, y.shape, generator=g).double() / 8
    sign = torch.randint(0, 2, y.shape, generator=g).double() * 2 - 1
    return (magnitude * sign).to(y.dtype).to(y.device)


def _finite_floats(dtype: torch.dtype) -> list[float]:
    tiny = torch.finfo(dtype).smallest_normal
    sub = [tiny / 2 ** 10, float(torch.finfo(dtype).tiny) * 2.0 ** -(52 if dtype == torch.float64 else 23)]
    return [0.0, -0.0, 100.0, -100.0, 1e4, -1e4, 88.8, -88.8, 20.0, -20.0, 1e-3, -1e-3] + sub + [-s for s in sub]


def edge_points(entry: Activation, case: dict, dtype: torch.dtype) -> list[float]:
    points = _finite_floats(dtype) + [math.inf, -math.inf, math.nan]
    p = entry.resolve(case)
    return points + [float(k) for k in entry.kinks(p)] + [float(j) for j in entry.joints(p)]


def edge_input(entry: Activation, case: dict, dtype: torch.dtype) -> tuple[torch.Tensor, Locate]:
    """Edge inputs in the layout the activation needs, and how messages name an element."""
    pts = edge_points(entry, case, dtype)
    if entry.elementwise:
        x = entry.elementwise_tensor(case, pts, dtype)
        return x, locate_elementwise(x)
    if entry.halves:
        # each edge value meets a finite, nonzero partner (1.5): as b, the gate's limits are graded; as a,
        # the gradient a * gate'(b) never multiplies an infinite a by a derivative that rounds to 0
        rows = [[1.5, v] for v in pts] + [[v, 1.5] for v in pts]
        x = torch.tensor(rows, dtype=dtype)
        return x, lambda index: f"at a={fmt(rows[index[0] if index else 0][0])}, b={fmt(rows[index[0] if index else 0][1])}"
    if entry.edge_layout == "pairs":
        a = torch.tensor(pts, dtype=dtype)
        b = a.flip(0)
        x = torch.stack([a, b], 0)  # halves along dim 0 -> pairs (a_i, b_i) along dim 1
        x = x.transpose(0, 1).reshape(len(pts), 2)  # row i is [a_i, b_i], glu over dim -1

        def where(index: tuple) -> str:
            i = index[0] if index else 0
            return f"at a={fmt(x[i, 0].item())}, b={fmt(x[i, 1].item())}"

        return x, where
    # rows, reduced over the last dimension (or, as channels, over dim -3)
    rows = [[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [1e4, 0.0, -1e4], [88.8, -88.8, 0.0],
            [100.0, 100.0, -100.0], [-100.0, -100.0, -100.0], [-math.inf, 0.0, 1.0],
            [-math.inf, -math.inf, 5.0], [math.nan, 0.0, 1.0], [1e-40, 0.0, -1e-40], [20.0, -20.0, 0.0]]
    x = torch.tensor(rows, dtype=dtype)

    def where_row(index: tuple) -> str:
        i = index[0] if index else 0
        return f"in row [{', '.join(fmt(v) for v in rows[i])}] at position {index[1] if len(index) > 1 else 0}"

    if entry.edge_layout == "channels":
        x4 = x.reshape(len(rows), 3, 1, 1)
        return x4, lambda index: where_row(index[:2])
    return x, where_row
