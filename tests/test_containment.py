"""What holds a worker, with the options users run (no --check-timeout): hangs cost seconds, nothing a
submission starts outlives its grading, forks are capped, and where namespaces are allowed (root, as
in CI) the worker has no network and sees no solutions. Each privileged protection is also run with
``ACTIVATIONS_GRADER_UNPRIVILEGED=1``, to test what holds on machines without namespaces.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.run import containment, landlock
from grader.core import limits
from grader.catalog import ACTIVATIONS, chapter_stem
from conftest import RELU, ROOT, notebook

MODES = ["privileged", "unprivileged"]


def grade(tmp_path: Path, *cells: str, mode: str = "privileged", name: str = "sub.ipynb",
          timeout: float = 600) -> tuple[subprocess.CompletedProcess, dict]:
    sub = notebook(tmp_path / name, *cells)
    report = tmp_path / "report.json"
    env = dict(os.environ)
    env.pop(containment.UNPRIVILEGED, None)
    if mode == "unprivileged":
        env[containment.UNPRIVILEGED] = "1"
    r = subprocess.run([sys.executable, "-m", "grader", str(sub), "--device", "cpu", "--json", str(report)],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout)
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    return r, json.loads(report.read_text())


def notes(report: dict) -> str:
    return "\n".join(report["submissions"][0]["notes"])


def scores(report: dict) -> dict[str, tuple[int, int]]:
    return {e["name"]: (e["score"], e["max_score"]) for e in report["submissions"][0]["exercises"]}


def alive(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if marker in line and "ps -eo" not in line]


def solution_cells(stem: str) -> list[str]:
    nb = json.loads((ROOT / "solutions" / f"{stem}.ipynb").read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


# ------------------------------------------------------------------------------------------ hangs

def test_a_hang_costs_one_timeout_not_one_per_check(tmp_path: Path) -> None:
    """A chapter whose relu never returns is graded in about one check's time limit more than the
    same chapter without the hang (before the memo: every check that calls relu waited it out)."""
    cells = solution_cells("01_standard")
    start = time.monotonic()
    _, good = grade(tmp_path, *cells, name="good.ipynb")
    baseline = time.monotonic() - start
    hang = "import time\ndef relu(input, inplace=False):\n    while True:\n        time.sleep(0.05)"
    start = time.monotonic()
    r, bad = grade(tmp_path, *cells, hang, name="bad.ipynb", timeout=baseline + 120)
    took = time.monotonic() - start
    s = scores(bad)
    assert scores(good)["Sigmoid"] == s["Sigmoid"] and s["Tanh"] == scores(good)["Tanh"]
    assert s["ReLU"][0] < s["ReLU"][1]
    relu_checks = {c["name"]: c["message"] for c in bad["submissions"][0]["exercises"][0]["checks"]}
    first = f"`relu` did not return within {limits.CHECK_TIMEOUT:g} s"
    assert sum(f"{first} (an infinite loop?)" in m for m in relu_checks.values()) == 1, relu_checks
    assert sum(f"timed out in an earlier check ({first})" in m for m in relu_checks.values()) >= 10, relu_checks
    # one time limit, plus generous slack for a loaded machine: not one limit per check (16 x 10 s)
    assert took < baseline + 3 * limits.CHECK_TIMEOUT + 30, (took, baseline)


def test_every_function_of_the_biggest_chapter_hangs(tmp_path: Path) -> None:
    """Every functional, every <Module>Function.forward and every module forward and constructor of
    the biggest chapter never returns: each costs one time limit, and the run ends in minutes."""
    chapter = max({a.chapter for a in ACTIVATIONS}, key=lambda c: sum(a.chapter == c for a in ACTIVATIONS))
    entries = [a for a in ACTIVATIONS if a.chapter == chapter]
    hang = ["import time", "def _hang(*args, **kwargs):", "    while True:", "        time.sleep(0.05)"]
    for a in entries:
        if a.functional:
            hang.append(f"def {a.functional}(*args, **kwargs):\n    while True:\n        time.sleep(0.05)")
        hang.append(f"{a.function_name}.forward = staticmethod(lambda ctx, *a, **k: _hang())")
        hang.append(f"{a.name}.forward = lambda self, *a, **k: _hang()")
        hang.append(f"{a.name}.__init__ = lambda self, *a, **k: _hang()")
    hang_cell = "\n".join(hang)
    budget = 3 * len(entries) * limits.CHECK_TIMEOUT + 120  # three hanging entry points per activation
    start = time.monotonic()
    r, report = grade(tmp_path, *solution_cells(chapter_stem(chapter)), hang_cell, timeout=budget + 60)
    took = time.monotonic() - start
    s = scores(report)
    assert set(s) == {a.name for a in entries}
    assert all(score <= 2 for score, _ in s.values()), s  # api's signature read, at most, still passes
    assert took < budget, took


# ------------------------------------------------------------------------------- nothing outlives

ESCAPES = '''
import os, subprocess, threading, time
if os.fork() == 0:
    os.setsid()
    os.execvp("sleep", ["sleep", "{marker}1"])
threading.Thread(target=lambda: time.sleep({marker}2)).start()
subprocess.Popen("sleep {marker}3 &", shell=True)
'''


@pytest.mark.parametrize("mode", MODES)
def test_nothing_the_submission_starts_outlives_the_grading(tmp_path: Path, mode: str) -> None:
    marker = str(7000 + os.getpid() % 1000 + (500 if mode == "privileged" else 0))
    start = time.monotonic()
    r, report = grade(tmp_path, RELU, ESCAPES.format(marker=marker), mode=mode)
    took = time.monotonic() - start
    assert scores(report)["ReLU"][0] == scores(report)["ReLU"][1], report
    left = alive(f"sleep {marker}")
    for line in left:  # don't leave them to the next test either
        subprocess.run(["kill", "-9", line.split()[0]])
    assert not left, left
    assert took < 2 * limits.CHECK_TIMEOUT + 60, took  # the report was not held up by the child's open pipe


# --------------------------------------------------------------------------------------- fork cap

FORKS = '''
import os, time
_children = 0
try:
    for _ in range(200):
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        _children += 1
except OSError as exc:
    raise RuntimeError(f"forked {_children} then {type(exc).__name__}")
raise RuntimeError(f"forked {_children} then nothing stopped it")
'''


def test_forks_are_capped(tmp_path: Path) -> None:
    """At most 200 children that sleep: if the cap were missing, the machine still survives it."""
    if os.geteuid() == 0 and not containment.ProcessCap.available():
        pytest.skip("root ignores RLIMIT_NPROC and no pids cgroup is writable here: no cap holds")
    r, report = grade(tmp_path, FORKS, RELU)
    text = notes(report)
    assert "forked " in text, text
    forked = int(text.split("forked ")[1].split()[0])
    assert forked < limits.PROCESSES < 200, text
    assert scores(report)["ReLU"][0] == scores(report)["ReLU"][1]  # the rest is still graded


# ----------------------------------------------------------------------- network and the solutions

NETWORK = '''
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
    _reach = "reached the grader's machine"
except OSError as exc:
    _reach = f"no connection ({{type(exc).__name__}})"
raise RuntimeError(f"interfaces {{sorted(n for _, n in socket.if_nameindex())}}; {{_reach}}")
'''


@pytest.mark.parametrize("mode", MODES)
def test_the_worker_has_no_network(tmp_path: Path, mode: str) -> None:
    """A server on the grader machine's loopback, the one address a test may use: the worker cannot
    reach it where network namespaces are allowed; without them it can (documented)."""
    if mode == "privileged" and not containment.namespaces():
        pytest.skip("network namespaces are not permitted here")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        r, report = grade(tmp_path, NETWORK.format(port=server.getsockname()[1]), RELU, mode=mode)
    finally:
        server.close()
    text = notes(report)
    if mode == "privileged":
        assert "interfaces ['lo']; no connection" in text, text
    elif landlock.abi() >= 4:  # Landlock's ABI 4 forbids TCP, without privileges
        assert "no connection (PermissionError)" in text, text
    else:
        assert "reached the grader's machine" in text, text


HIDDEN = '''
import ctypes, os
_solutions = {solutions!r}
ctypes.CDLL(None).umount2(_solutions.encode(), 2)  # MNT_DETACH: what a root worker with capabilities could do
try:
    _seen = sorted(os.listdir(_solutions))
except OSError as exc:
    _seen = type(exc).__name__
raise RuntimeError(f"solutions: {{_seen}}")
'''


@pytest.mark.parametrize("mode", MODES)
def test_solutions_and_hidden_folders_are_empty_for_the_worker(tmp_path: Path, mode: str) -> None:
    """With namespaces the course and every --hide folder are covered (the worker, another user
    without capabilities, cannot unmount the covers); without them Landlock lets it read nothing of
    either (tests/test_attacks.py covers the modes without Landlock)."""
    if mode == "privileged" and not containment.privileged():
        pytest.skip("mount namespaces need root; not root here")
    if mode == "unprivileged" and not landlock.abi():
        pytest.skip("without namespaces the course is hidden by Landlock, which this kernel lacks")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "answers.txt").write_text("42")
    cells = [HIDDEN.format(solutions=str(ROOT / "solutions")),
             HIDDEN.format(solutions=str(secret)).replace("solutions:", "secret:"), RELU]
    sub = notebook(tmp_path / "sub.ipynb", *cells)
    env = dict(os.environ)
    env.pop(containment.UNPRIVILEGED, None)
    if mode == "unprivileged":
        env[containment.UNPRIVILEGED] = "1"
    report = tmp_path / "r.json"
    r = subprocess.run([sys.executable, "-m", "grader", str(sub), "--device", "cpu", "--hide", str(secret),
                        "--json", str(report)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    text = notes(json.loads(report.read_text()))
    if mode == "privileged" and containment.namespaces():
        # the course is covered whole (its solutions folder is not even there), and so is the hidden
        # folder, or the folder that holds it (here the submission's, which is covered too)
        assert "solutions: FileNotFoundError" in text, text
        assert "secret: []" in text or "secret: FileNotFoundError" in text, text
    else:
        assert "solutions: PermissionError" in text and "secret: PermissionError" in text, text


def test_grading_the_solutions_themselves_still_works(tmp_path: Path) -> None:
    """The solutions folder is hidden from workers; a solution notebook is graded from a copy."""
    r = subprocess.run([sys.executable, "-m", "grader", "solutions/05_shrinkage.ipynb", "--device", "cpu"],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr


def test_hide_needs_a_folder(tmp_path: Path, cli) -> None:
    r = cli("x.py", "--hide", str(tmp_path / "nope"), cwd=ROOT)  # in this process
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "not a folder" in r.stderr


# ------------------------------------------------------------------------------------ output floods

FLOOD_CELL = '''
import resource, sys
_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
_chunk = "x" * 100_000_000
for _ in range(100):  # 10 GB
    sys.stdout.write(_chunk)
del _chunk
raise RuntimeError(f"grew {{(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - _before) // 1024}} MB")
'''

# 40 MB a call: the checks' 182 calls print 7 GB, more than a worker's memory limit could keep, yet
# gradcheck's share stays within its time limit on a loaded machine (at 100 MB a call, three test
# processes on 2 cores took gradcheck past 10 s; the limit then landed inside relu, which the grader
# rightly took for a hang of relu in every later check)
FLOOD_RELU = RELU.replace("    out = torch.where(input <= 0, 0, input)",
                          "    print('x' * 40_000_000)\n    out = torch.where(input <= 0, 0, input)", 1)


def test_output_floods_cost_nothing_but_time(tmp_path: Path) -> None:
    """10 GB printed by a cell and 40 MB by every call: the worker keeps a bounded part."""
    assert FLOOD_RELU != RELU
    r, report = grade(tmp_path, FLOOD_CELL.format(), FLOOD_RELU)
    text = notes(report)
    grew = int(text.split("grew ")[1].split()[0])
    assert grew < 400, text  # one 100 MB chunk and its copy, not 10 GB
    # printing 100 MB a call may make a check of many calls (gradcheck) slow: it costs that check alone
    checks = report["submissions"][0]["exercises"][0]["checks"]
    failed = [c["message"] for c in checks if c["status"] == "failed"]
    assert all("took longer than" in m for m in failed), failed
    assert len(failed) <= 2, failed


def test_the_worker_imports_the_bytecode_make_compiled(tmp_path: Path) -> None:
    """`make` compiles the grader (checked-hash bytecode); the worker's copy of the grader keeps it,
    so that a worker, which writes no bytecode (``python -I -B``), does not compile what it imports."""
    import compileall
    import py_compile
    import shutil

    package = tmp_path / "course" / "grader"
    shutil.copytree(ROOT / "grader", package, ignore=shutil.ignore_patterns("__pycache__"))
    assert compileall.compile_dir(package, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    # in one process: the copy is removed when the process that made it exits
    script = f"""
import subprocess, sys
from pathlib import Path
from grader.core import paths
paths.PACKAGE = Path({str(package)!r})
from grader.run import containment
library = str(containment.grader_library())
command = containment.worker_command(["--help"])  # the worker's own command line; it imports, then exits 0
command.insert(1, "-v")  # python says where each module's code came from
ran = subprocess.run(command, capture_output=True, text=True)
print(library)
print(ran.returncode)
print(ran.stderr)
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    library, code, verbose = r.stdout.split("\n", 2)
    assert code == "0", verbose[-2000:]
    # what python -v says of a module whose bytecode it took, and of one it compiled
    assert f"{library}/grader/run/__pycache__/worker_main.cpython" in verbose and " matches " in verbose
    assert f"code object from {library}/grader/run/worker_main.py" not in verbose
