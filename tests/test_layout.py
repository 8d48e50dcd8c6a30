"""The grader's shape (pyproject.toml's import-linter contracts) holds, a break of it is caught, and
the public doors still open: `python -m grader`, `grader.notebook`, `grader.catalog`, the plugin."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = str(Path(sys.executable).with_name("lint-imports"))


def lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LINT, "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold() -> None:
    r = lint(ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert f"{len(contracts)} kept, 0 broken" in r.stdout, r.stdout[-2000:]


@pytest.mark.parametrize("module, line, contract", [
    ("core/limits.py", "from grader.feedback import pages", "Layers"),
    ("checks/compare.py", "from grader.checks import recorder", "No import cycle"),
    ("run/keeper.py", "from grader.core import limits", "The keeper imports only the standard library"),
    ("core/paths.py", "import torch", "core imports no heavy library"),
    ("commands/merge.py", "from grader.commands import batch", "Commands are independent"),
])
def test_a_broken_contract_is_caught(tmp_path: Path, module: str, line: str, contract: str) -> None:
    """Each contract fails on the import it forbids, in a copy of the grader."""
    shutil.copytree(ROOT / "grader", tmp_path / "grader", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    if module == "checks/compare.py":  # a cycle needs both directions: recorder imports compare too
        target = tmp_path / "grader" / "checks" / "recorder.py"
        target.write_text(target.read_text() + "\nfrom grader.checks import compare  # noqa\n")
    path = tmp_path / "grader" / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    r = lint(tmp_path)
    assert r.returncode != 0, r.stdout[-2000:]
    # an upward import also closes a cycle between packages: the named contract is among the broken
    broken = [l for l in r.stdout.splitlines() if l.rstrip().endswith("BROKEN")]
    assert any(b.startswith(contract) for b in broken), r.stdout[-2000:]


def test_every_command_is_in_the_independence_contract() -> None:
    """A new command joins the contract that keeps the commands from importing each other; every
    module of grader/commands/ is a command (what commands share lives below them)."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (independent,) = [c for c in contracts if c["type"] == "independence"]
    from grader.cli import COMMANDS

    commands = {f"grader.commands.{c.replace('-', '_')}" for c in COMMANDS} | {"grader.commands.grade"}
    modules = {f"grader.commands.{p.stem}" for p in (ROOT / "grader" / "commands").glob("*.py")
               if p.stem != "__init__"}
    assert set(independent["modules"]) == commands == modules


def test_importing_the_notebook_door_loads_neither_torch_nor_pytest() -> None:
    """Every exercise imports grader.notebook: it must cost nothing until check() or grade() runs."""
    code = "import sys, grader.notebook; print(sorted(m for m in ('torch', 'pytest', 'numpy') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def test_the_public_doors_open(cli) -> None:
    import grader.catalog
    import grader.notebook
    from grader.spec import catalog

    assert grader.catalog is catalog  # the same module: a change through either name is seen by both
    assert callable(grader.notebook.check) and callable(grader.notebook.grade)
    r = subprocess.run([sys.executable, "-m", "grader", "--help"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "batch|merge|grading-workflow|classroom|classroom50|gradescope|class-report" in r.stdout, r.stdout + r.stderr
    # each command's own help, through the same main() as the door above, in this process
    for command in ("batch", "merge", "grading-workflow", "classroom", "classroom50", "gradescope", "class-report"):
        r = cli(command, "--help")
        assert r.returncode == 0 and f"python -m grader {command}" in r.stdout, (command, r.stdout + r.stderr)


def test_the_pytest_plugin_entry_point_loads_the_plugin() -> None:
    """`pytest --submission PATH` works wherever the grader is installed (pyproject's pytest11)."""
    entry = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["pytest11"]
    [(name, target)] = entry.items()
    module = __import__(target, fromlist=["pytest_addoption"])
    assert name == "grader.plugin" and hasattr(module, "pytest_addoption") and hasattr(module, "GraderPlugin")
