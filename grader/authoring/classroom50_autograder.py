"""Classroom 50's autograder for an assignment of *Activation Functions in PyTorch*: the bundle's
``autograder.py`` (``python -m grader classroom50`` copies this file there, beside the grader's
source in ``grader/``, its settings in ``classroom50.json`` and the pinned ``requirements.txt``).

Classroom 50's runner (foundation50/classroom50, cli/gh-teacher/skeleton/dotgithub/scripts/runner.py,
``run_entrypoint``) starts it as ``[sys.executable, "autograder.py"]`` in the student's checkout,
as the runner's user, with no sandbox, and reads ``./result.json`` and ``./release-body.md`` when it
exits: a non-zero exit, or a missing or invalid result, is an error that publishes no score. So
this script always exits 0, and anything that keeps the work from being graded is a 0 with the
reason. It trusts the checkout for nothing but the files it grades:

1. it imports nothing from the checkout: Python puts this script's folder, not the working folder,
   first on ``sys.path``, and every grader it starts runs with ``-P -s`` from a folder of its own;
2. it installs the pinned requirements into a virtual environment of its own (CPU torch from
   PyTorch's index first), unless ``ACTIVATIONS_GRADER_PYTHON`` names an interpreter that has them
   (a self-hosted runner's image, or the course's tests);
3. it copies the work (``exercises/``'s notebooks and .py files, no link, nothing hidden) and the
   grader into a folder every user can read but only this one can write;
4. it runs the grader as root, with ``sudo -n`` where the job has it (GitHub's hosted runners give it
   passwordless sudo), so that the grader's worker runs the student's code as another, unprivileged
   user, who can write neither this folder, nor the checkout, nor the bundle; where neither root
   nor sudo is at hand, it grades anyway and says, in the result and the release body, that the
   grading was not isolated;
5. once the grader has exited (its workers with it), it turns the grader's report into the result
   and the release body (``python -m grader classroom50 --result``), and writes them itself.

It uses the standard library and the bundle's ``grader.report`` alone until the requirements are
installed.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG = "classroom50.json"
PREINSTALLED = "ACTIVATIONS_GRADER_PYTHON"
SUFFIXES = (".ipynb", ".py")
WORK = "exercises"  # what of the checkout is the student's work
MAX_FILES = 64
MAX_BYTES = 20 * 2**20  # per file: a notebook with its outputs, not a data set
SKIPPED = {"__pycache__", "__MACOSX", "node_modules", "site-packages"}
RESULT, BODY = "result.json", "release-body.md"


class NotGraded(Exception):
    """Why the work cannot be graded, for the student (one line)."""


def _elapsed(start: float) -> float:
    return time.monotonic() - start


STARTED = time.monotonic()


def _run(cmd: list[str], timeout: float, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # the job's log says where its 15 minutes went
    print(f"autograder: [{time.monotonic() - STARTED:.0f} s] $ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=cwd, env=env, timeout=max(timeout, 1), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")


def _tail(output: str) -> str:
    lines = [l for l in (output or "").splitlines() if l.strip()]
    return lines[-1][:200] if lines else "no output"


def _readable(path: Path) -> None:
    """Every user may read (and enter) ``path`` and what it holds; only its owner may write."""
    for folder, dirs, files in os.walk(path):
        os.chmod(folder, 0o755)
        for name in files:
            file = os.path.join(folder, name)
            mode = os.lstat(file).st_mode
            if not stat.S_ISLNK(mode) and mode & 0o444 != 0o444:
                os.chmod(file, stat.S_IMODE(mode) | 0o444)


def workspace_folder() -> Path:
    """A folder of this user's that the worker's user can read: not under the runner's home, which
    other users may not enter."""
    base = "/tmp" if os.path.isdir("/tmp") else None
    work = Path(tempfile.mkdtemp(prefix="activations-grader-", dir=base))
    os.chmod(work, 0o755)
    return work


def copy_work(checkout: Path, into: Path) -> tuple[list[str], list[str]]:
    """The checkout's ``exercises/`` notebooks and .py files, copied into ``into`` (relative paths
    kept), and what was left out, with why; no symbolic link is followed and nothing hidden is taken."""
    source = checkout / WORK
    found: list[str] = []
    left: list[str] = []
    if not source.is_dir() or source.is_symlink():
        return found, left
    for folder, dirs, files in os.walk(source, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED
                         and not os.path.islink(os.path.join(folder, d)))
        for name in sorted(files):
            path = Path(folder) / name
            if name.startswith(".") or not name.endswith(SUFFIXES) or path.is_symlink() or not path.is_file():
                continue
            relative = path.relative_to(checkout)
            if path.stat().st_size > MAX_BYTES or len(found) >= MAX_FILES:
                left.append(f"{relative.as_posix()} (over {MAX_BYTES // 2**20} MB)" if path.stat().st_size > MAX_BYTES
                            else f"{relative.as_posix()} (more than {MAX_FILES} files)")
                continue
            (into / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, into / relative)
            found.append(relative.as_posix())
    return found, left


def install(venv: Path, config: dict, seconds: float, cwd: Path) -> Path:
    """A virtual environment with the pinned requirements; returns its Python."""
    start = time.monotonic()
    r = _run([sys.executable, "-I", "-m", "venv", str(venv)], seconds, cwd)
    if r.returncode:
        raise NotGraded(f"could not make a virtual environment ({_tail(r.stdout)})")
    python = venv / "bin" / "python"
    pip = [str(python), "-I", "-m", "pip", "install", "--quiet", "--no-input", "--disable-pip-version-check"]
    # torch first, from PyTorch's CPU index: PyPI's torch for Linux is a multi-GB CUDA build
    for args in (["--index-url", config["torch_index"], f"torch=={config['torch']}"],
                 ["-r", str(HERE / "requirements.txt")]):
        r = _run([*pip, *args], seconds - (time.monotonic() - start), cwd)
        print(r.stdout, flush=True)
        if r.returncode:
            raise NotGraded(f"could not install the grader's requirements ({_tail(r.stdout)})")
    return python


def isolation() -> tuple[list[str], str]:
    """How to start the grader so that the student's code cannot touch what grades it: the command
    prefix, and "" or why the grading is not isolated."""
    if os.geteuid() == 0:
        return [], ""
    sudo = shutil.which("sudo")
    if sudo:
        try:
            ok = subprocess.run([sudo, "-n", "true"], stdin=subprocess.DEVNULL, capture_output=True,
                                timeout=30).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return [sudo, "-n", "--"], ""
    return [], ("graded without isolation: this grading job has neither root nor passwordless sudo, so the "
                "student's code ran as the same user as the autograder and could have changed this result")


def grade(checkout: Path, config: dict, start: float) -> tuple[dict, str]:
    """Grade the checkout; returns the result and the release body."""
    seconds = float(config.get("seconds", 720))
    version = "%d.%d" % sys.version_info[:2]
    if not os.environ.get(PREINSTALLED) and version not in config.get("pythons", ()):
        raise NotGraded(f"the grading job runs Python {version}; the grader needs {', '.join(config['pythons'])}: "
                        f"set the assignment's runtime.python to {config['pythons'][0]}")
    work = workspace_folder()
    try:
        return _grade_in(work, checkout, config, start, seconds)
    finally:
        # a gigabyte of torch: not worth the seconds where the machine is thrown away after the job
        if os.environ.get("GITHUB_ACTIONS") != "true":
            shutil.rmtree(work, ignore_errors=True)


def _grade_in(work: Path, checkout: Path, config: dict, start: float, seconds: float) -> tuple[dict, str]:
    source = work / "source"
    shutil.copytree(HERE / "grader", source / "grader", ignore=shutil.ignore_patterns("__pycache__"))
    submission = work / "submission"
    submission.mkdir()
    files, left = copy_work(checkout, submission)
    out = work / "out"
    out.mkdir()
    python = os.environ.get(PREINSTALLED) or str(install(source / "venv", config, seconds * 0.7, work))
    _readable(work)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": str(source), "MPLBACKEND": "Agg", "HOME": str(work),
           # the grader's own settings (ACTIVATIONS_GRADER_UNPRIVILEGED), which the workflow may set
           **{k: v for k, v in os.environ.items() if k.startswith("ACTIVATIONS_GRADER_") and k != PREINSTALLED}}
    chapters = [a for c in config["chapters"] for a in ("--chapter", c)]
    # where mount namespaces are allowed, the student's code sees the checkout and the bundle empty
    hidden = [a for folder in (checkout, HERE) if folder not in work.parents and folder != work
              for a in ("--hide", str(folder))]
    report = out / "report.json"
    prefix, not_isolated = isolation()
    notes = [n for n in (not_isolated, left and "not graded: " + ", ".join(left[:5])) if n]
    if files:
        budget = max(seconds - _elapsed(start) - 60, 30)
        grader = [python, "-P", "-s", "-m", "grader", *files, "--device", "cpu", *chapters, "--json", str(report),
                  "--time-budget", f"{budget:.0f}", *hidden]
        if prefix:  # sudo resets the environment: hand the grader's over explicitly
            grader = [*prefix, "env", *(f"{k}={v}" for k, v in env.items()), *grader]
        r = _run(grader, budget + 60, submission, env)
        print(r.stdout[-20000:], flush=True)
        text = _read(report, prefix)
        if text is None:
            raise NotGraded(f"the grader wrote no report (exit status {r.returncode}: {_tail(r.stdout)})")
    else:
        text = json.dumps({"assignment": config["chapters"], "submissions": []})
    copy = work / "report.json"
    copy.write_text(text, encoding="utf-8")
    into = work / "result"
    convert = [python, "-P", "-s", "-m", "grader", "classroom50", "--result", str(copy),
               "--config", str(HERE / CONFIG), "--into", str(into)]
    if notes:
        convert += ["--note", "; ".join(notes)]
    r = _run(convert, 120, work, {**os.environ, **env})
    print(r.stdout, flush=True)
    try:
        result = json.loads((into / RESULT).read_text(encoding="utf-8"))
        body = (into / BODY).read_text(encoding="utf-8")
    except (OSError, ValueError):
        raise NotGraded(f"could not turn the grader's report into a result ({_tail(r.stdout)})") from None
    return result, body


def _read(path: Path, prefix: list[str]) -> str | None:
    """A file the grader wrote: as root, it is root's alone; ``sudo cat`` reads it."""
    try:
        if prefix:
            r = subprocess.run([*prefix, "cat", str(path)], capture_output=True, text=True, timeout=60)
            return r.stdout if r.returncode == 0 else None
        return path.read_text(encoding="utf-8")
    except (OSError, subprocess.TimeoutExpired, UnicodeDecodeError):
        return None


