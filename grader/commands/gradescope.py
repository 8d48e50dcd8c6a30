"""``python -m grader gradescope OUTDIR``: Gradescope's autograder bundle, ``OUTDIR/autograder.zip``.

The zip follows Gradescope's autograder specification: ``setup.sh`` (run once, as root, when
Gradescope builds the image: a virtual environment with CPU torch, numpy, pytest and, on Linux
x86_64, MLX's CPU build, pinned as the course pins them) and ``run_autograder`` (run for every
submission, in ``/autograder``), plus this grader's own source, so the autograder grades with
exactly the grader that built it and needs no access to the course repository. ``run_autograder``
calls ``python -m grader gradescope --run ROOT``: it grades every .ipynb and .py file under
``ROOT/submission`` (the rules of :mod:`grader.grading.discovery`: no hidden files, no symbolic
links) and writes ``ROOT/results/results.json``
with the total ``score``, an ``output`` in Markdown (``output_format: "md"``) and one test per
activation (``name``, ``number``, ``score``, ``max_score``, ``status``, ``output``, ``visibility``).
``ROOT`` is ``/autograder`` on Gradescope; ``$AUTOGRADER_ROOT`` moves it (local tests).

Gradescope stops an autograder after 10 minutes by default and then shows the student "autograder
failed", with none of what was graded. So ``--run`` writes a provisional results.json (score 0,
"grading did not finish") before any student code runs, grades within a time budget (``--time-budget``,
default :data:`TIME_BUDGET`), reports the checks it did not reach as "not run", and replaces the
provisional file atomically at the end.

The bundle grades what it says: a chapter Gradescope's machine cannot grade (MLX's, where the
course pins no MLX for Linux x86_64) is refused when the bundle is built, and an exercise whose
checks cannot run where it is graded (MLX failed to install) fails with the reason, out of the
maximum the bundle was built with, instead of passing with 0 of 0 points.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zipfile
from pathlib import Path

from grader import __version__
from grader.authoring.handout import grading_requirements, pins, target_maxima
from grader.grading import discovery
from grader.grading.hashing import sha256
from grader.report import gradebook
from grader.report.escape import markdown_text
from grader.core import limits
from grader.spec.assignment import (BY_KEY, CHAPTER_STEMS, WHOLE_COURSE, Assignment, AssignmentError,
                                    assignment as chosen)
from grader.run.containment import WORKER_USER
from grader.core.paths import ROOT
from grader.report.model import NOT_FINISHED, ExerciseResult, SubmissionResult, write_json
from grader.core.paths import PACKAGE
from grader.authoring.templates import render

VISIBILITY = ("visible", "hidden", "after_due_date", "after_published")
# seconds of grading per submission: Gradescope's default timeout is 10 minutes (600 s) for the whole
# run_autograder; the rest is for starting Python and torch, stopping the last worker (up to 30 s)
# and writing results.json. Raise both together (Gradescope allows up to 40 minutes).
TIME_BUDGET = 540.0


SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image. The grader needs Python
# 3.11 to 3.13: an image whose python3 is one of them keeps it; Gradescope's default image, Ubuntu
# 22.04, has Python 3.10 as python3 and python3.11 in its universe component, which is installed.
# AUTOGRADER_ROOT moves /autograder (local tests).
set -euo pipefail
root="${AUTOGRADER_ROOT:-/autograder}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
version_of() { "$1" -c 'import sys; print("%%d.%%d" %% sys.version_info[:2])' 2>/dev/null; }
python=""
for candidate in python3 python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null && [[ "$(version_of "$candidate")" =~ ^3\.1[123]$ ]]; then
        python="$(command -v "$candidate")"
        break
    fi
done
if [ -z "$python" ]; then
    apt-get install -y python3.11 python3.11-venv
    python="$(command -v python3.11)" || { echo "setup.sh: python3.11 is not installed" >&2; exit 1; }
fi
# Debian and Ubuntu package venv's pip bootstrap (ensurepip) apart, as python3.X-venv
"$python" -c 'import ensurepip, venv' 2>/dev/null || apt-get install -y "python$(version_of "$python")-venv"
"$python" -m venv "$root/venv"
"$root/venv/bin/python" -m pip install --upgrade pip
# CPU torch from PyTorch's CPU index: PyPI's torch pulls a multi-GB CUDA build
"$root/venv/bin/python" -m pip install --index-url https://download.pytorch.org/whl/cpu torch==%{torch}
# the rest of what the grader imports, from the bundle's requirements.txt (MLX where it has a wheel)
"$root/venv/bin/python" -m pip install -r "$root/source/requirements.txt"
# the user submissions run as (grader/run/containment.py): it owns nothing, so a submission can write
# neither the results nor the grader, and cannot signal the grader
if ! id -u %{user} >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin %{user}
fi
"""


