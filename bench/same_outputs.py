"""Every output the grader writes, for one generated class, so that two versions of the grader can be
compared byte for byte (a refactoring must not change a grade, a message or a column):

    python bench/same_outputs.py OUT [--students 10]
    diff -r OUT_BEFORE OUT_AFTER

It generates the class as bench/class_throughput.py does (complete, partial, untouched, broken,
empty and hostile students), grades it with ``batch`` (CSV, JSON, Canvas's and Moodle's imports),
writes the class report (page and items CSV), grades one student's notebooks with the command line
(``--json`` and the table it prints), runs the Gradescope autograder and the Classroom 50 result on
one of them. What only says when or how long (execution times, wall clocks) is left out; the
absolute paths of the temporary folders are replaced by ``<CLASS>``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from class_throughput import make_class  # noqa: E402  (a sibling script)

VOLATILE = re.compile(r'("execution_time": )[0-9.]+|(wall |in )[0-9.]+ s|[0-9.]+ s of CPU')
# the temporary folder as Markdown and JSON escape it (Classroom 50's release body, Gradescope's output)
STAMP = re.compile(r'("datetime": ")[0-9T:-]+Z')  # when a result was written
TEMPORARY = re.compile(r"same(\\*)-outputs(\\*)-(?:\\*[A-Za-z0-9_]){8}")  # Markdown escapes "_" too
PROGRESS = re.compile(r"^\[\d+/\d+\] ")  # batch's progress lines, in the order the students finished


def normal(text: str) -> str:
    """What stays the same between two runs of one version: no times, no temporary folder's name, the
    progress lines in the students' order."""
    text = STAMP.sub(r"\1<T>", text)
    text = TEMPORARY.sub("same-outputs-<TMP>", VOLATILE.sub(lambda m: (m.group(1) or m.group(2) or "") + "<T>", text))
    lines = text.split("\n")
    progress = sorted(PROGRESS.sub("", line) for line in lines if PROGRESS.match(line))
    if progress:
        lines = [line for line in lines if not PROGRESS.match(line)] + progress
    return "\n".join(lines)


def run(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ if env is None else env,
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=cwd, env=env, capture_output=True, text=True)


def keep(out: Path, name: str, text: str, work: Path) -> None:
    (out / name).write_text(normal(text.replace(str(work), "<CLASS>")))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="a new folder for the outputs")
    p.add_argument("--students", type=int, default=10)
    args = p.parse_args()
    args.out.mkdir(parents=True)
    work = Path(tempfile.mkdtemp(prefix="same-outputs-"))
    try:
        klass = work / "class"
        make_class(klass, args.students)
        roster = work / "roster.csv"
        roster.write_text("Student,ID,SIS User ID,SIS Login ID,Section,First name,Last name,Email address,GitHub\n"
                          + "".join(f"Student {i},{1000 + i},s{i},login{i},A,First{i},Last{i},s{i}@example.edu,"
                                    f"student{i:03d}\n" for i in range(args.students)))
        r = run("batch", str(klass), "--csv", str(work / "gradebook.csv"), "--json", str(work / "report.json"),
                "--jobs", "2", "--force", "--strip-prefix", "activations-", "--roster", str(roster),
                "--canvas", str(work / "canvas.csv"), "--moodle", str(work / "moodle.csv"))
        keep(args.out, "batch.stderr", "\n".join(l for l in r.stderr.splitlines() if not l.startswith("files:")), work)
        for name in ("gradebook.csv", "report.json", "canvas.csv", "moodle.csv"):
            keep(args.out, name, (work / name).read_text(), work)
        r = run("class-report", str(work / "report.json"), "--html", str(work / "class.html"),
                "--csv", str(work / "items.csv"))
        for name in ("class.html", "items.csv"):
            keep(args.out, name, (work / name).read_text(), work)
        student = klass / "activations-student000" / "exercises"
        notebooks = sorted(map(str, student.glob("*.ipynb")))
        r = run(*notebooks, "--device", "cpu", "--json", str(work / "one.json"), "--html", str(work / "one.html"))
        keep(args.out, "one.stdout", r.stdout, work)
        keep(args.out, "one.json", (work / "one.json").read_text(), work)
        keep(args.out, "one.html", (work / "one.html").read_text(), work)
        run("gradescope", str(work / "gs"))
        gs = work / "autograder"
        with zipfile.ZipFile(work / "gs" / "autograder.zip") as z:
            z.extractall(gs / "source")
        shutil.copytree(student, gs / "submission")
        run("gradescope", "--run", str(gs), cwd=gs / "source", env={**os.environ, "PYTHONPATH": str(gs / "source")})
        keep(args.out, "gradescope-results.json", (gs / "results" / "results.json").read_text(), work)
        run("classroom50", str(work / "assignment"), "--classroom", "course", "--assignment", "all")
        config = work / "assignment" / "classroom50" / "course" / "autograders" / "all" / "classroom50.json"
        c50 = work / "c50"
        c50.mkdir()
        r = run("classroom50", "--result", str(work / "one.json"), "--config", str(config), "--into", str(c50))
        for found in sorted(c50.iterdir()):
            keep(args.out, f"classroom50-{found.name}", found.read_text(), work)
        if r.returncode:
            keep(args.out, "classroom50.stderr", r.stderr, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {len(list(args.out.iterdir()))} outputs into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
