"""`python -m grader classroom`: the student-facing template repository, its own copy of the grader
and its GitHub Actions feedback workflow (no GitHub Classroom, retired 2026-08-28, and no reporter
action), whose `run:` steps are run here in order, as a runner would, with a fake
GITHUB_STEP_SUMMARY, in a fresh virtual environment that has torch and the grader's dependencies
(through a .pth file naming this environment's site-packages, where the editable install of the
grader is not active) but not the grader, and whose pip cannot reach an index: the template must
grade with what it holds.

What a local run cannot check: the `uses:` actions themselves (checkout, setup-python's pip cache,
upload-artifact) and the torch line of the install step, which needs PyTorch's index. actionlint
checks the workflow's syntax, expressions and the actions' inputs; it checks the `run:` scripts only
where shellcheck is installed.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from grader import __version__
from grader.commands import classroom
from grader.report import gradebook
from grader.catalog import ACTIVATIONS, by_chapter
from grader.report.escape import markdown_text
from grader.spec.assignment import assignment
from grader.checks.torch_checks import checks_for
from grader.authoring.exercises import BEGIN, END
from grader.authoring.launch import TAG, repository
from conftest import FAKE_COLAB, actionlint, full_marks, offline_env, solution_lines

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ".github/workflows/feedback.yml"
GRADING = ("torch", "numpy", "pytest", "mlx")  # what grader/*.py import while grading


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("template")
    r = subprocess.run([sys.executable, "-m", "grader", "classroom", str(out), "--ref", "v-test"],
                       capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return out


def lines(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":
        text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"])
    return {line.strip() for line in text.splitlines() if line.strip()}


def head() -> str:
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_template_holds_exercises_the_grader_and_no_solution(template: Path) -> None:
    files = sorted(p.relative_to(template).as_posix() for p in template.rglob("*") if p.is_file())
    exercises = [f"exercises/{p.name}" for p in (ROOT / "exercises").glob("*.ipynb")]
    package = [f"grader/{p.relative_to(ROOT / 'grader').as_posix()}" for p in (ROOT / "grader").rglob("*.py")]
    assert len(package) > 30
    assert files == sorted([WORKFLOW, ".gitignore", "README.md", "requirements.txt", *exercises, *package])
    for name in package:  # the grader that built the template, byte for byte
        assert (template / name).read_bytes() == (ROOT / name).read_bytes(), name
    secret = solution_lines()
    assert len(secret) > 100
    solution_hashes = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (ROOT / "solutions").iterdir()}
    for path in template.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            if path.relative_to(template).parts[0] != "grader":  # the exercise generator's source names the markers
                assert BEGIN not in text and END not in text, path
            assert hashlib.sha256(path.read_bytes()).hexdigest() not in solution_hashes, path
            found = lines(path) & secret
            if path.relative_to(template).parts[0] == "grader":  # the Gradescope bundle's rule: short lines such as
                # `return out` are the grader's too; references.py: see book/guide_threat_model.md
                found = set() if path.name == "references.py" else {l for l in found if len(l) > 12}
            assert not found, (path, sorted(found)[:3])


def course_pins() -> list[str]:
    return [l.strip() for l in (ROOT / "requirements.txt").read_text().splitlines()
            if re.match(r"(torch|numpy|pytest|mlx)(\[\w+\])?==", l.strip())]


def test_template_needs_no_access_to_the_course_repository(template: Path) -> None:
    url, _ = repository()
    req = (template / "requirements.txt").read_text()
    wf_text = (template / WORKFLOW).read_text()
    for text in (req, wf_text):
        assert "git+" not in text and url not in text and "github.com/activations" not in text
    # exactly the course's pins of what the grader imports while grading; the grader itself is not
    # a requirement (no line names it)
    pinned = [l for l in req.splitlines() if l.strip() and not l.startswith("#")]
    assert pinned == course_pins() and {re.split(r"[\[=]", l)[0] for l in pinned} == set(GRADING)
    assert f"activations-course-grader {__version__}, course commit {head()}" in req.splitlines()[0]
    torch_pin = next(l for l in pinned if l.startswith("torch=="))
    assert f"#   python -m pip install --index-url https://download.pytorch.org/whl/cpu {torch_pin}" in req
    assert f"--index-url https://download.pytorch.org/whl/cpu {torch_pin}" in (template / "README.md").read_text()
    assert f"course commit {head()}" in (template / "README.md").read_text()
    assert f"course commit {head()}" in wf_text.splitlines()[1]


def test_workflow_gives_feedback_with_least_permissions_and_nothing_of_github_classroom(template: Path) -> None:
    torch_pin = next(l for l in course_pins() if l.startswith("torch=="))
    assert sorted(p.name for p in (template / ".github/workflows").iterdir()) == ["feedback.yml"]
    text = (template / WORKFLOW).read_text()
    assert "classroom-resources" not in text and "autograding" not in text.lower()
    wf = yaml.safe_load(text)
    # PyYAML reads the key `on` as True (YAML 1.1); GitHub reads it as "on"
    assert set(wf) == {"name", True, "permissions", "defaults", "jobs"}
    assert set(wf[True]) == {"push", "workflow_dispatch"}
    assert wf["permissions"] == {"contents": "read"}  # checkout; nothing else uses the token
    assert list(wf["jobs"]) == ["feedback"]
    job = wf["jobs"]["feedback"]
    assert job["runs-on"] == "ubuntu-latest" and isinstance(job["timeout-minutes"], int)
    steps = {s.get("name") or s["uses"].split("@")[0]: s for s in job["steps"]}
    assert steps["actions/setup-python"]["with"] == {"python-version": "3.11", "cache": "pip",
                                                     "cache-dependency-path": "requirements.txt"}
    install = steps["Install torch and the grader's dependencies"]["run"].splitlines()
    assert install == [f"python -m pip install --index-url https://download.pytorch.org/whl/cpu {torch_pin}",
                       "python -m pip install -r requirements.txt"]
    grade = steps["Grade the exercises"]
    assert "--json grader-report.json --html feedback.html" in grade["run"]
    assert "python -m grader classroom --report grader-report.json" in grade["run"]
    upload = steps["Upload the feedback"]
    assert upload["if"] == "${{ !cancelled() }}" and upload["with"]["name"] == "feedback"
    assert upload["with"]["path"].split() == ["feedback.html", "grader-report.json"]
    assert "{{{{" not in text


def test_template_notebooks_install_the_same_grader_in_colab(template: Path) -> None:
    url, branch = repository()
    for path in sorted((ROOT / "exercises").glob("*.ipynb")):
        ours = json.loads((template / "exercises" / path.name).read_text())["cells"]
        course = json.loads(path.read_text())["cells"]
        setup = [c for c in ours if TAG in c["metadata"].get("tags", [])]
        assert len(setup) == 1 and f'"git+{url}@v-test"' in setup[0]["source"], path.name
        first_code = next(c for c in ours if c["cell_type"] == "code")
        assert first_code is setup[0], path.name
        # every other cell is the course's; the course's exercise keeps its own cell (its branch)
        assert [c for c in ours if c is not setup[0]] == [c for c in course if TAG not in c["metadata"].get("tags", [])]
        assert f"git+{url}@{branch}" in "".join(next(c for c in course if c["cell_type"] == "code")["source"])
    readme = (template / "README.md").read_text()
    assert "upload its `grader` folder" in readme and "private course repository" in readme


def test_refuses_exercises_with_a_solution_region(tmp_path: Path) -> None:
    for name in ("_config.yml", "requirements.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "exercises").mkdir()
    (tmp_path / "exercises" / "01_standard.ipynb").write_text(f'{{"cells": ["{BEGIN}"]}}')
    with pytest.raises(SystemExit, match="contains a solution region"):
        classroom.build(tmp_path / "out", root=tmp_path, ref="main")
    assert not (tmp_path / "out" / "exercises").exists()


def test_refuses_a_course_that_does_not_pin_numpy(tmp_path: Path) -> None:
    """numpy is not a dependency of torch, yet the grader needs it: without it a solved chapter
    loses most of its points ('Numpy is not available'), so the template must pin it."""
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "requirements.txt").write_text("torch==2.13.0\npytest==9.2.0\n")
    with pytest.raises(SystemExit, match="does not pin numpy"):
        classroom.build(tmp_path / "out", root=tmp_path)


# --- a fresh environment without the grader, offline (`fresh`, `offline_env`: tests/conftest.py) ----

def run_workflow(repo: Path, tmp_path: Path, venv: Path) -> dict:
    """The workflow's `run:` steps in order, as a runner would run them (bash -eo pipefail, see
    `defaults.run.shell`), with `python` the fresh environment's and pip offline; returns the
    steps' exit statuses, the summary and the log."""
    wf = yaml.safe_load((repo / WORKFLOW).read_text())
    assert wf["defaults"]["run"]["shell"] == "bash"
    tmp_path.mkdir(parents=True)
    summary = tmp_path / "summary.md"
    summary.touch()
    env = offline_env(venv, GITHUB_STEP_SUMMARY=str(summary), CI="true")
    statuses: dict[str, int] = {}
    logs: list[str] = []
    failed = False
    for step in wf["jobs"]["feedback"]["steps"]:
        name = step.get("name") or step["uses"]
        if failed and "!cancelled()" not in step.get("if", ""):
            continue
        if "run" in step:
            script = step["run"].splitlines()
            torch_line = [l for l in script if "download.pytorch.org" in l]
            assert len(torch_line) <= 1, script  # the one line that needs PyTorch's index
            (tmp_path / "step.sh").write_text("\n".join(l for l in script if l not in torch_line) + "\n")
            r = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(tmp_path / "step.sh")],
                               cwd=repo, env=env, capture_output=True, text=True, timeout=600)
            statuses[step.get("id", name)] = r.returncode
            logs.append(r.stdout + r.stderr)
            failed |= r.returncode != 0
        elif step["uses"].startswith("actions/upload-artifact"):
            assert all((repo / p).is_file() for p in step["with"]["path"].split()), logs
    return {"status": statuses, "summary": summary.read_text(), "log": "\n".join(logs)}