def setup_sh(versions: dict[str, str]) -> str:
    return render(SETUP_SH, torch=versions["torch"], user=WORKER_USER)


def bundle_requirements(root: Path = ROOT) -> str:
    """What setup.sh installs after torch: the course's pins, markers kept (pip skips MLX where it has no wheel)."""
    return "".join(f"{line}\n" for line in grading_requirements(root) if not line.startswith("torch=="))


RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission: grade /autograder/submission and write
# /autograder/results/results.json. AUTOGRADER_ROOT moves /autograder and AUTOGRADER_PYTHON picks
# the interpreter (local tests).
set -uo pipefail
root="${AUTOGRADER_ROOT:-/autograder}"
python="${AUTOGRADER_PYTHON:-$root/venv/bin/python}"
cd "$root" || exit 1
# the grader is the copy in this bundle (source/grader), whatever else is installed
PYTHONPATH="$root/source${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m grader gradescope --run "$root"
"""


def build(outdir: Path, root: Path = ROOT, visibility: str = "visible", time_budget: float = TIME_BUDGET,
          assignment: Assignment = WHOLE_COURSE) -> Path:
    """Write ``outdir/autograder.zip``, grading ``assignment``'s exercises; returns its path.
    SystemExit (one line) for a chapter Gradescope cannot grade."""
    versions = pins(root)
    maxima = target_maxima(assignment, "Gradescope", root)
    outdir.mkdir(parents=True, exist_ok=True)
    target = outdir / "autograder.zip"
    config = json.dumps({"visibility": visibility, "time_budget": time_budget,
                         "chapters": assignment.as_list(), "max_scores": maxima}) + "\n"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        _add(z, "setup.sh", setup_sh(versions), executable=True)
        _add(z, "run_autograder", RUN_AUTOGRADER, executable=True)
        _add(z, "grader.json", config)
        _add(z, "requirements.txt", bundle_requirements(root))
        for path in sorted(PACKAGE.rglob("*.py")):
            _add(z, f"grader/{path.relative_to(PACKAGE).as_posix()}", path.read_text(encoding="utf-8"))
    return target


def _add(z: zipfile.ZipFile, name: str, text: str, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, text)


# --- inside Gradescope ---------------------------------------------------------------------------

def _test_output(exercise: ExerciseResult | None, source: str, name: str, stopped: str = "",
                 unread: tuple[str, ...] = (), missing: str = "") -> str:
    if missing:  # the autograder cannot run what the bundle promised: say so before anything else
        return f"{missing} Tell your instructor.\n\n" + _test_output(exercise, source, name, stopped, unread)
    if exercise is None:
        if stopped and unread:  # perhaps in a file the grader never got to
            return f"not run: {stopped} before {', '.join(markdown_text(p) for p in unread)} was graded."
        names = ", ".join(f"`{n}`" for n in BY_KEY[name].names)
        return f"Not defined in the submission (expected {names})."
    failed = [c for c in exercise.checks if c.status == "failed"]
    lines = [f"From {markdown_text(source)}."]
    if not failed:
        lines.append(f"All {exercise.max_score} checks passed.")
    # what a check says quotes the student's output and code: literal text, never Markdown of theirs
    lines += [f"- **{c.name}**: {markdown_text(c.message)}" for c in failed]
    notes = [n for c in exercise.checks for n in c.notes][:5]
    lines += [f"- note: {markdown_text(n)}" for n in notes]
    return "\n".join(lines)


def results(submissions: list[SubmissionResult], files: list[dict], maxima: dict[str, int], visibility: str,
            elapsed: float, stopped: str = "", unread: tuple[str, ...] = (),
            runnable: dict[str, int] | None = None) -> dict:
    """Gradescope's results.json for one submission's graded files. ``stopped``: what ran out before
    every check ran (the time budget), ``unread``: the files it left ungraded; ``runnable``: how many
    of each exercise's ``maxima`` checks can run here, where fewer than the bundle was built for."""
    runnable = runnable or {}
    merged = gradebook.merge(submissions, maxima)
    record = gradebook.student_record("", files, submissions, maxima,
                                      "" if files else "no .ipynb or .py file in the submission")
    tests, counters = [], {}
    for name, top in maxima.items():
        stem = BY_KEY[name].chapter
        chapter = CHAPTER_STEMS.index(stem) + 1
        counters[chapter] = counters.get(chapter, 0) + 1
        ex, source = merged.best.get(name, (None, ""))
        got = gradebook.score(ex, maxima) if ex else 0
        missing = (f"Only {runnable[name]} of its {top} checks can run in this autograder"
                   + (" (MLX is not installed)." if BY_KEY[name].framework == "mlx" else ".")) \
            if runnable.get(name, top) < top else ""
        tests.append({
            "name": name,
            "number": f"{chapter}.{counters[chapter]}",
            "score": got,
            "max_score": top,
            # 0 of 0 is no pass: nothing was checked
            "status": "passed" if got == top and top > 0 and not missing else "failed",
            "output": _test_output(ex, source, name, stopped, unread, missing),
            "output_format": "md",
            "tags": [stem],
            "visibility": visibility,
        })
    output = [f"**{record['score']}/{record['max_score']} points** (one per check; CUDA checks are not run "
              "on Gradescope)."]
    if stopped:
        output.append(f"**Grading stopped:** {stopped}. The checks it did not reach score 0 and say "
                      "\"not run\"; what was graded before counts.")
    if record["error"]:
        output.append(f"**Could not grade:** {markdown_text(record['error'])}")
    if record["notes"]:
        output.append("\n".join(f"- note: {markdown_text(n)}" for n in record["notes"][:20]))
    return {
        "score": record["score"],
        "execution_time": round(elapsed),
        "output": "\n\n".join(output),
        **_formats(visibility),
        "extra_data": {"grader_version": __version__, "files": files},
        "tests": tests,
    }


