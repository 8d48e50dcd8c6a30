"""A class split across machines: `batch --shard K/N` grades disjoint slices of the class that depend
on a student's name alone, `merge` joins the slices' reports into what one batch of the whole class
writes (or refuses, in one line, reports that are not the N slices of one class graded one way), and
`grading-workflow` writes the GitHub Actions workflow that does both. actionlint checks the
workflow, and its `run:` steps run here in order, job after job (the matrix expanded by hand, the
artifacts copied between jobs), in a fresh environment without the grader and with pip offline, as
in tests/test_classroom.py: once with the fetch step replaced by copying a local class, once as
written, with a stand-in `gh` that clones local repositories and fails for one.

The class is graded twice, no more: once by one batch, once by the workflow's shards. The other
tests reuse the first batch's report (batch regrades no unchanged student).
"""
from __future__ import annotations

import csv
import fnmatch
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from grader import __version__
from grader.commands import batch, grading_workflow, merge
from grader.grading.discovery import discover
from grader.grading.sharding import shard_of
from conftest import actionlint, offline_env, run_batch

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = "01_standard.ipynb"  # one small chapter keeps every grading short
STUDENTS = ["alice", "bob", "carol", "dave", "erin"]
OPTIONS = ("--device", "cpu")  # passed to every batch, through the workflow too


def make_class(root: Path) -> Path:
    (root / "alice").mkdir(parents=True)
    shutil.copy(ROOT / "solutions" / CHAPTER, root / "alice" / CHAPTER)  # complete
    (root / "bob" / "exercises").mkdir(parents=True)
    shutil.copy(ROOT / "exercises" / CHAPTER, root / "bob" / "exercises" / CHAPTER)  # untouched
    (root / "carol").mkdir()
    (root / "carol" / CHAPTER).write_text('{"cells": [')  # broken
    (root / "dave").mkdir()  # empty
    shutil.copy(ROOT / "solutions" / CHAPTER, root / "erin.ipynb")  # a loose file
    return root


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> dict[str, Path]:
    """The class, graded by one batch: its folder, gradebook and report."""
    tmp = tmp_path_factory.mktemp("whole")
    cls = make_class(tmp / "class")
    gb, report = tmp / "gradebook.csv", tmp / "report.json"
    r = run_batch(str(cls), "--csv", str(gb), "--json", str(report), *OPTIONS)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr  # carol and dave have an error
    rows = {row[0]: row for row in csv.reader(gb.open())}
    assert list(rows)[1:] == STUDENTS
    assert int(rows["alice"][-3]) == int(rows["erin"][-3]) > int(rows["bob"][-3]) == 0  # real gradings
    assert rows["carol"][-1] and rows["dave"][-1] and not rows["bob"][-1]
    return {"class": cls, "csv": gb, "json": report}


def shard(cls: Path, seed: Path, out: Path, k: int, n: int, capsys) -> dict:
    """``batch --shard k/n`` in this process, its report seeded with the whole class's, so only a
    student it does not hold is graded; returns the shard's report."""
    shutil.copy(seed, out)
    code = batch.main([str(cls), "--csv", str(out.with_suffix(".csv")), "--json", str(out), "--shard", f"{k}/{n}",
                       *OPTIONS])
    err = capsys.readouterr().err
    data = json.loads(out.read_text())
    graded = {r["student"] for r in json.loads(seed.read_text())["students"]}
    assert f" {sum(s['student'] not in graded for s in data['students'])} to grade" in err, err  # newcomers only
    errors = sum(1 for s in data["students"] if s["error"])
    assert code == (0 if errors == 0 else 2 if errors == len(data["students"]) else 1), err
    return data


def test_every_student_is_in_exactly_one_shard_and_the_shards_merge_into_the_class(
        whole: dict, tmp_path: Path, capsys) -> None:
    for n in (1, 2, 3, 4, 7):  # more shards than students: some hold no one
        reports, held = [], []
        for k in range(1, n + 1):
            out = tmp_path / f"n{n}" / f"shard-{k}.json"
            out.parent.mkdir(exist_ok=True)
            data = shard(whole["class"], whole["json"], out, k, n, capsys)
            assert data["shard"] == f"{k}/{n}"
            held.append([s["student"] for s in data["students"]])
            reports.append(out)
        everyone = [s for names in held for s in names]
        assert sorted(everyone) == STUDENTS, held  # each student once
        if n == 4:
            assert [] in held  # a shard of no one is a report too
        gb, report = tmp_path / f"n{n}" / "gradebook.csv", tmp_path / f"n{n}" / "report.json"
        assert merge.main([*map(str, reversed(reports)), "--csv", str(gb), "--json", str(report)]) == 0
        assert f"{len(STUDENTS)} students, 2 with an error" in capsys.readouterr().err
        assert gb.read_bytes() == whole["csv"].read_bytes()
        assert report.read_bytes() == whole["json"].read_bytes()