INSTALL = "Install torch and the grader's dependencies"
FULL = {a.name: len(checks_for(a, ["cpu"])) for a in ACTIVATIONS}  # one point per check on a CPU
# the MLX chapter's exercises have points of their own (none where MLX cannot run)
# the MLX and 8-bit chapters' exercises have points of their own
TOTAL = sum(full_marks().values())


def student_repo(template: Path, tmp_path: Path, keep: tuple[str, ...]) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(template, repo)
    for nb in (repo / "exercises").glob("*.ipynb"):  # keep the run short
        if nb.name not in keep:
            nb.unlink()
    return repo


GRADE = "Grade the exercises"


def row(summary: str, name: str) -> list[str]:
    """The summary table's cells of one exercise."""
    line = next(l for l in summary.splitlines() if l.startswith(f"| {name} |"))
    return [c.strip() for c in line.strip("|").split(" | ")]


def test_workflow_grades_a_solved_a_blank_and_a_broken_notebook_offline_without_the_grader(
        template: Path, tmp_path: Path, fresh: Path) -> None:
    repo = student_repo(template, tmp_path, ("01_standard.ipynb", "07_gating.ipynb"))
    shutil.copy(ROOT / "solutions" / "07_gating.ipynb", repo / "exercises" / "07_gating.ipynb")  # solved
    # 01_standard.ipynb stays the blank exercise
    solved = sum(FULL[a.name] for a in by_chapter("gating"))

    ok = run_workflow(repo, tmp_path / "ok", fresh)
    assert ok["status"] == {INSTALL: 0, GRADE: 0}, ok["log"]  # short of marks is not a failure
    assert "Requirement already satisfied: pytest==" in ok["log"]  # pip ran, offline, and found everything
    assert f"grader {__version__} from {repo / 'grader' / '__init__.py'}" in ok["log"]  # the template's copy
    assert f"::notice title=Points::{solved}/{TOTAL}" in ok["log"]
    text = ok["summary"]
    assert f"## Grader: {solved}/{TOTAL} points" in text
    assert row(text, "GLU") == ["GLU", "exercises\\/07\\_gating\\.ipynb", f"{FULL['GLU']}/{FULL['GLU']}",
                                "all checks passed"]
    assert row(text, "ReLU")[2:] == [f"0/{FULL['ReLU']}",
                                     "api\\: relu\\(\\)\\: not implemented \\(raises NotImplementedError\\)"]
    assert row(text, "LeakyReLU") == ["LeakyReLU", "—", f"0/{FULL['LeakyReLU']}", "not defined in any notebook"]
    assert json.loads((repo / "grader-report.json").read_text())["submissions"]
    assert "GLU" in (repo / "feedback.html").read_text()  # the feedback page, uploaded with the report

    broken = tmp_path / "broken"
    shutil.copytree(repo, broken)
    (broken / "exercises" / "01_standard.ipynb").write_text('{"cells": [')  # say, after a bad merge
    bad = run_workflow(broken, tmp_path / "bad", fresh)
    assert bad["status"] == {INSTALL: 0, GRADE: 2}, bad["log"]  # the grader could not grade: the job fails
    assert f"## Grader: {solved}/{TOTAL} points" in bad["summary"]
    assert ("**Could not grade:** exercises\\/01\\_standard\\.ipynb\\: not a notebook \\(invalid JSON at line 1\\)"
            in bad["summary"])
    assert "::error title=Cannot grade::exercises/01_standard.ipynb: not a notebook" in bad["log"]