def _formats(visibility: str) -> dict:
    return {"output_format": "md", "test_output_format": "md", "test_name_format": "text", "visibility": visibility,
            "stdout_visibility": "hidden"}


def provisional(visibility: str, time_budget: float) -> dict:
    """The results.json that stands if Gradescope stops the autograder before it writes its own:
    score 0 and why, instead of Gradescope's bare "autograder failed"."""
    return {
        "score": 0,
        "execution_time": 0,
        "output": f"{NOT_FINISHED}: the autograder was stopped before it wrote the results (Gradescope's time "
                  f"or memory limit; the grader's own time budget is {time_budget:g} s). This score of 0 is "
                  "provisional: tell your instructor.",
        **_formats(visibility),
        "extra_data": {"grader_version": __version__, "provisional": True},
        "tests": [],
    }


def _config(root: Path) -> tuple[str, float, Assignment, dict[str, int] | None]:
    """The bundle's settings (grader.json, written by :func:`build`): visibility, time budget,
    assignment (the whole course when the file has none, or names chapters this grader lacks) and
    the maximum it was built for (None from a bundle older than that)."""
    config = {}
    try:
        config = json.loads((root / "source" / "grader.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    config = config if isinstance(config, dict) else {}
    visibility = config.get("visibility") if config.get("visibility") in VISIBILITY else "visible"
    budget = config.get("time_budget")
    valid = isinstance(budget, (int, float)) and not isinstance(budget, bool) and 0 < budget < float("inf")
    chapters = config.get("chapters")
    if chapters is not None and not (isinstance(chapters, list) and all(isinstance(c, str) for c in chapters)):
        raise AssignmentError(f"grader.json: \"chapters\" is not a list of chapter names: {chapters!r}")
    assignment = chosen(chapters)
    built = config.get("max_scores")
    if built is not None and not (isinstance(built, dict) and set(built) == set(assignment.keys)
                                  and all(type(v) is int and v >= 0 for v in built.values())):
        raise AssignmentError("grader.json: \"max_scores\" does not fit its chapters")
    return visibility, float(budget) if valid else TIME_BUDGET, assignment, built


def _refuse(root: Path, why: str) -> int:
    """results.json with score 0 and why: the student sees it, not "autograder failed"."""
    out = root / "results"
    out.mkdir(parents=True, exist_ok=True)
    data = provisional("visible", TIME_BUDGET)
    data.update(output=f"**Could not grade:** {why}. Tell your instructor.",
                extra_data={"grader_version": __version__})
    write_json(data, out / "results.json")
    print(f"error: {why}", file=sys.stderr)
    return 0


def run(root: Path, time_budget: float | None = None) -> int:
    """Grade ``root/submission`` into ``root/results/results.json`` within ``time_budget`` seconds
    (default: the bundle's, else :data:`TIME_BUDGET`). The exit status is 0 whenever results.json was
    written: a submission that cannot be graded scores 0 with the reason."""
    from grader.grading.submissions import grade  # the sandbox only where it grades: a bundle's build needs none

    start = time.monotonic()
    try:
        visibility, budget, assignment, built = _config(root)
    except AssignmentError as exc:  # a bundle this grader did not build: never grade against another maximum
        return _refuse(root, f"the autograder's configuration is wrong ({exc}): rebuild it with "
                             "`python -m grader gradescope OUTDIR --chapter ...`")
    budget = time_budget or budget
    deadline = start + budget
    submission, out = root / "submission", root / "results"
    out.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        out.chmod(0o755)  # root's alone: the users submissions run as cannot write the results
    write_json(provisional(visibility, budget), out / "results.json")
    student = discovery.Student("submission")
    if submission.is_dir():
        discovery.collect(submission, submission, student)
    here = gradebook.max_scores("cpu", assignment)
    maxima = {key: built[key] for key in here} if built else here
    out_of_time = f"the grader's time budget of {budget:g} s ran out"
    reports, unread, cut = [], [], False
    for path in student.files[: discovery.MAX_FILES]:
        left = deadline - time.monotonic()
        if left <= 0:
            report = SubmissionResult(str(path), sha256(path), error=f"not run: {out_of_time}")
        else:
            report = grade(str(path), "cpu", read_only=(out.resolve(),),
                           total_timeout=min(left, limits.TOTAL_TIMEOUT), out_of_time=out_of_time,
                           assignment=assignment)
        reports.append(report)
        if out_of_time in report.error:  # never started, or stopped while its cells ran
            unread.append(path.relative_to(submission).as_posix())
        cut = cut or bool(unread) or any(out_of_time in c.message for e in report.exercises for c in e.checks)
    for report, path in zip(reports, student.files):
        report.path = path.relative_to(submission).as_posix()
    files = [{"path": r.path, "sha256": r.sha256} for r in reports]
    data = results(reports, files, maxima, visibility, time.monotonic() - start,
                   out_of_time if cut else "", tuple(unread), here)
    data["extra_data"]["time_budget"] = budget
    write_json(data, out / "results.json")
    print(f"{data['score']}/{sum(maxima.values())} points; wrote {out / 'results.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m grader gradescope", description=__doc__.splitlines()[0].strip("`"))
    p.add_argument("outdir", nargs="?", type=Path, metavar="OUTDIR", help="where to write autograder.zip")
    p.add_argument("--visibility", choices=VISIBILITY, default="visible",
                   help="when students see the tests (Gradescope's visibility; default: visible)")
    p.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help=f"seconds of grading per submission, after which the checks left are reported as not run "
                        f"(default {TIME_BUDGET:g}, under Gradescope's default timeout of 10 minutes: raise both "
                        "together); with OUTDIR it is stored in the bundle")
    p.add_argument("--chapter", action="append", default=[], metavar="NAME",
                   help="grade this chapter's exercises only, out of its maximum (repeatable; NAME is the exercise "
                        "notebook's stem, e.g. 02_relu_variants); stored in the bundle; default: the whole course")
    p.add_argument("--run", type=Path, metavar="ROOT",
                   help="inside Gradescope (run_autograder): grade ROOT/submission into ROOT/results/results.json")
    args = p.parse_args(argv)
    if args.time_budget is not None and not 0 < args.time_budget < float("inf"):
        print(f"error: --time-budget {args.time_budget:g}: give a positive number of seconds", file=sys.stderr)
        return 2
    if args.run:
        return run(args.run, args.time_budget)
    if args.outdir is None:
        p.error("give OUTDIR (or --run ROOT inside Gradescope)")
    try:
        assignment = chosen(args.chapter)
    except AssignmentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        target = build(args.outdir, visibility=args.visibility, time_budget=args.time_budget or TIME_BUDGET,
                       assignment=assignment)
    except SystemExit as exc:  # one line, said before anything is written
        print(exc, file=sys.stderr)
        return 2
    print(f"wrote {target} ({assignment.describe()}): upload it as the assignment's autograder (Configure Autograder > Zip file upload)")
    return 0
