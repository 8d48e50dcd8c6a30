"""A submission that forges its grade: at import it writes a perfect score where the grade goes
(Gradescope's results.json, the CLI's --json report) and SIGKILLs every process whose command line
mentions the grader. Through the real ``run_autograder`` and the real CLI, with namespaces (root, as
in CI) and as root without them (``ACTIVATIONS_GRADER_UNPRIVILEGED=1``, as in a Gradescope
container, where every worker runs as another user): the grade is the honest one either way."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import RELU, autograder_root, check_spec, grant_search
from grader.run import containment
from grader.catalog import BY_NAME
from grader.checks.torch_checks import checks_for

ROOT = Path(__file__).resolve().parent.parent
MODES = ["namespaces", "root without namespaces"]

ATTACK = '''
import json as _json, os as _os, signal as _signal
try:
    with open({target!r}, "w") as _f:
        _json.dump({{"score": 999.0, "output": "forged", "submissions": []}}, _f)
except OSError:
    pass
for _pid in _os.listdir("/proc"):
    if not _pid.isdigit() or int(_pid) == _os.getpid():
        continue
    try:
        with open(f"/proc/{{_pid}}/cmdline", "rb") as _f:
            _cmd = _f.read()
    except OSError:
        continue
    if b"grader" in _cmd:
        try:
            _os.kill(int(_pid), _signal.SIGKILL)
        except OSError:
            pass
'''
HONEST = len(checks_for(BY_NAME["ReLU"], ["cpu"]))  # the submission's ReLU is correct: every point


def environment(mode: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", containment.UNPRIVILEGED)}
    if mode != "namespaces":
        env[containment.UNPRIVILEGED] = "1"
    return env


def need(mode: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("the attack is on a grader that runs as root; as another user it cannot signal root at all")
    if mode == "namespaces" and not containment.namespaces():
        pytest.skip("this machine does not allow namespaces")


@pytest.mark.parametrize("mode", MODES)
def test_run_autograder_keeps_the_honest_score(bundle: Path, tmp_path: Path, mode: str) -> None:  # noqa: F811
    need(mode)
    root = autograder_root(bundle, tmp_path)
    grant_search(root, stop=Path(tempfile.gettempdir()))  # a Gradescope image's /autograder is not behind a 0700 folder
    results_file = root / "results" / "results.json"
    (root / "submission" / "hw.py").write_text(ATTACK.format(target=str(results_file)) + RELU)
    env = environment(mode)
    env.update(AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable)
    r = subprocess.run([str(root / "run_autograder")], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    results = json.loads(results_file.read_text())
    check_spec(results)
    assert results["output"] != "forged" and results["score"] == HONEST, (results["score"], results["output"])
    relu = next(t for t in results["tests"] if t["name"] == "ReLU")
    assert relu["score"] == relu["max_score"] == HONEST


@pytest.mark.parametrize("mode", MODES)
def test_the_cli_report_keeps_the_honest_score(tmp_path: Path, mode: str) -> None:
    need(mode)
    grant_search(tmp_path, stop=Path(tempfile.gettempdir()))
    out = tmp_path / "reports"
    out.mkdir()
    report = out / "report.json"
    sub = tmp_path / "hw.py"
    sub.write_text(ATTACK.format(target=str(report)) + RELU)
    r = subprocess.run([sys.executable, "-m", "grader", str(sub), "--device", "cpu", "--json", str(report)],
                       capture_output=True, text=True, cwd=ROOT, env=environment(mode), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr  # full marks for what it defines: exit 0
    data = json.loads(report.read_text())
    assert "forged" not in json.dumps(data)
    [submission] = data["submissions"]
    assert submission["score"] == submission["max_score"] == HONEST, submission


def test_a_worker_user_that_cannot_reach_the_grader_is_a_one_line_error(tmp_path: Path) -> None:
    """Root never runs student code as root: without namespaces (which show the worker what it needs
    however the folders above it are closed), where the worker's user cannot read the interpreter
    (a virtual environment with its own copy of Python behind a 0700 folder), every submission is
    refused with the reason."""
    if os.geteuid() != 0:
        pytest.skip("only root runs workers as another user")
    import sysconfig

    venv = tmp_path / "private" / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--copies", "--without-pip", str(venv)], check=True)
    next(venv.glob("lib/python3*/site-packages")).joinpath("course.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n" + str(ROOT) + "\n")
    (tmp_path / "private").chmod(0o700)
    sub = tmp_path / "hw.py"
    sub.write_text(RELU)
    r = subprocess.run([str(venv / "bin" / "python"), "-m", "grader", str(sub), "--device", "cpu"], capture_output=True,
                       text=True, cwd=tmp_path, env=environment("root without namespaces"), timeout=300)
    assert r.returncode == 2, r.stdout + r.stderr
    [line] = r.stderr.strip().splitlines()
    assert "submissions run as another user, who cannot read" in line and str(venv) in line, line