def test_a_wrong_backward_loses_exactly_its_failing_checks(template: Path, tmp_path: Path, fresh: Path) -> None:
    repo = student_repo(template, tmp_path, ("07_gating.ipynb",))
    nb = json.loads((ROOT / "solutions" / "07_gating.ipynb").read_text())
    right = "grad = torch.cat([g * s, g * a * s * (1 - s)], ctx.dim)"
    cell = next(c for c in nb["cells"] if right in "".join(c["source"]))
    cell["source"] = "".join(cell["source"]).replace(right, "grad = torch.cat([g * s, g * a * s], ctx.dim)")
    (repo / "exercises" / "07_gating.ipynb").write_text(json.dumps(nb))

    run = run_workflow(repo, tmp_path / "run", fresh)
    assert run["status"] == {INSTALL: 0, GRADE: 0}, run["log"]
    # the grader's own report says which of GLU's checks failed: the summary's points are the others
    graded = json.loads((repo / "grader-report.json").read_text())["submissions"][0]["exercises"]
    failing = [c for e in graded if e["name"] == "GLU" for c in e["checks"] if c["status"] == "failed"]
    assert 0 < len(failing) < FULL["GLU"]  # the forward is right: partly wrong, not all wrong
    assert all(c["name"].startswith(("grad", "function")) for c in failing), failing
    assert row(run["summary"], "GLU")[2] == f"{FULL['GLU'] - len(failing)}/{FULL['GLU']}"
    assert row(run["summary"], "GLU")[3].startswith(markdown_text(failing[0]["name"]) + "\\: ")


