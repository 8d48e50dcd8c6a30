"""``python -m grader classroom50 OUT --classroom NAME --assignment SLUG [--chapter NAME]...``: an
assignment for Classroom 50.

Classroom 50 (foundation50/classroom50, classroom50.org) hands out a template repository and
grades every submission in GitHub Actions with the teacher's reusable runner, which fetches the
assignment's bundle (``<classroom>/autograders/<slug>/`` of the teacher's ``<org>/classroom50``
repository, packed into at most 10 MB and published unauthenticated on Pages) and runs its
``autograder.py`` in the student's checkout (its wiki pages Assignment-Templates and
Advanced-Autograding). OUT gets both sides:

- ``template/``: the assignment's template repository: the chapters' exercise notebooks (never a
  solution), this grader's source in ``grader/`` (students check and grade themselves with it), a
  README for students and ``requirements.txt``. No workflow: accepting the assignment installs
  Classroom 50's own, which a template must not hold.
- ``classroom50/<classroom>/autograders/<slug>/``: the bundle, to copy into the teacher's
  ``classroom50`` repository: ``autograder.py`` (grader/authoring/classroom50_autograder.py), the
  grader's source it grades with, ``classroom50.json`` (the chapters, the maximum of each exercise,
  the pins) and ``requirements.txt``.
- ``runtime.json``: the assignment's ``runtime`` (``gh teacher assignment add ... --runtime``): a
  Python the grader supports on ``ubuntu-latest``.

``python -m grader classroom50 --result REPORT --config FILE --into DIR`` is the autograder's last
step: the grader's JSON report as ``result.json`` and ``release-body.md`` (grader/report/classroom50.py).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
import tarfile
from pathlib import Path

from grader import __version__
from grader.authoring import classroom50_autograder
from grader.authoring.handout import (TORCH_CPU_INDEX, exercise_notebooks, grader_commit, grader_sources,
                                      grading_requirements, pages_url, pins, provenance, requirements, setup_cell,
                                      student_readme, target_maxima, template_notebook, write_files)
from grader.authoring.launch import repository
from grader.core.files import write_atomic
from grader.core.paths import ROOT
from grader.report import classroom50, gradebook
from grader.report.model import SubmissionResult
from grader.spec.assignment import BY_KEY, WHOLE_COURSE, Assignment, AssignmentError, assignment

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,38}$")  # Classroom 50's rule for classroom and assignment names
BUNDLE_LIMIT = 10 * 2**20  # runner.py's MAX_FETCH_BYTES: a larger bundle is not fetched
PYTHONS = ("3.11", "3.12", "3.13")  # what the course's pins were verified on (README, Quick start)
RUNTIME_PYTHON = "3.11"  # Classroom 50's default is 3.14, which the pins were not verified on
# Of the grade job's 15 minutes (Advanced-Autograding, "Operational notes"), what the autograder
# may use: the rest is setting up Python, fetching the runner and the bundle, and publishing.
SECONDS = 720

GRADED = """\
## Submitting

This repository was made for you by Classroom 50 when you accepted the assignment. Each submission
(a push, or `gh student submit`, as your instructor set it up) is graded in GitHub Actions with
the course's grader: the points come back as a release of this repository, on a `submit/...`
tag, whose text is a table of your exercises with the points and the first failing check of
each, and as a status of the commit. The release's `result.json` lists every failed check with its
message. Only `exercises/` is graded; the grader you are graded with is the instructor's copy, not
this repository's `grader/` (which is there for you to check yourself with).
"""


def readme_and_notebooks(root: Path, assignment: Assignment, ref: str | None, book: str | None,
                         origin: str, torch_version: str) -> tuple[dict[str, str], str]:
    url, branch = repository(root)
    ref = ref or grader_commit()[0] or branch
    notebooks = exercise_notebooks(root, assignment)
    cell = setup_cell(url, ref)
    files = {f"exercises/{nb.name}": template_notebook(nb, cell) for nb in notebooks}
    files["README.md"] = student_readme(url, book or pages_url(url), torch_version, [n.name for n in notebooks],
                                        origin, ref, assignment, GRADED)
    return files, ref


def config(assignment: Assignment, root: Path, origin: str) -> dict:
    """classroom50.json: what the autograder needs to know before the grader is installed."""
    maxima = target_maxima(assignment, "Classroom 50's ubuntu-latest runner", root)
    return {"grader": origin, "chapters": assignment.as_list(), "max_scores": maxima,
            "chapter_of": {key: BY_KEY[key].chapter for key in maxima}, "torch": pins(root)["torch"],
            "torch_index": TORCH_CPU_INDEX, "pythons": list(PYTHONS), "seconds": SECONDS}


def bundle_size(folder: Path) -> int:
    """The bytes of the bundle Classroom 50's publish-pages workflow makes of ``folder``
    (``tar -czf SLUG.tar.gz -C autograders SLUG``)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return len(buffer.getvalue())