def test_a_student_s_shard_does_not_depend_on_the_rest_of_the_class(whole: dict, tmp_path: Path, capsys) -> None:
    n = 3
    before = {k: {s["student"] for s in shard(whole["class"], whole["json"], tmp_path / f"a{k}.json", k, n,
                                              capsys)["students"]} for k in range(1, n + 1)}
    smaller = tmp_path / "smaller"
    shutil.copytree(whole["class"], smaller)
    shutil.rmtree(smaller / "alice")
    shutil.rmtree(smaller / "carol")
    (smaller / "zed").mkdir()  # a newcomer, with nothing to grade
    after = {k: {s["student"] for s in shard(smaller, whole["json"], tmp_path / f"b{k}.json", k, n,
                                             capsys)["students"]} for k in range(1, n + 1)}
    for k in range(1, n + 1):
        assert after[k] - {"zed"} == before[k] - {"alice", "carol"}, (before, after)


def test_bad_shard_values_are_one_line_errors(tmp_path: Path, capsys) -> None:
    for value in ("0/2", "3/2", "2", "1/0", "-1/2", "a/2", "1/2/3", "1 /2", "\uff11/2", ""):
        assert batch.main([str(tmp_path), "--csv", str(tmp_path / "g.csv"), f"--shard={value}"]) == 2, value
        err = capsys.readouterr().err
        assert err.startswith(f"error: --shard {value}: expected K/N") and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "g.csv").exists()


# --- merge refuses what is not the N shards of one class graded one way -----------------------

@pytest.fixture
def halves(whole: dict, tmp_path: Path, capsys) -> list[dict]:
    """The class's two shards of two, as data to spoil."""
    return [shard(whole["class"], whole["json"], tmp_path / f"half-{k}.json", k, 2, capsys) for k in (1, 2)]


