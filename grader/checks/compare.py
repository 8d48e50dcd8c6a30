"""Numerical comparison of a student's tensor with torch's, with messages that name the input."""
from __future__ import annotations

import math
from typing import Callable

import torch

from grader.spec.catalog import GRAD_TOL, HALF_GRAD_SLACK, HALF_VALUE_SLACK, VALUE_TOL
from grader.core.errors import CheckFailure

HALF = (torch.float16, torch.bfloat16)


def fmt(v: float) -> str:
    if isinstance(v, complex):
        return repr(v)
    if v != v:
        return "nan"
    if v in (math.inf, -math.inf):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "-0.0" if math.copysign(1, v) < 0 else "0.0"
    if abs(v) >= 1e5 or abs(v) < 1e-4:
        return f"{v:.6g}"
    return repr(round(v, 7)) if abs(v - round(v, 7)) < 1e-12 else f"{v:.7g}"


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


Locate = Callable[[tuple], str]


def locate_elementwise(x: torch.Tensor) -> Locate:
    """Messages name the input value: ``at x=100.0``; ``where.value(index)`` is that value."""
    flat = x.detach().reshape(-1) if x.dim() else x.detach().reshape(1)

    def value(index: tuple) -> float:
        i = 0
        for d, k in enumerate(index if x.dim() else ()):
            i = i * x.shape[d] + k
        return float(flat[i].item())

    def where(index: tuple) -> str:
        return f"at x={fmt(value(index))}"

    where.value = value
    return where


MAX_INPUTS = 16  # failing inputs a failure carries for plots


def failing_inputs(where: Locate, bad: torch.Tensor) -> tuple[float, ...]:
    """The input values where ``bad`` holds, first failure first, when ``where`` can name them."""
    value = getattr(where, "value", None)
    if value is None or not bool(bad.any()):
        return ()
    indices = [tuple(int(i) for i in idx) for idx in bad.nonzero()[:4 * MAX_INPUTS]] if bad.dim() else [()]
    out: list[float] = []
    for index in indices:
        v = value(index)
        if not any(v == u or (v != v and u != u) for u in out):
            out.append(v)
    return tuple(out[:MAX_INPUTS])


def locate_index(x: torch.Tensor) -> Locate:
    def where(index: tuple) -> str:
        return f"at index {list(index)} of a {tuple(x.shape)} input" if index else "on a 0-d input"

    return where


def check_tensor(actual: object, expected: torch.Tensor, what: str) -> torch.Tensor:
    """Type, dtype, shape and device must be torch's."""
    if not isinstance(actual, torch.Tensor):
        raise CheckFailure(f"{what}: returned {type(actual).__name__}, torch returns a Tensor")
    if actual.dtype != expected.dtype:
        raise CheckFailure(f"{what}: dtype is {dtype_name(actual.dtype)}, torch gives {dtype_name(expected.dtype)}")
    if actual.shape != expected.shape:
        raise CheckFailure(f"{what}: shape is {tuple(actual.shape)}, torch gives {tuple(expected.shape)}")
    if actual.device != expected.device:
        raise CheckFailure(f"{what}: device is {actual.device}, torch gives {expected.device}")
    return actual


def _first(mask: torch.Tensor) -> tuple:
    idx = mask.nonzero()
    return tuple(int(i) for i in idx[0]) if idx.numel() else ()


def assert_close(actual: object, expected: torch.Tensor, what: str, where: Locate, kind: str = "value",
                 skip: torch.Tensor | None = None) -> None:
    """Full-precision comparison; nan must match nan, inf must match inf."""
    actual = check_tensor(actual, expected, what)
    if expected.numel() == 0:
        return
    rtol, atol = (VALUE_TOL if kind == "value" else GRAD_TOL)[expected.dtype]
    a, e = actual.detach().cpu().double(), expected.detach().cpu().double()
    ok = torch.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
    if skip is not None:
        ok |= skip.cpu()
    if not bool(ok.all()):
        i = _first(~ok) if a.dim() else ()
        raise CheckFailure(f"{what}: {kind} is {fmt(a[i].item())} {where(i)}, torch gives {fmt(e[i].item())}",
                           failing_inputs(where, ~ok), kind)


def ulp(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The spacing of ``dtype`` at each value of ``t`` (float64), subnormals included."""
    finfo = torch.finfo(dtype)
    _, exponent = torch.frexp(torch.where(torch.isfinite(t), t, 1.0))
    spacing = torch.pow(2.0, (exponent - 1).double()) * finfo.eps
    return torch.clamp(spacing, min=finfo.smallest_normal * finfo.eps)


def assert_half_close(actual: object, torch_half: torch.Tensor, truth: torch.Tensor, what: str,
                      where: Locate, kind: str = "value", skip: torch.Tensor | None = None) -> None:
    """Half precision: torch itself rounds, so judge both against a float64 truth."""
    actual = check_tensor(actual, torch_half, what)
    if truth.numel() == 0:
        return
    k_torch, k_eps = HALF_VALUE_SLACK if kind == "value" else HALF_GRAD_SLACK
    a, t, h = actual.detach().cpu().double(), truth.detach().cpu().double(), torch_half.detach().cpu().double()
    finite = torch.isfinite(t)
    torch_err = torch.where(finite, (h - t).abs(), 0)
    u = ulp(t, torch_half.dtype)
    # plus the float32 tolerance: near 0 an accurate float32 result can be many half ulps off
    rtol, atol = (VALUE_TOL if kind == "value" else GRAD_TOL)[torch.float32]
    allowed = torch.maximum(k_torch * torch_err, k_eps * u) + 1e-3 * u + atol + rtol * t.abs()
    err = torch.where(finite, (a - t).abs(), 0)
    ok = torch.where(finite, err <= allowed, (a == t) | (a.isnan() & t.isnan()))
    # torch's own half result, and whatever equals it, is always acceptable
    ok |= (a == h) | (a.isnan() & h.isnan())
    if skip is not None:
        ok |= skip.cpu()
    if not bool(ok.all()):
        i = _first(~ok) if a.dim() else ()
        hint = ("; compute in float32 and round once, as torch does" if kind == "value"
                else "; compute the derivative in float32 and round once")
        raise CheckFailure(
            f"{what}: {kind} is {fmt(a[i].item())} {where(i)}, the exact value is {fmt(t[i].item())} "
            f"and torch gives {fmt(h[i].item())} (error {fmt(err[i].item())} > allowed "
            f"{fmt(allowed[i].item())}){hint}", failing_inputs(where, ~ok), kind)
