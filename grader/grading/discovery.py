"""Who the students of a class are, and which files are theirs.

A student is an immediate subfolder of the submissions folder (every .ipynb and .py file inside it,
at any depth, is that student's work) or a single file directly in it (the student is the file's
stem). That covers the layouts of a clone per repository (``<assignment>-<user>/``), Gradescope's
"Export submissions" (``submission_<id>/`` folders; ``submission_metadata.yml`` names the students),
nbgrader (``submitted/<student>/<assignment>/``) and a folder of loose files. Hidden files and
folders, ``__pycache__``, ``__MACOSX``, virtual environments and symbolic links are never graded: a
link in a cloned repository could point at the instructor's solutions.

Which slice of the class a machine grades is :mod:`grader.grading.sharding`'s.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

SUFFIXES = (".ipynb", ".py")
SKIPPED_DIRS = {"__pycache__", "__MACOSX", "node_modules", "site-packages"}
MAX_FILES = 64  # per student: more is a committed library or environment, not an exercise
GRADESCOPE_METADATA = "submission_metadata.yml"


@dataclass
class Student:
    name: str
    folder: str = ""  # the student's folder in SUBMISSIONS_DIR, "" for a loose file
    files: list[Path] = field(default_factory=list)  # absolute
    ignored: list[str] = field(default_factory=list)  # symbolic links, relative to SUBMISSIONS_DIR


def _hidden(name: str) -> bool:
    return name.startswith(".") or name in SKIPPED_DIRS


def collect(folder: Path, root: Path, student: Student) -> None:
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        if (here / "pyvenv.cfg").exists():  # a committed virtual environment
            dirnames[:] = []
            continue
        kept = []
        for d in sorted(dirnames):
            if _hidden(d):
                continue
            if (here / d).is_symlink():
                student.ignored.append((here / d).relative_to(root).as_posix())
            else:
                kept.append(d)
        dirnames[:] = kept
        for f in sorted(filenames):
            path = here / f
            if _hidden(f) or not f.endswith(SUFFIXES):
                continue
            if path.is_symlink():
                student.ignored.append(path.relative_to(root).as_posix())
            elif path.is_file():
                student.files.append(path)


def gradescope_names(root: Path) -> dict[str, str]:
    """``submission_<id>`` -> "Name <email>" (several, for a group) from Gradescope's export."""
    meta = root / GRADESCOPE_METADATA
    if not meta.is_file():
        return {}
    try:
        import yaml  # instructors' tooling: PyYAML is in requirements.txt

        data = yaml.safe_load(meta.read_text(encoding="utf-8"))
    except Exception as exc:
        print(f"warning: {meta}: cannot read it ({type(exc).__name__}); students are named by folder",
              file=sys.stderr)
        return {}
    names: dict[str, str] = {}
    for folder, info in (data or {}).items() if isinstance(data, dict) else ():
        submitters = info.get(":submitters") if isinstance(info, dict) else None
        people = []
        for s in submitters if isinstance(submitters, list) else ():
            if not isinstance(s, dict):
                continue
            name, email = str(s.get(":name") or "").strip(), str(s.get(":email") or "").strip()
            people.append(f"{name} <{email}>" if name and email else name or email)
        if any(people):
            names[str(folder)] = "; ".join(p for p in people if p)
    return names


def student_name(folder: str, strip_prefix: str = "") -> str:
    """The student a folder of the submissions folder stands for: its name, less ``strip_prefix``
    (``hw1-alice`` with ``hw1-`` is ``alice``)."""
    return folder.removeprefix(strip_prefix) or folder


def discover(root: Path, strip_prefix: str = "") -> list[Student]:
    """The students of SUBMISSIONS_DIR, sorted by name; two entries with one name (a folder and a
    loose file) are one student."""
    names = gradescope_names(root)
    students: dict[str, Student] = {}
    for entry in sorted(root.iterdir()):
        if _hidden(entry.name):
            continue
        if entry.is_symlink():
            if entry.is_dir() or entry.name.endswith(SUFFIXES):
                print(f"warning: {entry.name}: a symbolic link, not graded", file=sys.stderr)
            continue
        if entry.is_dir():
            name = names.get(entry.name) or student_name(entry.name, strip_prefix)
            student = students.setdefault(name, Student(name, folder=entry.name))
            collect(entry, root, student)
        elif entry.is_file() and entry.name.endswith(SUFFIXES):
            name = student_name(entry.stem, strip_prefix)
            students.setdefault(name, Student(name)).files.append(entry)
    for s in students.values():
        s.files.sort(key=lambda p: p.relative_to(root).as_posix())
    return sorted(students.values(), key=lambda s: (s.name.casefold(), s.name))


def relative(path: Path, root: Path) -> str:
    """A student's file as the gradebook names it: its path under the submissions folder."""
    return path.relative_to(root).as_posix()


def nothing_to_grade(student: Student) -> str:
    """Why there is nothing to grade of ``student``, before grading, or ""."""
    where = f"{student.folder}/" if student.folder else student.name
    if not student.files:
        why = f"no .ipynb or .py file in {where}"
        if student.ignored:
            why += f" (symbolic links are not graded: {', '.join(sorted(student.ignored)[:3])})"
        return why
    if len(student.files) > MAX_FILES:
        return (f"{len(student.files)} .ipynb/.py files in {where}, more than the {MAX_FILES} graded per "
                "student: not graded (a committed library or environment?)")
    return ""