def refusal(tmp_path: Path, capsys, *reports: dict | str) -> str:
    """Merge these reports (data, or a file's raw text); returns the one-line error."""
    paths = []
    for i, r in enumerate(reports):
        paths.append(tmp_path / "in" / f"r{i}.json")
        paths[-1].parent.mkdir(exist_ok=True)
        paths[-1].write_text(r if isinstance(r, str) else json.dumps(r))
    gb, report = tmp_path / "out.csv", tmp_path / "out.json"
    assert merge.main([*map(str, paths), "--csv", str(gb), "--json", str(report)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert not gb.exists() and not report.exists()
    return err


def spoiled(report: dict, **changes) -> dict:
    return {**json.loads(json.dumps(report)), **changes}


def test_merge_refuses_shards_graded_differently(halves: list[dict], tmp_path: Path, capsys) -> None:
    one, two = halves
    for key, value, what in [("grader_version", "0.0.1", f"grader versions ({__version__} and 0.0.1)"),
                             ("torch_version", "2.0.0", "torch versions"), ("python_version", "3.12.0", "Python"),
                             ("device", "all", "devices (cpu and all)"), ("cuda_available", True, "CUDA"),
                             ("max_scores", {**one["max_scores"], "ReLU": 99}, "maximum scores"),
                             ("assignment", ["02_relu_variants"], "assignments")]:
        err = refusal(tmp_path, capsys, one, spoiled(two, **{key: value}))
        assert f"different {what}" in err, err
    # the assignment another batch writes (a list of chapter stems): equal ones merge, kept as they
    # are; so is what graded the shards, whatever Python merges them
    a, b = (spoiled(r, assignment=["01_standard"], python_version="3.99.0") for r in halves)
    assert "assignments" in refusal(tmp_path, capsys, a, spoiled(b, assignment=["01_standard", "02_relu_variants"]))
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for p, r in zip(paths, (a, b)):
        p.write_text(json.dumps(r))
    assert merge.main([*map(str, paths), "--csv", str(tmp_path / "g.csv"), "--json", str(tmp_path / "r.json")]) == 0
    merged = json.loads((tmp_path / "r.json").read_text())
    assert merged["assignment"] == ["01_standard"] and merged["python_version"] == "3.99.0"


def test_merge_refuses_missing_duplicated_or_foreign_shards_and_students(
        halves: list[dict], whole: dict, tmp_path: Path, capsys) -> None:
    one, two = halves
    assert "missing shard 2/2 (given 1/2)" in refusal(tmp_path, capsys, one)
    assert "shard 1/2 twice" in refusal(tmp_path, capsys, one, spoiled(one), two)
    third = spoiled(two, shard="3/3")
    assert "is a shard of 2 but" in refusal(tmp_path, capsys, one, two, third)
    bob = next(s for s in one["students"] if s["student"] == "bob")
    alice = next(s for s in two["students"] if s["student"] == "alice")
    assert "student 'alice' is in" in refusal(tmp_path, capsys, spoiled(one, students=[*one["students"], alice]), two)
    moved = spoiled(one, students=[s for s in one["students"] if s["student"] != "bob"])
    err = refusal(tmp_path, capsys, moved, spoiled(two, students=[*two["students"], bob]))
    assert "is shard 2/2 but holds 'bob', whose shard is 1/2" in err, err
    assert "not one shard" in refusal(tmp_path, capsys, whole["json"].read_text())  # an unsharded report
    assert "cannot read it (JSONDecodeError" in refusal(tmp_path, capsys, one, '{"students": [')
    assert "not a report of `python -m grader batch`" in refusal(tmp_path, capsys, one, '{"shard": "2/2"}')
    broken = spoiled(two, students=[{**alice, "exercises": [{"name": "NoSuchActivation", "score": 1}]}])
    assert "not a report" in refusal(tmp_path, capsys, one, broken)
    missing = tmp_path / "nowhere.json"
    assert merge.main([str(missing), "--csv", str(tmp_path / "g.csv")]) == 2
    assert "nowhere.json: cannot read it (FileNotFoundError" in capsys.readouterr().err


def test_merge_writes_the_lms_imports_of_the_whole_class(halves: list[dict], whole: dict, tmp_path: Path,
                                                         capsys) -> None:
    paths = []
    for k, half in enumerate(halves, 1):
        paths.append(tmp_path / f"h{k}.json")
        paths[-1].write_text(json.dumps(half))
    (tmp_path / "roster.csv").write_text("GitHub,ID,Email address\n" + "".join(
        f"{s},{i},{s}@uni.edu\n" for i, s in enumerate(STUDENTS)))
    canvas, moodle = tmp_path / "canvas.csv", tmp_path / "moodle.csv"
    assert merge.main([*map(str, paths), "--csv", str(tmp_path / "g.csv"), "--roster", str(tmp_path / "roster.csv"),
                       "--canvas", str(canvas), "--moodle", str(moodle), "--lms-column", "HW1 (4242)"]) == 0
    assert f"wrote {canvas}: Canvas's grade import, column 'HW1 (4242)', 5 students" in capsys.readouterr().err
    totals = {r["student"]: r["total"] for r in csv.DictReader(whole["csv"].open())}
    table = list(csv.reader(canvas.open()))
    assert table[0][-1] == "HW1 (4242)" and table[1][0] == "Points Possible"
    assert [(r[1], r[5]) for r in table[2:]] == [(str(i), totals[s]) for i, s in enumerate(STUDENTS)]
    assert [r[1] for r in list(csv.reader(moodle.open()))[1:]] == [totals[s] for s in STUDENTS]


# --- the workflow -------------------------------------------------------------------------------

def test_grading_workflow_writes_the_repository_and_refuses_bad_arguments(tmp_path: Path, capsys) -> None:
    repo = tmp_path / "repo"
    assert grading_workflow.main([str(repo), "--shards", "2", "--", "--strip-prefix", "hw1 x-"]) == 0
    text = (repo / grading_workflow.WORKFLOW).read_text()
    assert "--strip-prefix 'hw1 x-'" in text  # passed on to batch, quoted for the shell
    assert (repo / "grader" / "commands" / "merge.py").read_text() == (ROOT / "grader/commands/merge.py").read_text()
    assert (repo / "roster.txt").read_text().startswith("#")
    # generated again: a stale module of the old copy goes, the instructor's roster stays
    (repo / "grader" / "stale.py").write_text("")
    (repo / "roster.txt").write_text("org/hw1-alice\n")
    assert grading_workflow.main([str(repo), "--shards", "3"]) == 0
    assert not (repo / "grader" / "stale.py").exists() and (repo / "roster.txt").read_text() == "org/hw1-alice\n"
    assert "shard: [1, 2, 3]" in (repo / grading_workflow.WORKFLOW).read_text()
    capsys.readouterr()
    (tmp_path / "odd" / "grader").mkdir(parents=True)
    for args, expected in [([str(repo), "--shards", "0"], "--shards must be 1 to 256"),
                           ([str(repo), "--shards", "257"], "--shards must be 1 to 256"),
                           ([str(repo), "--shards", "2", "--", "--bogus"], "unrecognized arguments: --bogus"),
                           ([str(repo), "--shards", "2", "--", "--jobs", "x"], "--jobs: invalid int value"),
                           ([str(repo), "--shards", "2", "--", "--csv", "x.csv"], "sets batch's SUBMISSIONS_DIR"),
                           ([str(repo), "--shards", "2", "--", "--sha", "1/2"], "sets batch's SUBMISSIONS_DIR"),
                           ([str(repo), "--shards", "2", "--", "--fetched", "x"], "sets batch's SUBMISSIONS_DIR"),
                           ([str(repo), "--shards", "2", "--deadline", "2026-12-20"], "no time zone"),
                           ([str(repo), "--shards", "2", "--deadline", "soon"], "expected a time such as"),
                           ([str(repo), "--shards", "2", "--", "elsewhere"], "unrecognized arguments: elsewhere"),
                           ([str(ROOT), "--shards", "2"], "holds this grader's own source"),
                           ([str(tmp_path / "odd"), "--shards", "2"], "is not a copy of the grader"),
                           ([str(repo / "roster.txt"), "--shards", "2"], "not a folder")]:
        assert grading_workflow.main(args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and expected in err and len(err.strip().splitlines()) == 1, err
    assert list((tmp_path / "odd").iterdir()) == [tmp_path / "odd" / "grader"]


EXPRESSION = re.compile(r"\$\{\{\s*([\w.-]+)\s*\}\}")


def expand(value: object, context: dict[str, str]) -> str:
    """The workflow's only expressions are names (matrix.shard, secrets.X); any other fails here."""
    return EXPRESSION.sub(lambda m: context[m.group(1)], str(value))


def run_job(repo: Path, wf: dict, job: str, work: Path, artifacts: Path, venv: Path, context: dict[str, str],
            replace: dict[str, str], path: str = "") -> dict[str, int]:
    """One job's steps in order, as a runner would: checkout is a copy of ``repo``; setup-python is
    the fresh environment's python; artifacts are folders of ``artifacts``; a `run:` step runs in
    bash -eo pipefail (`defaults.run.shell`) without the torch line (PyTorch's index), or is
    ``replace[name]``; ``path`` goes first on PATH (stand-ins). Returns the run steps' exit statuses;
    stops at the first failure."""
    statuses: dict[str, int] = {}
    for step in wf["jobs"][job]["steps"]:
        uses, given = step.get("uses", ""), {k: expand(v, context) for k, v in step.get("with", {}).items()}
        if uses.startswith("actions/checkout"):
            shutil.copytree(repo, work)
        elif uses.startswith("actions/setup-python"):
            assert given["python-version"] == "3.11"
        elif uses.startswith("actions/upload-artifact"):
            target = artifacts / given["name"]
            target.mkdir(parents=True)  # an artifact's name is unique in a run
            found = [work / p for p in given["path"].splitlines() if (work / p).is_file()]
            assert found or given.get("if-no-files-found") != "error", given  # a path that matches nothing is skipped
            for file in found:
                shutil.copy(file, target)
        elif uses.startswith("actions/download-artifact"):
            assert given["merge-multiple"] == "True"  # every file in one folder: their names must differ
            (work / given["path"]).mkdir()
            for artifact in sorted(artifacts.iterdir()):
                if fnmatch.fnmatchcase(artifact.name, given["pattern"]):
                    for f in artifact.iterdir():
                        assert not (work / given["path"] / f.name).exists(), f
                        shutil.copy(f, work / given["path"])
        else:
            name = step["name"]
            assert "${{" not in step["run"], name  # expressions go through env:, never into the script
            lines = step["run"].splitlines()
            torch_line = [l for l in lines if "download.pytorch.org" in l]
            assert len(torch_line) <= 1
            script = replace.get(name, "\n".join(l for l in lines if l not in torch_line))
            (work.parent / "step.sh").write_text(script + "\n")
            env = {**offline_env(venv), "CI": "true",
                   **{k: expand(v, context) for k, v in {**wf["env"], **step.get("env", {})}.items()}}
            if path:
                env["PATH"] = f"{path}{os.pathsep}{env['PATH']}"
            r = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(work.parent / "step.sh")],
                               cwd=work, env=env, capture_output=True, text=True, timeout=600)
            statuses[name] = r.returncode
            with (work.parent / f"{job}.log").open("a") as log:
                log.write(f"## {name}\n{r.stdout}{r.stderr}")
            if r.returncode:
                break
    return statuses


def test_workflow_grades_the_class_in_shards_into_the_class_s_gradebook(
        whole: dict, tmp_path: Path, fresh: Path) -> None:  # noqa: F811
    n = 3
    repo = tmp_path / "repo"
    assert grading_workflow.main([str(repo), "--shards", str(n), "--", *OPTIONS]) == 0
    r = actionlint(repo / grading_workflow.WORKFLOW)
    assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr
    wf = yaml.safe_load((repo / grading_workflow.WORKFLOW).read_text())
    assert wf["defaults"]["run"]["shell"] == "bash" and wf["permissions"] == {"contents": "read"}
    assert wf["jobs"]["grade"]["strategy"]["matrix"]["shard"] == list(range(1, n + 1)) and wf["env"]["SHARDS"] == str(n)
    assert wf["jobs"]["merge"]["needs"] == "grade"

    artifacts = tmp_path / "artifacts"
    fetch = {"Fetch the submissions": f"cp -r {whole['class']} submissions\necho '{{\"repositories\": {{}}}}' > fetched.json"}
    for k in range(1, n + 1):  # the matrix, one job after the other
        job = tmp_path / f"grade-{k}"
        statuses = run_job(repo, wf, "grade", job / "work", artifacts, fresh,
                           {"matrix.shard": str(k), "secrets.CLASSROOM_TOKEN": "", "inputs.deadline": ""}, fetch)
        log = (job / "grade.log").read_text()
        assert set(statuses.values()) == {0}, log
        assert "Requirement already satisfied: pytest==" in log  # pip ran, offline, and found everything
        assert f"grader {__version__} from {job / 'work' / 'grader' / '__init__.py'}" in log  # the repository's copy
    # shard 2 of 3 holds dave alone, whose empty folder is an error: batch exits 2, the job goes on
    assert "shard 2/3: 1 of the 5 students" in (tmp_path / "grade-2" / "grade.log").read_text()
    assert sorted(p.name for p in artifacts.iterdir()) == [f"shard-{k}" for k in range(1, n + 1)]

    merged = tmp_path / "merge"
    statuses = run_job(repo, wf, "merge", merged / "work", artifacts, fresh, {}, {})
    assert set(statuses.values()) == {0}, (merged / "merge.log").read_text()
    book = artifacts / "gradebook"
    assert (book / "gradebook.csv").read_bytes() == whole["csv"].read_bytes()
    assert json.loads((book / "report.json").read_text()) == json.loads(whole["json"].read_text())



# --- the fetch step as written: a stand-in `gh` over local repositories -------------------------

GH = """#!/bin/bash
# `gh repo clone OWNER/NAME DIR -- GIT_OPTIONS...` over local repositories; one that does not exist
# fails as GitHub's does
[ "$1 $2" = "repo clone" ] && [ "$5" = "--" ] && [ -n "$GH_TOKEN" ] || exit 3
echo "$3" >> "{log}"
[ -d "{remotes}/$3" ] || {{ echo "GraphQL: Could not resolve to a Repository with the name '$3'. (repository)" >&2; exit 1; }}
exec git clone "${{@:6}}" "file://{remotes}/$3" "$4"
"""


def commit(repo: Path, when: str, files: dict[str, str | Path]) -> str:
    """A commit of ``files`` (text, or a file to copy) dated ``when`` (author and committer)."""
    for name, content in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copy(content, repo / name)
        else:
            (repo / name).write_text(content)
    env = {**os.environ, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when, "GIT_AUTHOR_NAME": "s",
           "GIT_AUTHOR_EMAIL": "s@x", "GIT_COMMITTER_NAME": "s", "GIT_COMMITTER_EMAIL": "s@x"}
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", when], check=True, env=env)
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, env=env, capture_output=True,
                          text=True).stdout.strip()


