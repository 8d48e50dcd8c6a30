"""Grading from inside an exercise notebook: ``from grader.notebook import check, grade``.

``check("LeakyReLU")`` grades one activation from what the kernel defines *now* (no need to save),
with the checks and messages of ``python -m grader``, and shows a table, the first failure's hint
and a picture of it. It runs in the kernel's own process: it is the student's own code, run the way
the student runs it; the sandbox is for graded runs.

``grade()`` grades the whole notebook as ``python -m grader`` does, in a sandboxed worker. In
Jupyter that is the notebook as last saved (so save first); in Colab there is no such file, so the
notebook as it is now is asked of Colab's front end and graded from a copy. Inside the grader (a
submission that still contains these cells) both do nothing, so grading never recurses.

Importing this module is cheap: every exercise does it; the grader's machinery loads on first use.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

RUNNING = "ACTIVATIONS_GRADER_RUNNING"   # set by the grader while it runs submission code
CHECK_TIMEOUT = 10.0  # seconds per check in a notebook: an infinite loop should not hold a student long


def check(activation: str, *, device: str = "all", timeout: float = CHECK_TIMEOUT,
          namespace: dict | None = None):
    """Run every check of ``activation`` (``"LeakyReLU"`` or ``"leaky_relu"``) on the definitions of
    this kernel (or of ``namespace``) and return the result: ``score``, ``max_score`` and ``checks``
    (each with ``name``, ``passed``, ``message``, ``hint``). It reports failures; it does not raise.
    ``device`` as the grader's ``--device`` (CUDA checks are skipped without CUDA)."""
    if os.environ.get(RUNNING):
        return None
    if namespace is None:
        namespace = kernel_namespace(sys._getframe(1).f_globals)
    from .live import run

    return run(activation, namespace, device, timeout)


def kernel_namespace(fallback: dict) -> dict:
    """The interactive namespace of IPython when there is one, else ``fallback`` (the caller's globals)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell.user_ns if shell is not None else fallback


def colab_notebook() -> dict | None:
    """The current notebook from Colab's front end, or None outside Colab."""
    if "google.colab" not in sys.modules:
        return None
    from google.colab import _message  # only in Colab

    reply = _message.blocking_request("get_ipynb", request="", timeout_sec=60)
    if not isinstance(reply, dict) or not isinstance(reply.get("ipynb"), dict):
        raise RuntimeError("Colab did not return this notebook; save it (File > Save) and run the cell again")
    return reply["ipynb"]


def notebook_path(namespace: dict | None = None, cwd: Path | None = None) -> Path | None:
    """This notebook's file, where the front end makes it knowable: VS Code's ``__vsc_ipynb_file__``,
    jupyter-server's ``JPY_SESSION_NAME``; else the one notebook in the working directory whose code
    cells contain what this kernel ran (IPython's ``In``). None when that is not one file."""
    ns = namespace if namespace is not None else kernel_namespace({})
    cwd = cwd or Path.cwd()
    candidates = [ns.get("__vsc_ipynb_file__"), os.environ.get("JPY_SESSION_NAME")]
    for name in filter(None, candidates):
        for path in (Path(str(name)), cwd / Path(str(name)).name):
            if path.suffix == ".ipynb" and path.is_file():
                return path
    ran = {src.strip() for src in ns.get("In", []) if isinstance(src, str) and src.strip()}
    scores = []
    for path in sorted(cwd.glob("*.ipynb")):
        try:
            cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
            sources = {("".join(c["source"]) if isinstance(c["source"], list) else c["source"]).strip()
                       for c in cells if c.get("cell_type") == "code"}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        scores.append((len(ran & sources), path))
    scores.sort(key=lambda s: -s[0])
    if scores and scores[0][0] > 0 and (len(scores) == 1 or scores[1][0] < scores[0][0]):
        return scores[0][1]
    return None


def grade(path: str | os.PathLike | None = None, *options: str) -> int:
    """Grade this notebook (or ``path``) and print the report; returns the grader's exit status.
    ``options`` go to the command line, e.g. ``grade("-v")`` or ``grade("01_standard.ipynb", "-v")``."""
    if os.environ.get(RUNNING):
        print("grade(): skipped, this notebook is being graded")
        return 0
    if path is not None and str(path).startswith("-"):
        path, options = None, (str(path), *options)
    nb = colab_notebook()
    with tempfile.TemporaryDirectory() as tmp:
        if nb is not None:
            name = Path(path).name if path else (nb.get("metadata", {}).get("colab", {}).get("name") or "notebook.ipynb")
            target = Path(tmp) / Path(name).name
            target.write_text(json.dumps(nb), encoding="utf-8")
        else:
            target = Path(path) if path is not None else notebook_path()
            if target is None:
                print('grade(): cannot tell which notebook this is; pass its file name, e.g. grade("01_standard.ipynb") '
                      "(and save it first)")
                return 2
            if not target.exists():
                print(f"grade(): {target} not found; pass this notebook's file name (and save it first)")
                return 2
        done = subprocess.run([sys.executable, "-m", "grader", str(target), *options],
                              capture_output=True, text=True)
    print((done.stdout + done.stderr).rstrip())
    return done.returncode
