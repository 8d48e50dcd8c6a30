"""What every repository the course hands out is made of: this grader's own source (so whatever
grades with it grades with exactly the grader that built it, and needs no access to the course's
repository), the course's pinned requirements of what the grader imports while grading, the
exercise notebooks of an assignment with the set-up cell that finds that copy of the grader, and
where all of it comes from (the course commit). ``classroom``, ``classroom50``, ``grading-workflow``
and ``gradescope`` build on it.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from grader import __version__
from grader.authoring.exercises import BEGIN, END
from grader.authoring.launch import TAG, with_setup
from grader.authoring.notebooks import dumps
from grader.authoring.templates import Placeholders
from grader.core.paths import PACKAGE, ROOT
from grader.spec.assignment import WHOLE_COURSE, Assignment

TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PYTHON = "3.11"  # what the course's workflows set up: the oldest Python its pins were verified on
# What the grader imports when it grades (numpy: checks.py keys torch's references by tensor bytes;
# mlx: the MLX chapter, pinned for the platforms it has wheels for).
GRADING = ("torch", "numpy", "pytest", "mlx")
REQUIRED = ("torch", "numpy", "pytest")

# The first steps of every job that grades with the repository's grader/: it and what it needs,
# pinned (the feedback workflow and grading-workflow's jobs start the same way).
SETUP_STEPS = Placeholders("""\
      - uses: actions/checkout@v7
      - uses: actions/setup-python@v7
        with:
          python-version: "%{python}"
          cache: pip
          cache-dependency-path: requirements.txt
      - name: Install torch and the grader's dependencies
        run: |
          python -m pip install --index-url %{torch_index} torch==%{torch}
          python -m pip install -r requirements.txt""")


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def grader_commit(package: Path = PACKAGE) -> tuple[str | None, bool]:
    """The course commit the grader's source comes from, and whether ``grader/`` has uncommitted
    changes there (then a copy of it is not that commit's). ``None``: not a git checkout."""
    commit = _git(package.parent, "rev-parse", "HEAD")
    if not commit:
        return None, False
    return commit, bool(_git(package.parent, "status", "--porcelain", "--", package.name))


def provenance(commit: str | None, dirty: bool) -> str:
    where = f"course commit {commit}" if commit else "not from a git checkout"
    return f"activations-course-grader {__version__}, {where}" + (" plus uncommitted changes" if dirty else "")


def origin() -> str:
    """Where this grader comes from, in one line (:func:`provenance` of this checkout)."""
    return provenance(*grader_commit())


def pins(root: Path = ROOT) -> dict[str, str]:
    """The course's pinned versions (requirements.txt) of what every install of the grader needs."""
    found = {}
    for line in (root / "requirements.txt").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^(torch|pytest|numpy)==([^\s;#]+)", line.strip())
        if m:
            found[m.group(1)] = m.group(2)
    missing = {"torch", "pytest"} - set(found)
    if missing:
        raise SystemExit(f"error: {root / 'requirements.txt'} does not pin {', '.join(sorted(missing))}")
    return found


def grading_requirements(root: Path = ROOT) -> list[str]:
    """The course's requirements.txt lines (markers kept) of what the grader imports when it grades."""
    lines, names = [], set()
    for line in (root / "requirements.txt").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*==", line.strip())
        if m and m.group(1).lower() in GRADING:
            lines.append(line.strip())
            names.add(m.group(1).lower())
    missing = set(REQUIRED) - names
    if missing:
        raise SystemExit(f"error: {root / 'requirements.txt'} does not pin {', '.join(sorted(missing))}")
    return lines


# The markers requirements.txt uses, and the values of the machines the course hands grading to.
_MARKER = re.compile(r'^(sys_platform|platform_machine)\s*==\s*"([^"]*)"$')
LINUX_X86_64 = {"sys_platform": "linux", "platform_machine": "x86_64"}  # Gradescope, GitHub's ubuntu-latest


def applies(line: str, where: dict[str, str]) -> bool:
    """Whether a requirements line is installed on a machine of ``where``'s sys_platform and
    platform_machine. Only ``==`` tests joined by ``and``: the course uses no other marker, and an
    unknown one is an error rather than a guess."""
    _, _, marker = line.partition(";")
    for test in filter(None, (t.strip() for t in marker.split(" and "))):
        m = _MARKER.match(test)
        if not m:
            raise SystemExit(f"error: requirements.txt: cannot evaluate the marker {test!r} of {line!r}")
        if where.get(m.group(1)) != m.group(2):
            return False
    return True


def installs(package: str, root: Path = ROOT, where: dict[str, str] = LINUX_X86_64) -> str | None:
    """The requirements line (without its marker) that installs ``package`` on ``where``, or None."""
    for line in grading_requirements(root):
        if re.match(rf"^{re.escape(package)}(\[[^\]]*\])?\s*==", line) and applies(line, where):
            return line.partition(";")[0].strip()
    return None


def target_maxima(assignment: Assignment, platform_name: str, root: Path = ROOT,
                  where: dict[str, str] = LINUX_X86_64) -> dict[str, int]:
    """The assignment's maximum where ``platform_name`` grades it (``where``: Linux x86_64 without a
    GPU): MLX's checks count where the course pins an MLX for it. SystemExit, in one line, for a
    chapter that would have no point to give there: its tests would pass with 0 of 0."""
    from grader.report import gradebook  # torch: only where a bundle is built

    maxima = gradebook.max_scores("cpu", assignment, mlx=installs("mlx", root, where) is not None)
    empty = [c for c in assignment.chapters if not any(maxima[e.key] for e in assignment.exercises if e.chapter == c)]
    if empty:
        machine = f"{where['sys_platform']} {where['platform_machine']}"
        raise SystemExit(f"error: {platform_name} cannot grade chapter {', '.join(empty)}: none of its checks runs on "
                         f"{machine} with {root / 'requirements.txt'} (no MLX for it?): leave it out of --chapter")
    return maxima


def requirements(lines: list[str], torch_version: str, origin: str) -> str:
    return f"""\
# The grader in grader/ is the course's: {origin}.
# It is not installed: `python -m grader`, run from this folder, uses grader/. Below is what it needs,
# pinned. Install CPU torch first, from PyTorch's CPU index (an unpinned torch from PyPI pulls a
# multi-GB CUDA build):
#   python -m pip install --index-url {TORCH_CPU_INDEX} torch=={torch_version}
#   python -m pip install -r requirements.txt
""" + "\n".join(lines) + "\n"


def setup_steps(torch_version: str) -> str:
    return SETUP_STEPS.substitute(python=PYTHON, torch_index=TORCH_CPU_INDEX, torch=torch_version)


def setup_cell(url: str, ref: str) -> str:
    """A handed-out notebook's Colab set-up cell: the grader next to the notebook (the repository's
    grader/, one folder up in Jupyter, or uploaded into Colab), else, in Colab, the course's at ``ref``."""
    return f'''\
# The grader this repository was made with is its grader/ folder. Jupyter finds it one folder up;
# Colab opens this notebook alone and installs the same grader from the course instead,
# unless you uploaded grader/ into Colab's Files (see README.md).
import os, subprocess, sys
_here = [d for d in (os.getcwd(), os.path.dirname(os.getcwd()))
         if os.path.isfile(os.path.join(d, "grader", "__init__.py"))]
if _here:
    sys.path.insert(0, _here[0])  # and for grade(), which runs `python -m grader`:
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [_here[0], os.environ.get("PYTHONPATH")]))
elif "google.colab" in sys.modules:
    if subprocess.run([sys.executable, "-m", "pip", "install", "-q", "git+{url}@{ref}"]).returncode:
        raise SystemExit("Could not install the grader from {url} (a private course?): upload "
                         "your repository's grader/ folder into Colab's Files and run this cell again.")'''


def template_notebook(path: Path, cell: str) -> str:
    """The exercise with the handed-out set-up cell (its other tags kept)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    old = next((c for c in nb["cells"] if TAG in c.get("metadata", {}).get("tags", [])), None)
    tags = [t for t in (old or {}).get("metadata", {}).get("tags", []) if t != TAG]
    return dumps(with_setup(nb, cell, tags))


def exercise_notebooks(root: Path = ROOT, assignment: Assignment = WHOLE_COURSE) -> list[Path]:
    """The assignment's exercise notebooks; refuses a chapter without one, and any notebook that still
    holds a solution region (what is handed out must never carry a solution)."""
    notebooks = [nb for nb in sorted((root / "exercises").glob("*.ipynb"))
                 if assignment.whole or nb.stem in assignment.chapters]
    missing = [] if assignment.whole else sorted(set(assignment.chapters) - {nb.stem for nb in notebooks})
    if missing or not notebooks:
        raise SystemExit(f"error: {root / 'exercises'} has no notebook{' for ' + ', '.join(missing) if missing else ''} "
                         "(run `make exercises`)")
    for nb in notebooks:
        text = nb.read_text(encoding="utf-8")
        if BEGIN in text or END in text:
            raise SystemExit(f"error: {nb} contains a solution region ({BEGIN}): regenerate the exercises")
    return notebooks


def pages_url(url: str) -> str:
    m = re.match(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?$", url)
    return f"https://{m.group(1)}.github.io/{m.group(2)}/" if m else url


def grader_sources(prefix: str = "grader") -> dict[str, str]:
    """This grader's source, ``<prefix>/...`` -> text: a repository that holds it grades with exactly
    this grader and needs no access to the course's."""
    return {f"{prefix}/{p.relative_to(PACKAGE).as_posix()}": p.read_text(encoding="utf-8")
            for p in sorted(PACKAGE.rglob("*.py"))}


def write_files(outdir: Path, files: dict[str, str]) -> list[Path]:
    """Write ``files`` (path relative to ``outdir`` -> text); returns the paths written."""
    written = []
    for name, text in files.items():
        target = outdir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def chapters_option(assignment: Assignment) -> str:
    """``--chapter`` options that make a grader command grade ``assignment``, or "" for the whole course."""
    return "" if assignment.whole else "".join(f" --chapter {c}" for c in assignment.chapters)


def student_readme(url: str, book: str, torch_version: str, notebooks: list[str], origin: str, ref: str,
                   assignment: Assignment, graded: str) -> str:
    """A handed-out repository's README for students; ``graded``: its last section, how their work
    is graded once pushed (which differs from one platform to the next)."""
    listing = "\n".join(f"- `exercises/{n}`" for n in notebooks)
    return f"""\
# Activation functions in PyTorch: exercises

Your exercises for the course *Activation Functions in PyTorch*. The book that goes with them is at
{book} (its source: {url}).

{listing}

Each notebook asks for every activation of its chapter in three forms, named as in PyTorch: the
functional form (`relu`), a `torch.autograd.Function` with your own backward (`ReLUFunction`) and
the module (`ReLU`). Replace each `raise NotImplementedError` with your code.

`grader/` is the course's grader ({origin}): the same code grades your work, and you grade
yourself with it. You install only what it needs (`requirements.txt`), never the grader itself.

## Open the notebooks

- **Jupyter** on your machine: clone this repository, install the requirements (below) and
  `pip install jupyterlab`, then `jupyter lab exercises/`. A notebook's first cell finds `grader/`
  one folder up.
- **Colab**: File > Open notebook > GitHub, paste this repository's address (allow Colab to see
  your private repositories) and pick the notebook; save your work back with File > Save a copy in
  GitHub, into this repository. Colab opens the notebook alone, without `grader/`: its first cell
  installs the course's grader at `{ref}` from {url}. If that fails
  (a private course repository, or a commit your instructor has not pushed), download this repository
  (Code > Download ZIP), upload its `grader` folder into Colab's Files pane (`/content/grader`) and
  run the cell again; or clone your own repository in Colab, with a personal access token since it
  is private: a cell with `!git clone https://TOKEN@github.com/OWNER/REPOSITORY`, then
  `%cd REPOSITORY/exercises`, then the first cell again (it finds `grader/` one folder up).

## Grade yourself

Run the notebook's last cell (save the notebook first), or from a terminal, in this folder:

```
python -m pip install --index-url {TORCH_CPU_INDEX} torch=={torch_version}
python -m pip install -r requirements.txt
python -m grader exercises/{notebooks[0]}{chapters_option(assignment)}
```

One point per check; the table shows each activation's first failing check, `-v` lists them all.

{graded.strip()}
"""