def remote(remotes: Path, slug: str, *commits: tuple[str, dict]) -> list[str]:
    repo = remotes / slug
    repo.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    return [commit(repo, when, files) for when, files in commits]


def stand_in_gh(tmp_path: Path, remotes: Path) -> tuple[Path, Path]:
    bin_dir, log = tmp_path / "bin", tmp_path / "gh.log"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(GH.format(log=log, remotes=remotes))
    (bin_dir / "gh").chmod(0o755)
    return bin_dir, log


SOLVED = ROOT / "solutions" / CHAPTER
BLANK = ROOT / "exercises" / CHAPTER


def test_workflow_fetches_only_its_shard_and_a_repository_that_cannot_be_cloned_is_a_row(
        tmp_path: Path, fresh: Path) -> None:  # noqa: F811
    n = 2
    repo = tmp_path / "repo"
    assert grading_workflow.main([str(repo), "--shards", str(n), "--", "--strip-prefix", "hw1-", "--chapter", "01_standard",
                                  *OPTIONS]) == 0
    remotes = tmp_path / "remotes"
    heads = {user: remote(remotes, f"org/hw1-{user}", ("2026-12-01T10:00:00Z", {
        f"exercises/{CHAPTER}": SOLVED if user != "bob" else BLANK, "grader/__init__.py": ""}))[-1]
        for user in ("alice", "bob", "carol", "dave")}
    (repo / "roster.txt").write_text("# hw1\norg/hw1-alice\norg/hw1-bob\norg/hw1-ghost\norg/hw1-carol\n"
                                     "org/hw1-dave\n")
    bin_dir, log = stand_in_gh(tmp_path, remotes)
    wf = yaml.safe_load((repo / grading_workflow.WORKFLOW).read_text())
    artifacts = tmp_path / "artifacts"
    cloned = []
    for k in range(1, n + 1):
        job = tmp_path / f"grade-{k}"
        statuses = run_job(repo, wf, "grade", job / "work", artifacts, fresh,
                           {"matrix.shard": str(k), "secrets.CLASSROOM_TOKEN": "a token", "inputs.deadline": ""},
                           {}, path=str(bin_dir))
        assert set(statuses.values()) == {0}, (job / "grade.log").read_text()
        mine = log.read_text().splitlines()[len(cloned):]
        cloned += mine
        # this shard cloned its own students alone: the ones batch --shard k/n grades
        assert all(shard_of(s.removeprefix("org/hw1-"), n) == k for s in mine), mine
    assert sorted(cloned) == sorted(f"org/hw1-{u}" for u in ("alice", "bob", "carol", "dave", "ghost"))
    statuses = run_job(repo, wf, "merge", tmp_path / "merge" / "work", artifacts, fresh, {}, {})
    assert set(statuses.values()) == {0}, (tmp_path / "merge" / "merge.log").read_text()
    rows = {r["student"]: r for r in csv.DictReader((artifacts / "gradebook" / "gradebook.csv").open())}
    assert sorted(rows) == ["alice", "bob", "carol", "dave", "ghost"]
    full = rows["alice"]["max"]
    for user in ("alice", "carol", "dave"):
        assert rows[user]["total"] == full and not rows[user]["error"], rows[user]
    assert rows["bob"]["total"] == "0" and not rows["bob"]["error"]
    for user, head in heads.items():
        assert (rows[user]["repository"], rows[user]["commit"]) == (f"org/hw1-{user}", head)
    ghost = rows["ghost"]
    assert ghost["total"] == "0" and ghost["repository"] == "org/hw1-ghost" and ghost["commit"] == ""
    assert ghost["error"] == ("could not fetch org/hw1-ghost: GraphQL: Could not resolve to a Repository with "
                              "the name 'org/hw1-ghost'. (repository)")