def build(outdir: Path, classroom_name: str, slug: str, root: Path = ROOT, ref: str | None = None,
          book: str | None = None, assignment: Assignment = WHOLE_COURSE) -> tuple[list[Path], int, str]:
    """Write the template, the bundle and the runtime into ``outdir``; returns the files written,
    the bundle's size and where its grader comes from."""
    commit, dirty = grader_commit()
    origin = provenance(commit, dirty)
    torch_version = pins(root)["torch"]
    settings = config(assignment, root, origin)
    lines = grading_requirements(root)
    template, ref = readme_and_notebooks(root, assignment, ref, book, origin, torch_version)
    template.update(grader_sources())
    template.update({"requirements.txt": requirements(lines, torch_version, origin),
                     ".gitignore": ".ipynb_checkpoints/\n__pycache__/\nresult.json\nrelease-body.md\n"})
    bundle = Path("classroom50") / classroom_name / "autograders" / slug
    files = {f"template/{name}": text for name, text in template.items()}
    files.update({f"{bundle}/{name}": text for name, text in grader_sources().items()})
    files.update({
        f"{bundle}/autograder.py": Path(classroom50_autograder.__file__).read_text(encoding="utf-8"),
        f"{bundle}/classroom50.json": json.dumps(settings, indent=2) + "\n",
        f"{bundle}/requirements.txt": "".join(f"{line}\n" for line in lines),
        "runtime.json": json.dumps({"runs-on": "ubuntu-latest", "python": RUNTIME_PYTHON}, indent=2) + "\n",
    })
    written = write_files(outdir, files)
    size = bundle_size(outdir / bundle)
    if size > BUNDLE_LIMIT:
        raise SystemExit(f"error: the bundle {outdir / bundle} packs into {size} bytes, over Classroom 50's 10 MB")
    return written, size, origin


# --- inside the grading job: the grader's report as Classroom 50's result ----------------------

def exercises_of(report: dict, settings: dict) -> tuple[list[classroom50.ExerciseTest], dict]:
    """Each exercise of the bundle's assignment as graded, out of the maximum it was built with,
    and the student's merged record."""
    chosen = assignment(settings["chapters"])
    maxima = {key: int(settings["max_scores"][key]) for key in chosen.keys}
    here = gradebook.max_scores("cpu", chosen)
    submissions = [SubmissionResult.from_json(s) for s in report.get("submissions") or []]
    merged = gradebook.merge(submissions, maxima)
    record = gradebook.student_record("", [], submissions, maxima,
                                      "" if submissions else "no notebook in exercises/")
    out = []
    for name, top in maxima.items():
        e = classroom50.ExerciseTest(name, BY_KEY[name].chapter, top)
        graded, source = merged.best.get(name, (None, ""))
        if graded is None:
            e.reason = "not defined in any notebook of exercises/"
        else:
            e.score = gradebook.score(graded, maxima)
            e.source = source
            e.failed = [(c.name, c.message or c.status) for c in graded.checks if c.status == "failed"]
        if here.get(name, 0) < top:  # the job could not run what the bundle promised (MLX missing)
            e.reason = (f"only {here.get(name, 0)} of its {top} checks can run in the grading job"
                        + (" (MLX is not installed)" if BY_KEY[name].framework == "mlx" else "")
                        + ": tell your instructor")
        out.append(e)
    return out, record


