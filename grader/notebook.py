"""Grade the notebook you are working in, from one of its cells: ``from grader.notebook import grade``.

``grade("01_standard.ipynb")`` runs ``python -m grader`` on the file, which in Jupyter is the
notebook as last saved (so save first). In Colab there is no such file: the notebook as it is now
is asked of Colab's front end and graded from a copy. Inside the grader (a submission that still
contains this cell) it does nothing, so grading never recurses.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

RUNNING = "ACTIVATIONS_GRADER_RUNNING"   # set by the grader while it runs submission code


def colab_notebook() -> dict | None:
    """The current notebook from Colab's front end, or None outside Colab."""
    if "google.colab" not in sys.modules:
        return None
    from google.colab import _message  # only in Colab

    reply = _message.blocking_request("get_ipynb", request="", timeout_sec=60)
    if not isinstance(reply, dict) or not isinstance(reply.get("ipynb"), dict):
        raise RuntimeError("Colab did not return this notebook; save it (File > Save) and run the cell again")
    return reply["ipynb"]


def grade(path: str | os.PathLike, *options: str) -> int:
    """Grade ``path`` (or, in Colab, this notebook) and print the report; returns the grader's exit
    status. ``options`` go to the command line, e.g. ``grade("01_standard.ipynb", "-v")``."""
    if os.environ.get(RUNNING):
        print("grade(): skipped, this notebook is being graded")
        return 0
    nb = colab_notebook()
    with tempfile.TemporaryDirectory() as tmp:
        if nb is not None:
            target = Path(tmp) / Path(path).name
            target.write_text(json.dumps(nb), encoding="utf-8")
        else:
            target = Path(path)
            if not target.exists():
                print(f"grade(): {target} not found; pass this notebook's file name (and save it first)")
                return 2
        done = subprocess.run([sys.executable, "-m", "grader", str(target), *options],
                              capture_output=True, text=True)
    print((done.stdout + done.stderr).rstrip())
    return done.returncode
