"""The worker's word is not the grade: a class graded by the real ``batch`` with its defaults, where
some students attack the grader as one who reads its source would (tests/attacks.py), in every mode
the grader is deployed in (book/guide_threat_model.md): root with namespaces (CI), root without
them (a Gradescope container, ``ACTIVATIONS_GRADER_UNPRIVILEGED=1``), with and without Landlock
(``ACTIVATIONS_GRADER_NO_LANDLOCK=1``), and an unprivileged user. Whatever the attackers do, each
honest student gets every point, each attacker what its honest code earns, no secret reaches a
report, nothing is written into the Python, and the batch's memory stays bounded."""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import attacks
from conftest import RELU, ROOT, autograder_root, check_spec, grant_search
from grader.run import containment, landlock

MODES = {
    "namespaces": {},
    "namespaces, no Landlock": {landlock.ENV_OFF: "1"},
    "root without namespaces": {containment.UNPRIVILEGED: "1"},
    "root, no namespaces, no Landlock": {containment.UNPRIVILEGED: "1", landlock.ENV_OFF: "1"},
    "unprivileged user": {},
}
HONEST = 18  # ReLU's checks on the CPU
PEAK_MB = 800  # the batch process's resident memory at its peak, under floods and tape bombs (423 MB measured)


def mode_available(mode: str) -> None:
    if os.geteuid() != 0:
        if mode != "unprivileged user":
            pytest.skip("the modes of a root grader need root")
    elif mode.startswith("namespaces") and not containment.namespaces():
        pytest.skip("this machine does not allow namespaces")
    if "no Landlock" not in mode and not landlock.abi():
        pytest.skip("this kernel has no Landlock")