def fetch(tmp_path: Path, bin_dir: Path, roster: str, *options: str) -> tuple[int, dict]:
    (tmp_path / "roster.txt").write_text(roster)
    shutil.rmtree(tmp_path / "submissions", ignore_errors=True)
    path = os.environ["PATH"]
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{path}"
    os.environ["GH_TOKEN"] = "a token"
    try:
        code = grading_workflow.main(["--fetch", str(tmp_path / "roster.txt"), "--into", str(tmp_path / "submissions"),
                                      "--record", str(tmp_path / "fetched.json"), *options])
    finally:
        os.environ["PATH"] = path
        del os.environ["GH_TOKEN"]
    record = json.loads((tmp_path / "fetched.json").read_text())["repositories"] if code == 0 else {}
    return code, record


def test_a_deadline_grades_the_last_commit_before_it(tmp_path: Path, capsys) -> None:
    remotes = tmp_path / "remotes"
    first, on_time, late = remote(remotes, "org/hw1-alice",
                                  ("2026-12-18T12:00:00Z", {f"exercises/{CHAPTER}": "first"}),
                                  ("2026-12-20T23:58:00Z", {f"exercises/{CHAPTER}": "on time"}),
                                  ("2026-12-21T00:00:30Z", {f"exercises/{CHAPTER}": "late"}))
    # committed in another time zone: 23:30 at +01:00 is 22:30Z, before the deadline
    zoned = remote(remotes, "org/hw1-bob", ("2026-12-20T23:30:00+01:00", {f"exercises/{CHAPTER}": "bob"}),
                   ("2026-12-21T00:30:00+00:00", {f"exercises/{CHAPTER}": "bob late"}))
    remote(remotes, "org/hw1-carol", ("2026-12-22T09:00:00Z", {f"exercises/{CHAPTER}": "too late"}))
    bin_dir, _ = stand_in_gh(tmp_path, remotes)
    code, record = fetch(tmp_path, bin_dir, "org/hw1-alice\norg/hw1-bob\norg/hw1-carol\n",
                         "--deadline", "2026-12-20T23:59Z")
    assert code == 0, capsys.readouterr()
    assert record["hw1-alice"]["commit"] == on_time and record["hw1-alice"]["committed"].startswith("2026-12-20T23:58")
    assert (tmp_path / "submissions" / "hw1-alice" / "exercises" / CHAPTER).read_text() == "on time"
    assert record["hw1-bob"]["commit"] == zoned[0]
    assert record["hw1-carol"]["error"] == ("could not fetch org/hw1-carol: no commit before the deadline "
                                            "2026-12-20T23:59:00+00:00")
    assert (tmp_path / "submissions" / "hw1-carol").is_dir()  # the student is in the class, with the reason
    code, record = fetch(tmp_path, bin_dir, "org/hw1-alice\n")  # no deadline: the latest
    assert record["hw1-alice"]["commit"] == late
    assert first not in (on_time, late)


