"""The Pythons the course supports: `make setup` refuses any other in one line before creating
anything, the README, pyproject.toml and Binder say the same range, and the grader package's own
dependencies resolve on every declared version."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def declared() -> list[str]:
    """``PYTHONS`` of the Makefile: the versions `make setup` accepts."""
    line = next(ln for ln in (ROOT / "Makefile").read_text().splitlines() if ln.startswith("PYTHONS :="))
    return line.split(":=", 1)[1].split()


def as_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def test_declared_versions_agree() -> None:
    versions = declared()
    assert versions == sorted(versions, key=as_tuple) and len(versions) >= 2
    # consecutive minor versions: "3.11 to 3.13" in the README means every version between
    assert [as_tuple(v)[1] for v in versions] == list(range(as_tuple(versions[0])[1], as_tuple(versions[-1])[1] + 1))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == f">={versions[0]}"
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    assert runtime.removeprefix("python-") in versions, runtime
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert f"Python {versions[0]} to {versions[-1]}" in quick
    assert not re.search(r"Python 3\.\d+\+", readme), "the README still names an open range"


def fake_python(tmp_path: Path, version: str) -> Path:
    """An interpreter that answers the Makefile's version probe as ``python<version>`` would;
    a real one may not be installed on the machine that runs the tests."""
    path = tmp_path / f"python{version}"
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return path


def real_undeclared() -> list[str]:
    """Undeclared interpreters pyenv installed on this machine, if any: the probe must read them too."""
    found = {str(p) for p in (Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions").glob("*/bin/python")}
    version = lambda path: subprocess.run([path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                          capture_output=True, text=True).stdout.strip()
    return sorted(p for p in found if version(p) not in declared())


@pytest.mark.parametrize("python", ["3.10.13", "3.14.0", "missing", *real_undeclared()])
def test_make_setup_refuses_an_undeclared_python_before_creating_anything(tmp_path: Path, python: str) -> None:
    if python == "missing":
        interpreter = tmp_path / "no-such-python"
    elif python.startswith("/"):
        interpreter = Path(python)
        python = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                                capture_output=True, text=True).stdout.strip()
    else:
        interpreter = fake_python(tmp_path, python)
    venv = tmp_path / "venv"
    # what make creates in the course itself (other tests may create other things meanwhile)
    made = lambda: {name: (ROOT / name).exists() for name in (".venv", "_mathjax", "_build")}
    before = made()
    r = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "book", f"PYTHON={interpreter}",
                        f"VENV={venv}"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    found = f"found no Python at '{interpreter}'" if python == "missing" else f"found Python {python} ({interpreter})"
    assert found in lines[0]
    assert f"needs Python {', '.join(declared())}" in lines[0]
    assert "make book PYTHON=python3.12" in lines[0]
    assert not venv.exists()
    assert made() == before


def test_make_setup_accepts_every_declared_python(tmp_path: Path) -> None:
    """The same probe lets a declared version through (dry run: nothing is executed)."""
    for version in declared():
        python = fake_python(tmp_path, f"{version}.0")
        r = subprocess.run(["make", "--no-print-directory", "-n", "-C", str(ROOT), "setup", f"PYTHON={python}",
                            f"VENV={tmp_path / 'venv'}"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert f"{python} -m venv {tmp_path / 'venv'}" in r.stdout


# pyproject.toml declares ">=3.11" for the grader package alone (no upper bound: torch and pytest
# follow new Pythons); the newest released Python is checked too, where Colab will go next.
PACKAGE_PYTHONS = declared() + ["3.14"]


@pytest.mark.registry
@pytest.mark.parametrize("version", PACKAGE_PYTHONS)
def test_grader_dependencies_resolve_on_every_declared_python(tmp_path: Path, version: str) -> None:
    """`pip install` of the grader alone (Colab, the classroom template, Gradescope) needs only its
    declared dependencies; pip resolves them for ``version`` from the registry without installing."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                        "--python-version", version, "--only-binary=:all:", "--target", str(tmp_path / "t"),
                        "--report", str(tmp_path / "report.json"), *deps],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    names = {i["metadata"]["name"].lower() for i in json.loads((tmp_path / "report.json").read_text())["install"]}
    assert {"torch", "pytest"} <= names