def environment(mode: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", containment.UNPRIVILEGED, landlock.ENV_OFF)}
    env.update(MODES[mode])
    return env


def course_for(mode: str, tmp_path: Path) -> Path:
    """The course the grader runs from. Where nothing but file permissions hides the solutions (root,
    no namespaces, no Landlock: a Gradescope container without Landlock) the grader refuses to grade
    next to readable solutions (tested below), so that mode grades from a course without them, as
    the Gradescope bundle is."""
    if mode != "root, no namespaces, no Landlock":
        return ROOT
    course = tmp_path / "bundle"
    shutil.copytree(ROOT / "grader", course / "grader", ignore=shutil.ignore_patterns("__pycache__"))
    grant_search(course / "grader", stop=Path(tempfile.gettempdir()))
    for path in [course, *course.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return course


def run_batch(mode: str, course: Path, klass: Path, out: Path, *extra: str) -> tuple[subprocess.CompletedProcess, int]:
    """``batch`` with its defaults (but --device cpu and two jobs), as ``mode`` runs it; its peak
    resident memory in MB (VmHWM, read while it runs)."""
    command = [sys.executable, "-m", "grader", "batch", str(klass), "--csv", str(out / "grades.csv"),
               "--json", str(out / "grades.json"), "--device", "cpu", "--jobs", "2", *extra]
    preexec = None
    env = environment(mode)
    if mode == "unprivileged user":
        user = 64999
        for path in (klass, out):
            for p in [path, *path.rglob("*")]:
                os.chown(p, user, user)
        grant_search(out, stop=Path(tempfile.gettempdir()))
        grant_search(klass, stop=Path(tempfile.gettempdir()))
        env.update(HOME=str(out), TMPDIR=str(out))

        def preexec() -> None:
            os.setgroups([])
            os.setgid(user)
            os.setuid(user)
    proc = subprocess.Popen(command, cwd=course, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=preexec)
    peak = 0
    while proc.poll() is None:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            peak = max(peak, int(next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1]) // 1024)
        except (OSError, StopIteration, ValueError):
            pass
        time.sleep(0.2)
    stdout, stderr = proc.communicate()
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr), peak


def solution_fragment() -> str:
    """A line of chapter 1's solutions that nothing but the solutions holds."""
    nb = json.loads((ROOT / "solutions" / "01_standard.ipynb").read_text())
    inside = False
    for cell in nb["cells"]:
        for line in "".join(cell["source"]).splitlines():
            if "### BEGIN SOLUTION" in line:
                inside = True
            elif "### END SOLUTION" in line:
                inside = False
            elif inside and len(line.strip()) > 25:
                return line.strip()
    raise AssertionError("no solution line found")


CLASSMATE_MARK = "# classmate-only-text 7d1f0c"


def build_class(klass: Path, course: Path) -> dict[str, list[tuple[str, str]]]:
    """The class: honest students, and attackers named to be graded first (students are graded in
    order of their names, two at a time). The reader looks for the solutions of the course the grader
    runs from (where only file permissions hide anything, the grader cannot hide another copy of the
    course that other users may read: the threat model says so)."""
    fill = dict(course=str(ROOT), course_grader=str(ROOT / "grader"), plants=attacks.PLANTS, payload=attacks.PAYLOAD)
    honest = RELU + "\n" + CLASSMATE_MARK + "\n"
    students = {
        "aa_forger": [("hw.py", attacks.FORGER.format(tape=attacks.empty_tape()))],
        "ab_copier": [("hw.py", attacks.DUPLICATOR)],
        "ab_twin": [("hw.py", attacks.HALF_RELU)],
        "ac_interpreter": [("hw.py", attacks.INTERPRETER.format(**fill))],
        "ad_reader": [("hw.py", attacks.READER.format(course=str(course), classmate=str(klass / "zz_honest" / "hw.py"),
                                                      classroom=str(klass)))],
        "ae_planter": [("1_plant.py", attacks.PLANTER.format(**fill) + RELU), ("2_copy.py", honest)],
        "af_sprayer": [("hw.py", RELU + attacks.SPRAYER.format(seconds=8, **fill))],
        "ag_flood": [("hw.py", attacks.FLOOD)],
        "ah_line": [("hw.py", attacks.ENDLESS_LINE)],
        "ai_bomb": [("hw.py", RELU + attacks.BOMB.format(deflated=attacks.deflated_tape(2**30),
                                                         strided=attacks.strided_tape(10**10)))],
        "aj_deep": [("hw.py", attacks.DEEP_EXPRESSION + RELU)],
        "ak_nested": [("hw.py", attacks.NESTED_LINE)],
        "al_injector": [("hw.py", attacks.INJECTOR)],
        "ba_honest": [("hw.py", RELU)],
        "bb_honest": [("hw.py", RELU + "\n# bb\n")],
        "zz_honest": [("hw.py", honest)],
    }
    for name, files in students.items():
        (klass / name).mkdir(parents=True)
        for file, text in files:
            (klass / name / file).write_text(text)
    return students


def honest_score(tmp_path: Path, code: str) -> int:
    sub = tmp_path / "honest" / "hw.py"
    sub.parent.mkdir(exist_ok=True)
    sub.write_text(code)
    r = subprocess.run([sys.executable, "-m", "grader", str(sub), "--device", "cpu", "--json", str(tmp_path / "h.json")],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert "Traceback" not in r.stderr, r.stderr
    return json.loads((tmp_path / "h.json").read_text())["submissions"][0]["score"]


@pytest.fixture(scope="module")
def half_score(tmp_path_factory) -> int:
    score = honest_score(tmp_path_factory.mktemp("half"), attacks.HALF_RELU)
    assert 0 < score < HONEST
    return score


def plants_in(folders: list[Path]) -> list[str]:
    return [str(f / n) for f in folders for n in attacks.PLANTS if (f / n).exists()]


def interpreter_folders() -> list[Path]:
    import site

    return [Path(p) for p in {*site.getsitepackages(), sys.prefix, sys.base_prefix, os.path.dirname(os.__file__),
                              str(ROOT), str(ROOT / "grader")}]


@pytest.mark.parametrize("mode", list(MODES))
def test_a_class_with_attackers(tmp_path: Path, mode: str, half_score: int) -> None:
    mode_available(mode)
    course = course_for(mode, tmp_path)
    klass, out = tmp_path / "class", tmp_path / "out"
    out.mkdir()
    students = build_class(klass, course)
    if mode == "root, no namespaces, no Landlock":
        klass.chmod(0o700)  # what the grader asks for where only file permissions hide the class
    before = plants_in(interpreter_folders())
    r, peak = run_batch(mode, course, klass, out)
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    rows = {row["student"]: row for row in csv.DictReader((out / "grades.csv").open())}
    assert set(rows) == set(students), r.stderr[-2000:]
    report = json.loads((out / "grades.json").read_text())
    records = {s["student"]: s for s in report["students"]}
    text = (out / "grades.csv").read_text() + (out / "grades.json").read_text()

    def relu(student: str) -> int:
        return int(rows[student]["ReLU"])

    # honest students keep every point, whatever the others did
    for student in ("ba_honest", "bb_honest", "zz_honest"):
        assert relu(student) == HONEST and not rows[student]["error"], (student, rows[student]["error"])
    # the forged file earns what its code earns: nothing
    assert int(rows["aa_forger"]["total"]) == 0 and rows["aa_forger"]["error"].startswith("graded 0 activations")
    # results copied onto made-up devices count once: the copier earns what its twin earns
    assert relu("ab_copier") == relu("ab_twin") == half_score, (rows["ab_copier"], rows["ab_twin"])
    assert "the grader ignored what it had not asked for" in json.dumps(records["ab_copier"])
    # nothing was written into the Python, the grader or the course
    assert relu("ac_interpreter") == HONEST
    assert plants_in(interpreter_folders()) == before
    # no solution and no classmate's text reaches a report
    assert "SECRET-LEAK" not in text, [n for n in json.dumps(records["ad_reader"]).split("|") if "SECRET-LEAK" in n]
    assert solution_fragment() not in text and CLASSMATE_MARK not in text
    assert relu("ad_reader") == HONEST
    # a file's process starts clean: what the planter left does not reach its next file, nor the
    # classmate whose identical file that next file is
    files = {f["path"]: f for f in records["ae_planter"]["files"]}
    assert relu("ae_planter") == HONEST and not rows["ae_planter"]["error"], (rows["ae_planter"], files)
    # what the sprayer writes reaches no other worker
    assert relu("af_sprayer") == HONEST
    # floods and bombs cost the attacker alone, and the batch's memory stays bounded
    for student in ("ag_flood", "ah_line"):
        assert "too much output on the result channel" in rows[student]["error"], rows[student]
    assert relu("ai_bomb") == HONEST - 2, rows["ai_bomb"]
    assert peak < PEAK_MB, f"the batch reached {peak} MB"
    # malformed input: one line each, never a traceback
    assert "nested too deeply" in rows["aj_deep"]["error"] and "\n" not in rows["aj_deep"]["error"]
    assert relu("ak_nested") == HONEST
    # injected text is kept as one line of text, control characters escaped
    assert relu("al_injector") == HONEST
    assert "\x1b" not in text and "\\x1b[2J" in text
    print(f"{mode}: batch peak {peak} MB", file=sys.stderr)


def test_the_reports_sha256_is_the_parents(tmp_path: Path) -> None:
    """The worker's claims of the file's hash are not read: the report's is computed by the grader."""
    sub = tmp_path / "hw.py"
    sub.write_text(attacks.CHANNEL + '_send({"event": "loaded", "sha256": "0" * 64, "notes": []})\n' + RELU)
    r = subprocess.run([sys.executable, "-m", "grader", str(sub), "--device", "cpu", "--json", str(tmp_path / "r.json")],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    (s,) = json.loads((tmp_path / "r.json").read_text())["submissions"]
    assert s["sha256"] == hashlib.sha256(sub.read_bytes()).hexdigest(), r.stderr


def test_the_forged_file_through_the_cli_earns_nothing(tmp_path: Path) -> None:
    sub = tmp_path / "hw.py"
    sub.write_text(attacks.FORGER.format(tape=attacks.empty_tape()))
    r = subprocess.run([sys.executable, "-m", "grader", str(sub), "--device", "cpu", "--json", str(tmp_path / "r.json")],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    (s,) = json.loads((tmp_path / "r.json").read_text())["submissions"]
    assert s["score"] == s["max_score"] == 0 and r.returncode == 1, (s, r.stdout)
    assert "no activation defined" in r.stdout


def test_the_copier_through_the_cli_earns_what_its_code_earns(tmp_path: Path, half_score: int) -> None:
    sub = tmp_path / "hw.py"
    sub.write_text(attacks.DUPLICATOR)
    subprocess.run([sys.executable, "-m", "grader", str(sub), "--device", "all", "--json", str(tmp_path / "r.json")],
                   capture_output=True, text=True, cwd=ROOT, timeout=600)
    (s,) = json.loads((tmp_path / "r.json").read_text())["submissions"]
    (relu,) = s["exercises"]
    assert relu["score"] == half_score and relu["max_score"] == HONEST, relu


def test_where_only_permissions_would_hide_the_solutions_grading_is_refused(tmp_path: Path) -> None:
    """Root, no namespaces, no Landlock, solutions readable by other users: one line, exit 2."""
    if os.geteuid() != 0:
        pytest.skip("the grader runs its workers as another user only as root")
    if not (ROOT / "solutions").stat().st_mode & 0o004:
        pytest.skip("the solutions are not readable by other users here")
    sub = tmp_path / "hw.py"
    sub.write_text(RELU)
    env = environment("root, no namespaces, no Landlock")
    r = subprocess.run([sys.executable, "-m", "grader", str(sub), "--device", "cpu"], capture_output=True, text=True,
                       cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 2, r.stdout + r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert "nothing hides" in line and "solutions" in line and "chmod" in line


def test_where_only_permissions_would_hide_the_class_grading_is_refused(tmp_path: Path) -> None:
    """The same where the class's folder can be read by other users: a worker could read classmates'
    files by their paths."""
    if os.geteuid() != 0:
        pytest.skip("the grader runs its workers as another user only as root")
    course = course_for("root, no namespaces, no Landlock", tmp_path)
    klass = tmp_path / "class"
    (klass / "someone").mkdir(parents=True)
    (klass / "someone" / "hw.py").write_text(RELU)
    grant_search(klass, stop=Path(tempfile.gettempdir()))
    klass.chmod(0o755)
    r, _ = run_batch("root, no namespaces, no Landlock", course, klass, tmp_path)
    row = next(csv.DictReader((tmp_path / "grades.csv").open()))
    assert "nothing hides" in row["error"] and str(klass) in row["error"], row


def test_a_throwaway_interpreter_is_not_written(tmp_path: Path) -> None:
    """The grader run from a virtual environment of its own (site-packages writable by root): the
    submission's .pth and modules are not written into it, and a second grading there is honest."""
    if os.geteuid() != 0:
        pytest.skip("as another user than root, site-packages is not the grader's to protect")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    grant_search(venv, stop=Path(tempfile.gettempdir()))
    site = next(venv.glob("lib/python3*/site-packages"))
    import torch

    (site / "course_packages.pth").write_text(str(Path(torch.__file__).parents[1]) + "\n")
    python = venv / "bin" / "python"
    sub = tmp_path / "hw.py"
    sub.write_text(attacks.INTERPRETER.format(course=str(ROOT), course_grader=str(ROOT / "grader"),
                                              plants=attacks.PLANTS, payload=attacks.PAYLOAD))
    before = sorted(p.name for p in site.iterdir())
    for attempt in range(2):
        r = subprocess.run([str(python), "-m", "grader", str(sub), "--device", "cpu"], capture_output=True, text=True,
                           cwd=ROOT, env=environment("namespaces"), timeout=600)
        assert r.returncode == 0 and "18/18" in r.stdout, r.stdout + r.stderr
        assert sorted(p.name for p in site.iterdir()) == before
        assert not plants_in([venv, site, venv / "bin", ROOT, ROOT / "grader"])


@pytest.mark.parametrize("mode", ["namespaces", "root without namespaces"])
def test_the_gradescope_autograder_under_attack(bundle: Path, tmp_path: Path, mode: str, half_score: int) -> None:  # noqa: F811
    """The same attacks through the bundle's real run_autograder, one submission holding them: the
    forged file earns nothing, the copier what its code earns, injected text shows as text in
    results.json's Markdown, and every file's SHA-256 is the grader's."""
    mode_available(mode)
    root = autograder_root(bundle, tmp_path)
    grant_search(root, stop=Path(tempfile.gettempdir()))  # a Gradescope image's /autograder is not behind a 0700 folder
    files = {"forger.py": attacks.FORGER.format(tape=attacks.empty_tape()), "copier.py": attacks.DUPLICATOR,
             "injector.py": "def sigmoid(input):\n    raise NotImplementedError\n"
                            f"raise RuntimeError({attacks.INJECTED!r})\n"}
    for name, text in files.items():
        (root / "submission" / name).write_text(text)
    env = environment(mode)
    env.update(AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable)
    r = subprocess.run([str(root / "run_autograder")], capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    check_spec(results)
    tests = {t["name"]: t for t in results["tests"]}
    assert tests["ReLU"]["score"] == half_score and tests["Sigmoid"]["score"] == 0, (tests["ReLU"], r.stderr[-2000:])
    assert results["score"] == half_score
    shown = results["output"] + "".join(t["output"] for t in results["tests"])
    for raw in ("**All 52", "](https://evil", "![t]", "\x1b"):
        assert raw not in shown, raw
    assert not re.search(r"(?<!\\)<img", shown)  # a tag only where its < is escaped
    assert "All 52 checks passed" in shown.replace("\\", "")  # the student's words, shown as text
    assert {f["path"]: f["sha256"] for f in results["extra_data"]["files"]} == \
        {name: hashlib.sha256(text.encode()).hexdigest() for name, text in files.items()}
