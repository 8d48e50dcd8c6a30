"""Colab and Binder: the set-up cells follow `_config.yml`, a chapter opened alone in (a stand-in
for) Colab fetches the course and runs, the grader installs from git, and `grade()` grades the
notebook it is called from without recursing when that notebook is itself being graded."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from grader.authoring import exercises, launch
from grader.core.env import RUNNING

from conftest import FAKE_COLAB

ROOT = Path(__file__).resolve().parent.parent


def run_as_colab(tmp: Path, source: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    (tmp / "cell.py").write_text(source)
    (tmp / "colab.py").write_text(FAKE_COLAB)
    return subprocess.run([sys.executable, str(tmp / "colab.py"), str(tmp / "cell.py"), *args], cwd=tmp,
                          capture_output=True, text=True, timeout=300, env=env)


def test_setup_cells_follow_the_config() -> None:
    assert launch.main(["--check"]) == 0, "run `make exercises`"
    url, branch = launch.repository()
    for path in launch.chapters():
        cells = json.loads(path.read_text())["cells"]
        setup = [c for c in cells if launch.TAG in c["metadata"].get("tags", [])]
        assert len(setup) == 1 and "remove-cell" in setup[0]["metadata"]["tags"], path.name
        assert f'"{url}"' in setup[0]["source"] and f'"{branch}"' in setup[0]["source"], path.name
        first_code = next(c for c in cells if c["cell_type"] == "code")
        assert first_code is setup[0], f"{path.name}: the Colab set-up must run before any import"
    for path in (ROOT / "exercises").glob("*.ipynb"):
        cells = json.loads(path.read_text())["cells"]
        assert f"git+{url}@{branch}" in next(c for c in cells if c["cell_type"] == "code")["source"], path.name
        assert cells[-1]["source"] == "from grader.notebook import grade\n\ngrade()", path.name
        assert cells[-1]["metadata"]["tags"] == ["grade"]


def test_a_moved_repository_makes_the_check_fail(tmp_path: Path) -> None:
    for part in ("book", "solutions", "exercises"):
        shutil.copytree(ROOT / part, tmp_path / part)
    config = (ROOT / "_config.yml").read_text()
    url, _ = launch.repository()
    (tmp_path / "_config.yml").write_text(config.replace(url, "https://github.com/someone/fork"))
    assert launch.main(["--check", "--root", str(tmp_path)]) == 1
    assert exercises.main(["--check", "--root", str(tmp_path)]) == 1
    assert launch.main(["--root", str(tmp_path)]) == 0 and exercises.main(["--root", str(tmp_path)]) == 0
    assert launch.main(["--check", "--root", str(tmp_path)]) == 0
    assert "https://github.com/someone/fork" in (tmp_path / "book" / "01_standard.ipynb").read_text()


@pytest.fixture(scope="module")
def public_repo(tmp_path_factory) -> str:
    """A stand-in for the public repository: a bare copy of this checkout whose configured branch
    (`_config.yml`) is this checkout's HEAD, whatever branch (or detached HEAD) CI checked out."""
    mirror = tmp_path_factory.mktemp("public") / "course.git"
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    subprocess.run(["git", "clone", "-q", "--bare", str(ROOT), str(mirror)], check=True)
    subprocess.run(["git", "-C", str(mirror), "update-ref", f"refs/heads/{launch.repository()[1]}", head], check=True)
    return str(mirror)


