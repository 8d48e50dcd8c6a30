"""`python -m grader classroom50`: the assignment's template and the teacher's bundle, and the
generated `autograder.py` run exactly as Classroom 50's runner runs it (foundation50/classroom50,
cli/gh-teacher/skeleton/dotgithub/scripts/runner.py, `run_entrypoint`): `[sys.executable,
"autograder.py"]` with the student's checkout as the working folder and the runner's environment,
its `result.json` validated against Classroom 50's published schema (tests/data) and the runner's
cross-field rules (`validate_result`).

The runner's Python here is the system's, without torch or the grader; `ACTIVATIONS_GRADER_PYTHON`
(a self-hosted runner's prepared interpreter) stands in for the install from PyPI and PyTorch's
index, which needs the network: a fresh environment that has the grader's dependencies but not the
grader (tests/test_classroom.py), so only the bundle's grader can grade.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import pytest

from grader.catalog import ACTIVATIONS
from grader.checks.torch_checks import checks_for
from grader.commands import classroom50 as command
from grader.report import classroom50
from grader.report.escape import markdown_text
from conftest import solution_lines

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "tests" / "data" / "classroom50-result-v1.schema.json").read_text())
CLASSROOM, SLUG = "fall26", "act-ch1"
CHAPTER = "01_standard"
FULL = {a.name: len(checks_for(a, ["cpu"])) for a in ACTIVATIONS if a.chapter == "standard"}
SYSTEM_PYTHON = str(Path(sys.base_prefix) / "bin" / "python3")  # the runner's: no torch, no grader


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("c50") / "out"
    r = subprocess.run([sys.executable, "-m", "grader", "classroom50", str(out), "--classroom", CLASSROOM,
                        "--assignment", SLUG, "--chapter", CHAPTER, "--ref", "v-test"],
                       capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Classroom 50's 10 MB" in r.stdout
    # marks the bundle's copy of the grader, to tell it from any other
    init = bundle_of(out) / "grader" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', '__version__ = "bundled-'))
    return out


def bundle_of(out: Path) -> Path:
    return out / "classroom50" / CLASSROOM / "autograders" / SLUG


def runner_env(bundle: Path, python: Path | str, **extra: str) -> dict[str, str]:
    """What the runner's grade job gives an autograder (runner.py `run_entrypoint`, the workflow's env)."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
            "CLASSROOM": CLASSROOM, "ASSIGNMENT": SLUG, "SUBMISSION_TAG": "submit/2026-12-20T10-00-00Z-abc1234",
            "USERNAME": "alice", "OWNER": "alice", "ASSIGNMENT_TYPE": "individual",
            "COMMIT_URL": "https://github.com/org/fall26-act-ch1-alice/commit/abc1234",
            "RELEASE_URL": "https://github.com/org/fall26-act-ch1-alice/releases/tag/submit%2F2026",
            "REVIEW_URL": "https://github.com/org/fall26-act-ch1-alice/compare/000...abc1234",
            "CLASSROOM50_BUNDLE_DIR": str(bundle), "PAGES_BASE_URL": "https://org.github.io/classroom50",
            "ACTIVATIONS_GRADER_PYTHON": str(python), **extra}