def put(checkout: Path, name: str, text: str) -> None:
    """Write ``checkout/name`` in one rename: whatever stands there (a link, a folder) is replaced,
    never written through."""
    target = checkout / name
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    fd, tmp = tempfile.mkstemp(dir=checkout, prefix=f".{name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)


def main() -> int:
    start = time.monotonic()
    checkout = Path.cwd()
    sys.path.insert(0, str(HERE))  # the bundle's grader, whatever the checkout holds
    from grader.report import classroom50

    config: dict = {}
    try:
        config = json.loads((HERE / CONFIG).read_text(encoding="utf-8"))
        result, body = grade(checkout, config, start)
    except Exception as exc:  # noqa: BLE001 - a 0 with the reason, never an exit the runner calls an error
        reason = str(exc) if isinstance(exc, NotGraded) else f"the autograder failed ({type(exc).__name__}: {exc})"
        print(f"::warning::not graded: {reason}", flush=True)
        result, body = classroom50.not_graded(os.environ, config.get("max_scores", {}), config.get("chapter_of", {}),
                                              reason)
    put(checkout, RESULT, json.dumps(result, indent=2) + "\n")
    put(checkout, BODY, body)
    print(f"autograder: {result['score']}/{result['max-score']} points in {_elapsed(start):.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
