"""The MLX notebooks need MLX, which has no wheel for some platforms (Windows): there their nbval
run is skipped, with one line saying why, and everything else runs."""
from __future__ import annotations

import pytest

from grader.mlx_catalog import NO_MLX, available

MLX_NOTEBOOKS = ("10_mlx.ipynb",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if any(item.path.name in MLX_NOTEBOOKS for item in items) and not available():
        skip = pytest.mark.skip(reason=NO_MLX.replace("the MLX checks are", "this MLX notebook is"))
        for item in items:
            if item.path.name in MLX_NOTEBOOKS:
                item.add_marker(skip)