def run_autograder(bundle: Path, checkout: Path, python: Path | str, user: int | None = None,
                   **extra: str) -> tuple[subprocess.CompletedProcess, dict, str]:
    """As the runner does it: `[sys.executable, entrypoint]`, cwd the checkout; returns the run,
    result.json and release-body.md."""
    cmd = [SYSTEM_PYTHON, str(bundle / "autograder.py")]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--", *cmd]
    r = subprocess.run(cmd, cwd=checkout, env=runner_env(bundle, python, **extra), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr  # non-zero: the runner's error, no score published
    result = json.loads((checkout / "result.json").read_text())
    validate(result)
    return r, result, (checkout / "release-body.md").read_text()


def validate(result: dict) -> None:
    """Classroom 50's schema, and the runner's rules it cannot express (runner.py `validate_result`)."""
    jsonschema.validate(result, SCHEMA)
    assert (result["classroom"], result["assignment"], result["owner"]) == (CLASSROOM, SLUG, "alice")
    assert result["score"] <= result["max-score"]
    assert all(t["score"] <= t["max-score"] for t in result["tests"])
    assert result["score"] == sum(t["score"] for t in result["tests"])
    assert result["max-score"] == sum(t["max-score"] for t in result["tests"])


def checkout_of(built: Path, where: Path, solved: bool) -> Path:
    checkout = where / "fall26-act-ch1-alice"
    shutil.copytree(built / "template", checkout)
    if solved:
        shutil.copy(ROOT / "solutions" / f"{CHAPTER}.ipynb", checkout / "exercises" / f"{CHAPTER}.ipynb")
    return checkout


def test_template_and_bundle(built: Path) -> None:
    template, bundle = built / "template", bundle_of(built)
    files = sorted(p.relative_to(template).as_posix() for p in template.rglob("*") if p.is_file())
    assert [f for f in files if not f.startswith("grader/")] == [
        ".gitignore", "README.md", f"exercises/{CHAPTER}.ipynb", "requirements.txt"]
    assert not (template / ".github").exists()  # accepting installs Classroom 50's autograde.yaml
    assert (bundle / "autograder.py").read_bytes() == (ROOT / "grader/authoring/classroom50_autograder.py").read_bytes()
    settings = json.loads((bundle / "classroom50.json").read_text())
    assert settings["chapters"] == [CHAPTER] and settings["max_scores"] == FULL
    assert settings["pythons"] == ["3.11", "3.12", "3.13"] and settings["seconds"] < 15 * 60
    assert json.loads((built / "runtime.json").read_text()) == {"runs-on": "ubuntu-latest", "python": "3.11"}
    pinned = (bundle / "requirements.txt").read_text().splitlines()
    assert any(l.startswith("torch==") for l in pinned) and any(l.startswith("mlx[cpu]==") for l in pinned)
    # the bundle as publish-pages.yaml packs it (`tar -czf SLUG.tar.gz -C autograders SLUG`): within
    # the runner's 10 MB (MAX_FETCH_BYTES), and what the command measured, give or take tar's headers
    packed = built / f"{SLUG}.tar.gz"
    subprocess.run(["tar", "-czf", str(packed), "-C", str(bundle.parent), SLUG], check=True, timeout=60)
    assert packed.stat().st_size < 10 * 2**20
    assert abs(packed.stat().st_size - command.bundle_size(bundle)) < 0.05 * packed.stat().st_size
    # no solution anywhere (the grader's float64 references: book/guide_threat_model.md)
    secret = {l for l in solution_lines() if len(l) > 12}
    for path in built.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".ipynb", ".md", ".txt", ".json") and path.name != "references.py":
            text = path.read_text()
            if path.suffix == ".ipynb":
                text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"])
            assert not {l.strip() for l in text.splitlines()} & secret, path


def test_refuses_bad_names_and_a_full_folder(tmp_path: Path, cli) -> None:
    for args, expected in [(["--classroom", "Fall 26", "--assignment", SLUG], "--classroom 'Fall 26'"),
                           (["--classroom", CLASSROOM, "--assignment", "x"], "--assignment 'x'"),
                           (["--classroom", CLASSROOM, "--assignment", SLUG, "--chapter", "99_x"], "not a chapter")]:
        r = cli("classroom50", str(tmp_path / "o"), *args, cwd=ROOT)  # in this process
        assert r.returncode == 2 and expected in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not (tmp_path / "o").exists()


PLANTED = "import pathlib; pathlib.Path({marker!r}).write_text(__name__); raise SystemExit(7)\n"