def test_chapter_cell_fetches_the_course_in_colab(tmp_path: Path, public_repo: str) -> None:
    """The real cell, with a copy of this checkout standing in for the public repository and a
    scratch folder for /content: after it, the chapter's own imports work."""
    url, branch = launch.repository()
    content = tmp_path / "content"
    content.mkdir()
    cell = launch.chapter_cell(url, branch).replace(url, public_repo).replace("/content", str(content))
    after = textwrap.dedent("""
        from bookutils import solutions
        import torch
        relu = solutions("standard")["relu"]
        print("relu", relu(torch.tensor([-1.0, 2.0])).tolist(), __import__("os").getcwd())
        """)
    r = run_as_colab(tmp_path, cell + "\n" + after)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"relu [0.0, 2.0] {content}/course/book" in r.stdout
    # outside Colab the same cell does nothing
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    plain = subprocess.run([sys.executable, "-c", cell.replace(str(content), str(elsewhere))], cwd=elsewhere,
                           capture_output=True, text=True)
    assert plain.returncode == 0 and list(elsewhere.iterdir()) == [], plain.stderr


def test_grader_installs_from_git(tmp_path: Path, public_repo: str) -> None:
    """What the exercises' Colab cell runs (`pip install git+URL@branch`, with pip's build
    isolation), from the committed state of this checkout, into a scratch environment (without the
    dependencies: Colab has torch)."""
    url, branch = launch.repository()
    cell = launch.exercise_cell(url, branch)
    spec = re.search(r'"git\+([^"@]+)@([^"]+)"', cell)
    assert spec and spec.groups() == (url, branch), cell
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "env")], check=True)
    py = tmp_path / "env" / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", f"git+file://{public_repo}@{branch}"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([str(py), "-c", "import grader, grader.notebook; print(grader.__file__)"],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0 and str(tmp_path / "env") in r.stdout, r.stdout + r.stderr


WRONG_RELU = "import torch\ndef relu(input, inplace=False):\n    return input.abs()\n"


def test_grade_in_jupyter_grades_the_saved_file(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text(WRONG_RELU)
    r = subprocess.run([sys.executable, "-c", "from grader.notebook import grade; raise SystemExit(grade('mine.py').returncode)"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(r"mine\.py .*\n  ReLU +0/\d+ +api: ReLU is not defined", r.stdout), r.stdout
    missing = subprocess.run([sys.executable, "-c", "from grader.notebook import grade; raise SystemExit(grade('nope.ipynb').returncode)"],
                             cwd=tmp_path, capture_output=True, text=True)
    assert missing.returncode == 2 and "nope.ipynb not found" in missing.stdout


@pytest.mark.parametrize("call", ["grade('01_standard.ipynb')", "grade()"])
def test_grade_in_colab_grades_the_notebook_as_shown(tmp_path: Path, call: str) -> None:
    """No file on disk: the notebook comes from Colab's front end (faked), stubs and all; the
    exercises' cell needs no file name there."""
    shown = json.loads((ROOT / "exercises" / "01_standard.ipynb").read_text())
    (tmp_path / "shown.json").write_text(json.dumps(shown))
    r = run_as_colab(tmp_path, f"from grader.notebook import grade\nraise SystemExit({call}.returncode)",
                     str(tmp_path / "shown.json"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert ".ipynb" in r.stdout and "not implemented" in r.stdout, r.stdout
    assert not (tmp_path / "01_standard.ipynb").exists()


def test_grade_does_nothing_while_being_graded(tmp_path: Path) -> None:
    env = {**os.environ, RUNNING: "1"}
    r = subprocess.run([sys.executable, "-c", "from grader.notebook import grade; raise SystemExit(grade('x.ipynb'))"],
                       cwd=tmp_path, capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "skipped" in r.stdout


def test_binder_pins_are_the_project_s() -> None:
    def pins(path: Path) -> dict[str, str]:
        lines = [l.split("#")[0].split(";")[0].strip() for l in path.read_text().splitlines()]
        return dict(l.split("==", 1) for l in lines if "==" in l)

    binder, project = pins(ROOT / "binder" / "requirements.txt"), pins(ROOT / "requirements.txt")
    assert binder.pop("torch") == project.pop("torch") + "+cpu"
    for name, version in binder.items():
        assert project.get(name) == version, f"binder/requirements.txt pins {name}=={version}, requirements.txt {project.get(name)}"
    assert os.access(ROOT / "binder" / "postBuild", os.X_OK)
