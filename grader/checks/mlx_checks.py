"""The MLX checks: an MLX submission's activations against torch, with the torch checks' verdicts.

They are torch's checks (grader/checks/shared_checks.py) run through MLX's adapter
(grader/checks/mlx_adapter.py), which calls the student's MLX code on converted inputs and hands back
torch tensors. Only the module check is MLX's own: an mlx.nn.Module has neither repr nor state_dict
to compare with torch's, but a parameters() tree and gradients by ``nn.value_and_grad``.
"""
from __future__ import annotations

import torch

from grader.checks.base import Check
from grader.checks.compare import assert_close, dtype_name, locate_elementwise, locate_index
from grader.checks.harness import Impl, Notes, student_call, torch_impl, torch_vjp
from grader.checks.inputs import random_input, seed_of, upstream_for
from grader.checks.mlx_adapter import MLX_ADAPTER, to_mx, to_torch
from grader.checks.shared_checks import (api_check, edges_check, forbidden_check, grads_check, kinks_check,
                                         random_check, values_check, vectorised_check)
from grader.core.errors import CheckFailure


def _module_run(module: object, x: torch.Tensor, up: torch.Tensor, what: str) -> tuple:
    """The module's output, its parameters() and their gradients (for the loss sum(output * up))."""
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten

    xm, um = to_mx(x), to_mx(up)
    out = to_torch(module(xm), what)
    params = {k: to_torch(v, f"{what} parameter {k}") for k, v in tree_flatten(module.parameters())}
    grads: dict = {}
    if params:
        loss = lambda m: mx.sum(m(xm) * um)
        _, g = nn.value_and_grad(module, loss)(module)
        grads = {k: to_torch(v, f"{what} gradient of {k}") for k, v in tree_flatten(g)}
    return out, params, grads


def check_module(impl: Impl, device: str) -> Notes:
    """The class on each case: values as torch's module; PReLU: its weight in parameters() and its gradient."""
    entry = impl.entry
    for case in MLX_ADAPTER.cases(impl):
        module = MLX_ADAPTER.make_module(impl, case)
        x = random_input(entry, torch.float32, "cpu", seed_of(entry.name, "mlx module", case.seed))
        torch_module = torch_impl(entry).make_module(case.torch)
        xr = x.clone().requires_grad_()
        yr = torch_module(xr)
        up = upstream_for(entry, yr, seed_of("mlx module up"))
        what = MLX_ADAPTER.module_label(impl, case)
        ys, params, grads = student_call(what, _module_run, module, x, up, what)
        where = locate_elementwise(x) if entry.elementwise else locate_index(x)
        with MLX_ADAPTER.judging(impl, case, torch.float32, x, ys):
            assert_close(ys, yr.detach(), what, where)
        expected = dict(torch_module.named_parameters())
        if sorted(params) != sorted(expected):
            raise CheckFailure(f"{what}: parameters() holds {sorted(params) or 'nothing'}; torch's module has "
                               f"{sorted(expected) or 'none'}")
        for name, p in expected.items():
            (g,) = torch_vjp(yr, [p], up, retain_graph=True)
            assert_close(params[name], p.detach(), f"{what}: parameter {name}", locate_index(p))
            if name not in grads:
                raise CheckFailure(f"{what}: no gradient for parameter {name}")
            assert_close(grads[name], g, f"{what}: gradient of parameter {name}", locate_index(p), kind="grad")
    return []


CHECKS: tuple[Check, ...] = (
    Check("mlx api", api_check(MLX_ADAPTER), per_device=False),
    *(Check(f"mlx values[{dtype_name(d)}]", values_check(MLX_ADAPTER, d), per_device=False)
      for d in MLX_ADAPTER.dtypes),
    *(Check(f"mlx grad[{dtype_name(d)}]", grads_check(MLX_ADAPTER, d), per_device=False) for d in MLX_ADAPTER.dtypes),
    Check("mlx edges", edges_check(MLX_ADAPTER), per_device=False),
    Check("mlx kinks", kinks_check(MLX_ADAPTER), per_device=False,
          applies=lambda e: any(e.kinks(e.resolve(c)) for c in e.cases)),
    Check("mlx module", check_module, per_device=False),
    Check("mlx random", random_check(MLX_ADAPTER), per_device=False, applies=lambda e: e.random),
    Check("mlx forbidden", forbidden_check(MLX_ADAPTER), per_device=False),
    Check("mlx vectorised", vectorised_check(MLX_ADAPTER), per_device=False),
)