def test_solved_chapter_scores_full_marks_and_nothing_of_the_checkout_is_imported(
        built: Path, tmp_path: Path, fresh: Path) -> None:  # noqa: F811
    checkout = checkout_of(built, tmp_path, solved=True)
    marker = tmp_path / "imported"
    for name in ("grader/__init__.py", "torch.py", "json.py", "sitecustomize.py", "venv.py", "pip/__init__.py"):
        (checkout / name).parent.mkdir(exist_ok=True)
        (checkout / name).write_text(PLANTED.format(marker=str(marker)))
    r, result, body = run_autograder(bundle_of(built), checkout, fresh / "bin" / "python")
    assert not marker.exists(), marker.read_text()  # no planted module ran, in any process
    assert "grader bundled-0.1.0 from " in r.stdout  # the bundle's copy graded
    assert result["score"] == result["max-score"] == sum(FULL.values())
    assert [t["test-name"] for t in result["tests"]] == list(FULL)
    assert all(t["passed"] and t["chapter"] == CHAPTER and "failed-checks" not in t and "note" not in t
               for t in result["tests"])
    assert body.startswith(f"### Activation functions: {sum(FULL.values())}/{sum(FULL.values())} points")
    assert f"| ReLU | {FULL['ReLU']}/{FULL['ReLU']} | exercises\\/01\\_standard\\.ipynb | all checks passed |" in body


def test_untouched_checkout_is_a_valid_zero(built: Path, tmp_path: Path, fresh: Path) -> None:  # noqa: F811
    checkout = checkout_of(built, tmp_path, solved=False)
    _, result, body = run_autograder(bundle_of(built), checkout, fresh / "bin" / "python")
    assert result["score"] == 0 and result["max-score"] == sum(FULL.values())
    for t in result["tests"]:
        assert not t["passed"] and t["failed-count"] == FULL[t["test-name"]]
        assert "not implemented" in t["failed-checks"][0]["message"]
    assert "| Sigmoid | 0/17 |" in body and "not implemented" in body


def test_no_work_at_all_is_a_valid_zero(built: Path, tmp_path: Path, fresh: Path) -> None:  # noqa: F811
    checkout = checkout_of(built, tmp_path, solved=False)
    shutil.rmtree(checkout / "exercises")
    _, result, body = run_autograder(bundle_of(built), checkout, fresh / "bin" / "python")
    assert result["score"] == 0 and result["max-score"] == sum(FULL.values())
    assert "**Not graded:** no notebook in exercises\\/" in body


FORGER = r'''
import glob, json, os, pathlib
def relu(input):  # something to grade: a file that defines nothing is not run
    return input
forged = {{"schema": "classroom50/result/v1", "score": 9999, "max-score": 9999, "tests": []}}
for target in [{checkout!r} + "/result.json", {checkout!r} + "/release-body.md", {bundle!r} + "/autograder.py",
               *glob.glob("/tmp/activations-grader-*/out/report.json"),
               *glob.glob("/tmp/activations-grader-*/source/grader/report/classroom50.py")]:
    try:
        pathlib.Path(target).write_text(json.dumps(forged))
        print("WROTE", target)
    except OSError:
        pass
raise RuntimeError("the forger ran")  # a note in the release body: the forger did run
'''


