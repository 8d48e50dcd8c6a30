"""The MLX notebooks need MLX, which has no wheel for some platforms (Windows): there their nbval
run is skipped, with one line saying why, and everything else runs. ``--shuffle SEED`` runs the
collected tests in a shuffled order (tests/test_hangs.py uses it to prove no state leaks between
tests that share a process)."""
from __future__ import annotations

import random

import pytest

from grader.spec.mlx_catalog import NO_MLX, available

MLX_NOTEBOOKS = ("10_mlx.ipynb",)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--shuffle", metavar="SEED", default=None,
                     help="run the tests in an order shuffled with this seed (no xdist: -n 0)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("shuffle") is not None:
        random.Random(config.getoption("shuffle")).shuffle(items)
    if any(item.path.name in MLX_NOTEBOOKS for item in items) and not available():
        skip = pytest.mark.skip(reason=NO_MLX.replace("the MLX checks are", "this MLX notebook is"))
        for item in items:
            if item.path.name in MLX_NOTEBOOKS:
                item.add_marker(skip)