def convert(report_path: Path, config_path: Path, into: Path, note: str = "") -> int:
    settings = json.loads(config_path.read_text(encoding="utf-8"))
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
        if not isinstance(report, dict) or not isinstance(report.get("submissions", []), list):
            raise ValueError("not a grader report")
        exercises, record = exercises_of(report, settings)
    except (OSError, ValueError, KeyError, TypeError, AssignmentError) as exc:
        reason = f"the grader's report cannot be read ({type(exc).__name__})"
        data, body = classroom50.not_graded(os.environ, settings["max_scores"], settings.get("chapter_of", {}), reason)
    else:
        data = classroom50.result(os.environ, exercises, note)
        body = classroom50.release_body(data, exercises, record["error"] or "", record["notes"], note)
    write_atomic(into / classroom50.RESULT, json.dumps(data, indent=2) + "\n", shared=True)
    write_atomic(into / classroom50.BODY, body, shared=True)
    print(f"grader {__version__} from {Path(__file__).parents[1]}: {data['score']}/{data['max-score']} points")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m grader classroom50", description=__doc__.replace("``", ""),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("outdir", nargs="?", type=Path, metavar="OUT", help="where to write the assignment (a new folder)")
    p.add_argument("--classroom", metavar="NAME", help="the classroom's short name in Classroom 50")
    p.add_argument("--assignment", metavar="SLUG", help="the assignment's slug in Classroom 50")
    p.add_argument("--chapter", action="append", default=[], metavar="NAME",
                   help="hand out and grade this chapter (repeatable; NAME is the exercise notebook's stem, e.g. "
                        "01_standard); default: the whole course")
    p.add_argument("--ref", help="the course commit or tag the notebooks' Colab cell installs the grader from")
    p.add_argument("--book", metavar="URL", help="the published book (default: the repository's GitHub Pages)")
    p.add_argument("--result", type=Path, metavar="REPORT", help="inside the autograder: the grader's JSON report")
    p.add_argument("--config", type=Path, metavar="FILE", help="inside the autograder: the bundle's classroom50.json")
    p.add_argument("--into", type=Path, metavar="DIR", help="inside the autograder: where to write the result")
    p.add_argument("--note", default="", help="inside the autograder: a note every test and the release body carry")
    args = p.parse_args(argv)
    if args.result:
        if not (args.config and args.into):
            p.error("--result needs --config and --into")
        return convert(args.result, args.config, args.into, args.note)
    wrong = ("give OUT" if args.outdir is None else
             f"{args.outdir} is not empty" if args.outdir.exists() and any(args.outdir.iterdir()) else
             next((f"--{what} {value!r}: Classroom 50 names are 2 to 39 lowercase letters, digits and hyphens"
                   for what, value in (("classroom", args.classroom), ("assignment", args.assignment))
                   if not SLUG.match(value or "")), None))
    if wrong:
        print(f"error: {wrong}", file=sys.stderr)
        return 2
    try:
        chosen = assignment(args.chapter)
        written, size, origin = build(args.outdir, args.classroom, args.assignment, ref=args.ref, book=args.book,
                                      assignment=chosen)
    except AssignmentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # one line, said as it was raised
        print(exc, file=sys.stderr)
        return 2
    bundle = args.outdir / "classroom50" / args.classroom / "autograders" / args.assignment
    print(f"wrote {len(written)} files into {args.outdir} ({chosen.describe()}; grader: {origin}):\n"
          f"  {args.outdir / 'template'}: push it as the assignment's template repository (Settings > Template repository)\n"
          f"  {bundle}: copy it into your ORG/classroom50 repository (its bundle packs into {size / 1e6:.2f} MB of "
          "Classroom 50's 10 MB)\n"
          f"  {args.outdir / 'runtime.json'}: gh teacher assignment add ORG {args.classroom} {args.assignment} "
          f"--name NAME --template ORG/REPO --runtime {args.outdir / 'runtime.json'}")
    return 0