@pytest.mark.skipif(os.geteuid() != 0, reason="the isolated path needs root (the runner's sudo)")
@pytest.mark.parametrize("unprivileged", [False, True], ids=["namespaces", "another-user"])
def test_student_code_cannot_write_the_result_or_the_bundle(
        built: Path, tmp_path: Path, fresh: Path, unprivileged: bool) -> None:  # noqa: F811
    """As root (GitHub's runner after `sudo -n`), the student's code runs in namespaces that see the
    checkout and the bundle empty, or, without namespaces, as another user who cannot write them."""
    bundle = tmp_path / "bundle"
    shutil.copytree(bundle_of(built), bundle)
    before = hashlib.sha256((bundle / "autograder.py").read_bytes()).hexdigest()
    checkout = checkout_of(built, tmp_path, solved=True)
    (checkout / "exercises" / "forger.py").write_text(FORGER.format(checkout=str(checkout), bundle=str(bundle)))
    extra = {"ACTIVATIONS_GRADER_UNPRIVILEGED": "1"} if unprivileged else {}
    # the other user must reach the interpreter: pytest's temporary folders are root's alone (on a
    # runner, the autograder's own environment is in a folder every user can read)
    python = sys.executable if unprivileged else fresh / "bin" / "python"
    _, result, body = run_autograder(bundle, checkout, python, **extra)
    assert result["score"] == result["max-score"] == sum(FULL.values())  # the grader's, not the forger's
    assert hashlib.sha256((bundle / "autograder.py").read_bytes()).hexdigest() == before
    assert "the forger ran" in body