def test_two_owners_with_a_repository_of_one_name_do_not_collide(tmp_path: Path, capsys) -> None:
    remotes = tmp_path / "remotes"
    remote(remotes, "alice/activations", ("2026-12-01T10:00:00Z", {f"exercises/{CHAPTER}": "alice"}))
    remote(remotes, "bob/activations", ("2026-12-01T10:00:00Z", {f"exercises/{CHAPTER}": "bob"}))
    remote(remotes, "org/hw1-carol", ("2026-12-01T10:00:00Z", {f"exercises/{CHAPTER}": "carol"}))
    bin_dir, _ = stand_in_gh(tmp_path, remotes)
    code, record = fetch(tmp_path, bin_dir, "alice/activations\nbob/activations\norg/hw1-carol\n")
    assert code == 0, capsys.readouterr()
    assert sorted(record) == ["alice--activations", "bob--activations", "hw1-carol"]
    for folder, text in (("alice--activations", "alice"), ("bob--activations", "bob"), ("hw1-carol", "carol")):
        assert (tmp_path / "submissions" / folder / "exercises" / CHAPTER).read_text() == text
    assert [s.name for s in discover(tmp_path / "submissions")] == ["alice--activations", "bob--activations",
                                                                        "hw1-carol"]


@pytest.mark.parametrize("roster, expected", [
    ("# nobody yet\n", "lists no repository"),
    ("org/hw1-alice\norg hw1-bob\n", "line 2: 'org hw1-bob' is not OWNER/NAME"),
    ("org/hw1-alice\nORG/HW1-ALICE\n", "line 2: ORG/HW1-ALICE is listed on line 1 already"),
    ("org/../x\n", "is not OWNER/NAME")])
def test_a_roster_that_cannot_be_read_stops_the_fetch_in_one_line(tmp_path: Path, capsys, roster: str,
                                                                   expected: str) -> None:
    code, _ = fetch(tmp_path, tmp_path, roster)
    out = capsys.readouterr().out
    assert code == 2 and out.startswith("::error::") and expected in out and len(out.strip().splitlines()) == 1