# Where the course installs MLX 0.32.4: Linux x86_64 (its CPU build, `mlx[cpu]`) and macOS on Apple
# silicon. PyPI has no wheel of it for Intel Macs or Windows; Linux on ARM has one (manylinux_2_35),
# which the course has not tried. Elsewhere the chapter skips with a note.
PLATFORMS = {("linux", "x86_64"): "mlx[cpu]==0.32.4", ("darwin", "arm64"): "mlx==0.32.4",
             ("darwin", "x86_64"): None, ("win32", "AMD64"): None, ("linux", "aarch64"): None}


@pytest.mark.parametrize("platform, wanted", PLATFORMS.items(), ids=lambda v: "-".join(v) if isinstance(v, tuple) else "")
def test_requirements_install_mlx_only_where_it_has_a_wheel(platform: tuple[str, str], wanted: str | None) -> None:
    from packaging.requirements import Requirement

    from grader.authoring.handout import installs

    environment = {"sys_platform": platform[0], "platform_machine": platform[1], "platform_system": "",
                   "os_name": "nt" if platform[0] == "win32" else "posix"}
    lines = [l.strip() for l in (ROOT / "requirements.txt").read_text().splitlines()
             if l.strip() and not l.startswith("#")]
    mlx = [str(Requirement(l)).split(";")[0] for l in lines if Requirement(l).name == "mlx"
           and (Requirement(l).marker is None or Requirement(l).marker.evaluate(environment))]
    assert mlx == ([wanted] if wanted else []), mlx
    # the bundles' own reading of the markers agrees with pip's
    assert installs("mlx", ROOT, {"sys_platform": platform[0], "platform_machine": platform[1]}) == wanted


def lab_requirements() -> list[str]:
    return [l.strip() for l in (ROOT / "requirements-lab.txt").read_text().splitlines()
            if l.strip() and not l.startswith("#")]


def registered_kernel() -> str:
    """The kernel name `make setup` registers .venv's Python under (``ipykernel install --name``)."""
    (name,) = re.findall(r"ipykernel install --sys-prefix --name (\S+)", (ROOT / "Makefile").read_text())
    return name


def test_make_lab_prerequisites_are_declared(tmp_path: Path) -> None:
    """`make lab` installs a pinned JupyterLab (requirements-lab.txt) into .venv, with requirements.txt
    in the same pip call so that no pin of the course moves, and starts it on exercises/ (dry run)."""
    from packaging.requirements import Requirement

    lab = [Requirement(l) for l in lab_requirements()]
    assert "jupyterlab" in {r.name for r in lab}
    for r in lab:
        assert len(r.specifier) == 1 and next(iter(r.specifier)).operator == "==", f"{r} is not pinned"
    course = {Requirement(l).name for l in (ROOT / "requirements.txt").read_text().splitlines()
              if l.strip() and not l.startswith("#")}
    assert not course & {r.name for r in lab}, "a package pinned in both requirements files"
    python, venv = fake_python(tmp_path, f"{declared()[0]}.0"), tmp_path / "venv"
    r = subprocess.run(["make", "--no-print-directory", "-n", "-C", str(ROOT), "lab", f"PYTHON={python}",
                        f"VENV={venv}", "LAB_OPTIONS=--no-browser --port=8899"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    setup = next(i for i, l in enumerate(lines) if f"ipykernel install --sys-prefix --name {registered_kernel()}" in l)
    install = next(i for i, l in enumerate(lines) if "pip install -q -r requirements.txt -r requirements-lab.txt" in l)
    start = next(i for i, l in enumerate(lines) if l.startswith(f"{venv}/bin/jupyter-lab "))
    assert setup < install < start, r.stdout
    assert "--ServerApp.root_dir=exercises --no-browser --port=8899" in lines[start]


def test_exercise_notebooks_ask_for_the_kernel_setup_registers() -> None:
    """Every exercise notebook names the kernel `make setup` registers, so JupyterLab from `make lab`
    opens it on .venv's Python with nothing to choose; the students' guide says so."""
    kernel = registered_kernel()
    for path in sorted((ROOT / "exercises").glob("*.ipynb")):
        spec = json.loads(path.read_text(encoding="utf-8"))["metadata"].get("kernelspec", {})
        assert spec.get("name") == kernel, (path.name, spec)
    guide = (ROOT / "book" / "guide_students.md").read_text(encoding="utf-8")
    start = guide.split("## ", 2)[1]  # the first section: from a clone to an open notebook
    assert "make lab" in start and f"`{kernel}`" in start