@pytest.fixture
def shared() -> Path:
    """A folder another user can reach (pytest's own temporary folders are root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="c50-test-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def as_user(built: Path, shared: Path, uid: int) -> tuple[Path, Path]:
    bundle = shared / "bundle"
    shutil.copytree(bundle_of(built), bundle)
    checkout = checkout_of(built, shared, solved=True)
    for path in [checkout, *checkout.rglob("*")]:
        os.chown(path, uid, uid)
    return bundle, checkout


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="runs the autograder as another user")
def test_without_root_or_sudo_the_result_says_it_was_not_isolated(built: Path, shared: Path) -> None:
    bundle, checkout = as_user(built, shared, 65534)
    _, result, body = run_autograder(bundle, checkout, sys.executable, user=65534)
    assert result["score"] == sum(FULL.values())
    assert all(t["note"].startswith("graded without isolation") for t in result["tests"])
    assert "> **Note:** graded without isolation" in body


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="runs the autograder as another user")
def test_with_sudo_the_grader_runs_through_it(built: Path, shared: Path) -> None:
    """A stand-in `sudo` that grants nothing (it runs the command as the same user) shows the
    command the autograder hands the real one: `sudo -n -- env ... python -P -s -m grader`, and the
    report read back with `sudo -n cat`."""
    bundle, checkout = as_user(built, shared, 65534)
    bin_dir = shared / "bin"
    bin_dir.mkdir()
    (bin_dir / "sudo").write_text(f'#!/bin/sh\necho "sudo $*" >> {shared}/sudo.log\n'
                                  '[ "$1" = -n ] || exit 1\nshift\n[ "$1" = -- ] && shift\nexec "$@"\n')
    (bin_dir / "sudo").chmod(0o755)
    (shared / "sudo.log").touch()
    (shared / "sudo.log").chmod(0o666)
    _, result, body = run_autograder(bundle, checkout, sys.executable, user=65534,
                                     PATH=f"{bin_dir}:/usr/local/bin:/usr/bin:/bin")
    log = (shared / "sudo.log").read_text().splitlines()
    assert log[0] == "sudo -n true"
    assert log[1].startswith("sudo -n -- env ") and f" {sys.executable} -P -s -m grader exercises/" in log[1]
    assert log[2].startswith("sudo -n -- cat ") and log[2].endswith("/out/report.json")
    assert result["score"] == sum(FULL.values()) and not any("note" in t for t in result["tests"])
    assert "Note:" not in body


def test_unsupported_python_is_a_zero_that_says_which_runtime_to_set(built: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(bundle_of(built), bundle)
    settings = json.loads((bundle / "classroom50.json").read_text())
    (bundle / "classroom50.json").write_text(json.dumps({**settings, "pythons": ["3.99"]}))
    checkout = checkout_of(built, tmp_path, solved=True)
    env = runner_env(bundle, "")
    del env["ACTIVATIONS_GRADER_PYTHON"]  # Classroom 50's default runtime: the autograder installs
    r = subprocess.run([SYSTEM_PYTHON, str(bundle / "autograder.py")], cwd=checkout, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads((checkout / "result.json").read_text())
    validate(result)
    assert result["score"] == 0 and result["max-score"] == sum(FULL.values())
    assert all(markdown_text("set the assignment's runtime.python to 3.99") in t["reason"] for t in result["tests"])
    assert "**Not graded:** the grading job runs Python" in (checkout / "release-body.md").read_text()


def test_a_check_that_cannot_run_in_the_job_is_no_pass(built: Path, tmp_path: Path) -> None:
    """The bundle's maximum stands: an exercise graded out of fewer checks than it was built for
    (MLX missing in the job) is not passed, and says why."""
    settings = json.loads((bundle_of(built) / "classroom50.json").read_text())
    settings["max_scores"]["ReLU"] += 2
    (tmp_path / "c.json").write_text(json.dumps(settings))
    (tmp_path / "r.json").write_text(json.dumps({"submissions": []}))
    env = runner_env(bundle_of(built), "")
    r = subprocess.run([sys.executable, "-m", "grader", "classroom50", "--result", str(tmp_path / "r.json"),
                        "--config", str(tmp_path / "c.json"), "--into", str(tmp_path / "out")],
                       cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    validate(result)
    relu = next(t for t in result["tests"] if t["test-name"] == "ReLU")
    assert relu["max-score"] == FULL["ReLU"] + 2 and not relu["passed"]
    assert relu["reason"].startswith(f"only {FULL['ReLU']} of its {FULL['ReLU'] + 2} checks can run")


def test_release_body_escapes_what_the_student_wrote() -> None:
    e = classroom50.ExerciseTest("ReLU", CHAPTER, 2, 1, source="exercises/a|b.ipynb",
                             failed=[("grad", "| <img src=x onerror=1> [link](http://x) @octocat\n# head")])
    data = classroom50.result(runner_env(Path("/b"), ""), [e])
    validate(data)
    body = classroom50.release_body(data, [e])
    row = next(l for l in body.splitlines() if l.startswith("| ReLU "))
    assert row.count(" | ") == 3  # four cells: no | of the student's splits one
    # literal text: no tag, link, mention or heading of the student's making
    assert "\\<img" in body and all(body[i - 1] == "\\" for i, c in enumerate(body) if c == "<")
    assert "](" not in body and "@octocat" not in body and "\n# head" not in body
    assert markdown_text("a*b_c`d") == "a\\*b\\_c\\`d"
    assert data["tests"][0]["failed-checks"][0]["message"].startswith("\\| \\<img")


def test_the_work_copied_is_exercises_own_files_and_what_is_left_out_is_said(tmp_path: Path) -> None:
    from grader.authoring import classroom50_autograder as autograder

    checkout, into = tmp_path / "checkout", tmp_path / "into"
    (checkout / "exercises" / ".hidden").mkdir(parents=True)
    (checkout / "exercises" / "part").mkdir()
    (checkout / "exercises" / "01_standard.ipynb").write_text("{}")
    (checkout / "exercises" / "part" / "mine.py").write_text("")
    (checkout / "exercises" / ".hidden" / "x.py").write_text("")
    (checkout / "exercises" / "notes.txt").write_text("")
    (checkout / "exercises" / "link.py").symlink_to("/etc/hostname")
    with (checkout / "exercises" / "huge.ipynb").open("wb") as f:
        f.truncate(autograder.MAX_BYTES + 1)
    (checkout / "solver.py").write_text("")  # outside exercises/: not the work
    found, left = autograder.copy_work(checkout, into)
    assert found == ["exercises/01_standard.ipynb", "exercises/part/mine.py"]
    assert left == ["exercises/huge.ipynb (over 20 MB)"]
    assert sorted(p.relative_to(into).as_posix() for p in into.rglob("*") if p.is_file()) == found
