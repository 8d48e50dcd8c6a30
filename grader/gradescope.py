"""``python -m grader gradescope OUTDIR``: Gradescope's autograder bundle, ``OUTDIR/autograder.zip``.

The zip follows Gradescope's autograder specification: ``setup.sh`` (run once, as root, when
Gradescope builds the image: a virtual environment with CPU torch and pytest, pinned as the course
pins them) and ``run_autograder`` (run for every submission, in ``/autograder``), plus this grader's
own source, so the autograder grades with exactly the grader that built it and needs no access to
the course repository. ``run_autograder`` calls ``python -m grader gradescope --run ROOT``: it
grades every .ipynb and .py file under ``ROOT/submission`` (the rules of
:mod:`grader.batch`: no hidden files, no symbolic links) and writes ``ROOT/results/results.json``
with the total ``score``, an ``output`` in Markdown (``output_format: "md"``) and one test per
activation (``name``, ``number``, ``score``, ``max_score``, ``status``, ``output``, ``visibility``).
``ROOT`` is ``/autograder`` on Gradescope; ``$AUTOGRADER_ROOT`` moves it (local tests).
"""
from __future__ import annotations

import argparse
import json
import time
import zipfile
from pathlib import Path

from . import __version__, batch, gradebook
from .catalog import BY_NAME, CHAPTER_NUMBERS
from .launch import ROOT

VISIBILITY = ("visible", "hidden", "after_due_date", "after_published")
PACKAGE = Path(__file__).resolve().parent


def setup_sh(versions: dict[str, str]) -> str:
    return f"""\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image.
set -euo pipefail
apt-get install -y python3 python3-venv python3-pip
python3 -m venv /autograder/venv
/autograder/venv/bin/python -m pip install --upgrade pip
# CPU torch from PyTorch's CPU index: PyPI's torch pulls a multi-GB CUDA build
/autograder/venv/bin/python -m pip install --index-url https://download.pytorch.org/whl/cpu torch=={versions['torch']}
/autograder/venv/bin/python -m pip install pytest=={versions['pytest']}
"""


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


def build(outdir: Path, root: Path = ROOT, visibility: str = "visible") -> Path:
    """Write ``outdir/autograder.zip``; returns its path."""
    from .classroom import pins

    versions = pins(root)
    outdir.mkdir(parents=True, exist_ok=True)
    target = outdir / "autograder.zip"
    config = json.dumps({"visibility": visibility}) + "\n"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        _add(z, "setup.sh", setup_sh(versions), executable=True)
        _add(z, "run_autograder", RUN_AUTOGRADER, executable=True)
        _add(z, "grader.json", config)
        for path in sorted(PACKAGE.glob("*.py")):
            _add(z, f"grader/{path.name}", path.read_text(encoding="utf-8"))
    return target


def _add(z: zipfile.ZipFile, name: str, text: str, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, text)


# --- inside Gradescope ---------------------------------------------------------------------------

def _test_output(exercise: dict | None, source: str, name: str) -> str:
    if exercise is None:
        names = ", ".join(f"`{n}`" for n in BY_NAME[name].names)
        return f"Not defined in the submission (expected {names})."
    failed = [c for c in exercise["checks"] if c["status"] == "failed"]
    lines = [f"From `{source}`."]
    if not failed:
        lines.append(f"All {exercise['max_score']} checks passed.")
    lines += [f"- **{c['name']}**: {c['message']}" for c in failed]
    notes = [n for c in exercise["checks"] for n in c.get("notes", [])][:5]
    lines += [f"- note: {n}" for n in notes]
    return "\n".join(lines)


def results(submissions: list[dict], files: list[dict], maxima: dict[str, int], visibility: str,
            elapsed: float) -> dict:
    """Gradescope's results.json for one submission's graded files."""
    merged = gradebook.merge(submissions, maxima)
    record = gradebook.student_record("", files, submissions, maxima,
                                      "" if files else "no .ipynb or .py file in the submission")
    by_name = {e["name"]: e for e in record["exercises"]}
    tests, counters = [], {}
    for name, top in maxima.items():
        chapter = CHAPTER_NUMBERS[BY_NAME[name].chapter]
        counters[chapter] = counters.get(chapter, 0) + 1
        ex = by_name.get(name)
        got = gradebook.score(ex, maxima) if ex else 0
        tests.append({
            "name": name,
            "number": f"{chapter}.{counters[chapter]}",
            "score": got,
            "max_score": top,
            "status": "passed" if got == top else "failed",
            "output": _test_output(ex, merged.best[name][1] if ex else "", name),
            "output_format": "md",
            "tags": [BY_NAME[name].chapter],
            "visibility": visibility,
        })
    output = [f"**{record['score']}/{record['max_score']} points** (one per check; CUDA checks are not run "
              "on Gradescope)."]
    if record["error"]:
        output.append(f"**Could not grade:** {record['error']}")
    if record["notes"]:
        output.append("\n".join(f"- note: {n}" for n in record["notes"][:20]))
    return {
        "score": record["score"],
        "execution_time": round(elapsed),
        "output": "\n\n".join(output),
        "output_format": "md",
        "test_output_format": "md",
        "test_name_format": "text",
        "visibility": visibility,
        "stdout_visibility": "hidden",
        "extra_data": {"grader_version": __version__, "files": files},
        "tests": tests,
    }


def run(root: Path) -> int:
    """Grade ``root/submission`` into ``root/results/results.json``. The exit status is 0 whenever
    results.json was written: a submission that cannot be graded scores 0 with the reason."""
    from . import cli
    from .report import as_json, write_json

    start = time.monotonic()
    config = {}
    try:
        config = json.loads((root / "source" / "grader.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    visibility = config.get("visibility") if config.get("visibility") in VISIBILITY else "visible"
    submission, out = root / "submission", root / "results"
    out.mkdir(parents=True, exist_ok=True)
    student = batch.Student("submission")
    if submission.is_dir():
        batch.collect(submission, submission, student)
    maxima = gradebook.max_scores("cpu")
    reports = [cli.grade(str(p), "cpu", read_only=(out.resolve(),)) for p in student.files[: batch.MAX_FILES]]
    submissions = as_json(reports, "cpu")["submissions"]
    for sub, path in zip(submissions, student.files):
        sub["path"] = path.relative_to(submission).as_posix()
    files = [{"path": s["path"], "sha256": s["sha256"]} for s in submissions]
    data = results(submissions, files, maxima, visibility, time.monotonic() - start)
    write_json(data, out / "results.json")
    print(f"{data['score']}/{sum(maxima.values())} points; wrote {out / 'results.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m grader gradescope", description=__doc__.splitlines()[0].strip("`"))
    p.add_argument("outdir", nargs="?", type=Path, metavar="OUTDIR", help="where to write autograder.zip")
    p.add_argument("--visibility", choices=VISIBILITY, default="visible",
                   help="when students see the tests (Gradescope's visibility; default: visible)")
    p.add_argument("--run", type=Path, metavar="ROOT",
                   help="inside Gradescope (run_autograder): grade ROOT/submission into ROOT/results/results.json")
    args = p.parse_args(argv)
    if args.run:
        return run(args.run)
    if args.outdir is None:
        p.error("give OUTDIR (or --run ROOT inside Gradescope)")
    target = build(args.outdir, visibility=args.visibility)
    print(f"wrote {target}: upload it as the assignment's autograder (Configure Autograder > Zip file upload)")
    return 0