def test_summary_points_are_the_gradebook_s_and_the_student_s_text_is_escaped(tmp_path: Path) -> None:
    """A file graded out of more checks than the gradebook's maximum counts up to the maximum; a
    message with Markdown in it (a student's output) cannot break the summary's table."""
    some = ["01_standard", "07_gating"]
    maxima = gradebook.max_scores("cpu", assignment(some))
    more = {"name": "GLU", "score": maxima["GLU"], "max_score": maxima["GLU"] + 2, "checks": [
        {"name": "x0", "passed": False, "status": "failed", "message": "| <b>bold</b> [x](http://e) @octocat\n#"},
        *({"name": f"ok{i}", "passed": True, "status": "passed", "message": ""} for i in range(maxima["GLU"]))]}
    report = {"device": "cpu", "assignment": some,
              "submissions": [{"path": "exercises/a|b.ipynb", "error": None, "notes": [], "exercises": [more]}]}
    (tmp_path / "r.json").write_text(json.dumps(report))
    env = dict(os.environ, GITHUB_STEP_SUMMARY=str(tmp_path / "s.md"))
    r = subprocess.run([sys.executable, "-m", "grader", "classroom", "--report", str(tmp_path / "r.json")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    summary = (tmp_path / "s.md").read_text()
    assert f"::notice title=Points::{maxima['GLU']}/{sum(maxima.values())}" in r.stdout
    glu = row(summary, "GLU")
    assert len(glu) == 4 and glu[2] == f"{maxima['GLU']}/{maxima['GLU']}"
    assert "<b>" not in summary and "](" not in summary and "@octocat" not in summary
    assert glu[1] == "exercises\\/a\\|b\\.ipynb"


def test_actionlint_accepts_the_workflow(template: Path) -> None:
    r = actionlint(template / WORKFLOW)
    assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The check above can fail: a misspelt input and an unknown expression are reported."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - uses: actions/setup-python@v6\n        with:\n          pyhton-version: '3.11'\n"
                   "      - run: echo ${{ steps.nothing.outputs.result }}\n")
    r = actionlint(bad)
    assert r.returncode == 1 and "pyhton-version" in r.stdout, r.stdout + r.stderr


# --- the template's set-up cell, run as Jupyter and (faked) Colab would ------------------------

def run_cell(python: Path, cwd: Path, cell: str, after: str, colab: bool, venv: Path) -> subprocess.CompletedProcess:
    (cwd / "cell.py").write_text(cell + "\n" + after)
    args = [str(cwd / "cell.py")]
    if colab:
        (cwd / "colab.py").write_text(FAKE_COLAB)
        args = [str(cwd / "colab.py"), *args]
    return subprocess.run([str(python), *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=offline_env(venv))


AFTER = ("import grader, subprocess, sys\nprint('kernel', grader.__file__)\n"
         "print('grade()', subprocess.run([sys.executable, '-c', 'import grader; print(grader.__file__)'],"
         " capture_output=True, text=True).stdout.strip())\n")


def setup_source(template: Path) -> str:
    cells = json.loads((template / "exercises" / "01_standard.ipynb").read_text())["cells"]
    return next(c for c in cells if TAG in c["metadata"].get("tags", []))["source"]


def test_setup_cell_finds_the_template_s_grader_in_jupyter(template: Path, tmp_path: Path, fresh: Path) -> None:
    """A kernel runs in exercises/: the cell puts the repository's grader/ on the kernel's path and
    on grade()'s (a `python -m grader` subprocess); without the cell neither finds a grader."""
    repo = tmp_path / "repo"
    shutil.copytree(template, repo)
    python = fresh / "bin" / "python"
    r = run_cell(python, repo / "exercises", setup_source(template), AFTER, False, fresh)
    assert r.returncode == 0, r.stderr
    mine = str(repo / "grader" / "__init__.py")
    assert f"kernel {mine}" in r.stdout and f"grade() {mine}" in r.stdout, r.stdout
    bare = run_cell(python, repo / "exercises", "", AFTER, False, fresh)
    assert "No module named 'grader'" in bare.stderr


def test_setup_cell_in_colab_uses_an_uploaded_grader(template: Path, tmp_path: Path, fresh: Path) -> None:
    content = tmp_path / "content"  # Colab's /content, where the Files pane uploads
    shutil.copytree(template / "grader", content / "grader")
    r = run_cell(fresh / "bin" / "python", content, setup_source(template), AFTER, True, fresh)
    assert r.returncode == 0, r.stderr  # pip is offline here: it was not needed
    assert f"kernel {content / 'grader' / '__init__.py'}" in r.stdout


def test_setup_cell_in_colab_says_what_to_do_when_the_course_is_out_of_reach(
        template: Path, tmp_path: Path, fresh: Path) -> None:
    url, _ = repository()
    cell = setup_source(template)
    assert f'"git+{url}@v-test"' in cell  # the ref the template was built from
    content = tmp_path / "content"
    content.mkdir()
    # a course that cannot be cloned (private, or the commit never pushed)
    r = run_cell(fresh / "bin" / "python", content, cell.replace(f"git+{url}", f"git+file://{tmp_path}/private"),
                 "", True, fresh)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "upload your repository's grader/ folder into Colab's Files" in r.stderr.splitlines()[-1]


def test_a_template_of_one_chapter_hands_out_and_grades_that_chapter(tmp_path: Path, fresh: Path) -> None:
    out = tmp_path / "template"
    r = subprocess.run([sys.executable, "-m", "grader", "classroom", str(out), "--ref", "v-test", "--chapter",
                        "07_gating"], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (out / "exercises").iterdir()) == ["07_gating.ipynb"]
    assert "python -m grader exercises/07_gating.ipynb --chapter 07_gating" in (out / "README.md").read_text()
    repo = student_repo(out, tmp_path, ("07_gating.ipynb",))
    shutil.copy(ROOT / "solutions" / "07_gating.ipynb", repo / "exercises" / "07_gating.ipynb")
    # a notebook of another chapter the student added is not graded, and costs nothing
    shutil.copy(ROOT / "solutions" / "01_standard.ipynb", repo / "exercises" / "01_standard.ipynb")
    gating = sum(FULL[a.name] for a in by_chapter("gating"))
    done = run_workflow(repo, tmp_path / "run", fresh)
    assert done["status"] == {INSTALL: 0, GRADE: 0}, done["log"]
    # the chapter's points, out of the chapter's maximum: a row per activation of the chapter alone
    assert f"## Grader: {gating}/{gating} points" in done["summary"]
    rows = [l.split(" | ")[0].lstrip("| ") for l in done["summary"].splitlines() if l.startswith("| ")][1:]
    assert sorted(rows) == sorted(a.name for a in by_chapter("gating"))
    report = json.loads((repo / "grader-report.json").read_text())
    assert report["assignment"] == ["07_gating"]
    standard = next(s for s in report["submissions"] if s["path"].endswith("01_standard.ipynb"))
    assert standard["exercises"] == [] and standard["other_chapters"] == ["01_standard"]
