"""Grading from inside an exercise notebook: ``from grader.notebook import check, grade``.

``check("LeakyReLU")`` grades one activation from what the kernel defines *now* (no need to save),
with the checks and messages of ``python -m grader``, and shows a table, the first failure's hint
and a picture of it. It runs in the kernel's own process: it is the student's own code, run the way
the student runs it; the sandbox is for graded runs.

``grade()`` grades the whole notebook as ``python -m grader`` does, in a sandboxed worker, and
returns the report (shown as the cell's output; its ``returncode`` is the grader's exit status). In
Jupyter that is the notebook as last saved (so save first: when the kernel ran definitions the saved
file lacks, the report says so first); in Colab there is no such file, so the notebook as it is now
is asked of Colab's front end and graded from a copy. Inside the grader (a submission that still
contains these cells) both do nothing, so grading never recurses.

Importing this module is cheap: every exercise does it; the grader's machinery loads on first use.
"""
from __future__ import annotations

import ast
import html
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from grader.core.env import RUNNING

if TYPE_CHECKING:
    from grader.report.model import SubmissionResult

CHECK_TIMEOUT = 10.0  # seconds per check in a notebook: an infinite loop should not hold a student long


def check(activation: str, *, device: str = "all", timeout: float = CHECK_TIMEOUT,
          namespace: dict | None = None):
    """Run every check of ``activation`` (``"LeakyReLU"`` or ``"leaky_relu"``; in the MLX and 8-bit
    notebooks that chapter's exercise; an exercise's key such as ``"MLX ReLU"`` or ``"Quantized
    ReLU6"`` anywhere) on the definitions of this kernel (or of ``namespace``) and return the result:
    ``score``, ``max_score`` and ``checks`` (each with ``name``, ``passed``, ``message``, ``hint``).
    It reports failures; it does not raise.
    ``device`` as the grader's ``--device`` (CUDA checks are skipped without CUDA)."""
    if os.environ.get(RUNNING):
        return None
    if namespace is None:
        namespace = kernel_namespace(sys._getframe(1).f_globals)
    from grader.run.live import run

    return run(activation, namespace, device, timeout)


def kernel_namespace(fallback: dict) -> dict:
    """The interactive namespace of IPython when there is one, else ``fallback`` (the caller's globals)."""
    shell = _shell()
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


UNSAVED = "the saved file differs from what you ran: save (Ctrl+S) and run this cell again"


@dataclass
class GradeReport:
    """What ``grade()`` returns: the grader's verdict on the notebook, shown as its report (not as the
    grader's exit status, which is ``returncode``: 0 full marks, 1 less, 2 not graded)."""

    path: str
    returncode: int
    result: "SubmissionResult | None" = None  # the file's result, as python -m grader's --json wrote it
    text: str = ""  # the report for people (python -m grader's table, every note)
    warning: str = ""  # said before the report: the saved file is not what the kernel ran
    error: str = ""  # why nothing was graded
    verbose: bool = False

    @property
    def exercises(self) -> list:
        """The graded exercises (:class:`grader.report.model.ExerciseResult`)."""
        return self.result.exercises if self.result is not None else []

    @property
    def score(self) -> int:
        return sum(e.score for e in self.exercises)

    @property
    def max_score(self) -> int:
        return sum(e.max_score for e in self.exercises)

    def __str__(self) -> str:
        return "\n".join(filter(None, [self.warning and f"Note: {self.warning}", self.error or self.text]))

    __repr__ = __str__

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        parts = []
        if self.warning:
            parts.append(f'<p style="color:#9a3b00;font-weight:600;text-align:left">⚠ {html.escape(self.warning)}</p>')
        if self.error or self.result is None:
            parts.append(f"<pre>{html.escape(self.error or self.text)}</pre>")
        else:
            parts.append(self.result._repr_html_(self.verbose))
        return "\n".join(parts)

    def _ipython_display_(self) -> None:
        """The report as the cell's output, without an ``Out[n]`` value."""
        from IPython.display import display

        display({"text/html": self._repr_html_(), "text/plain": str(self)}, raw=True)


def grade(path: str | os.PathLike | None = None, *options: str) -> GradeReport | None:
    """Grade this notebook (or ``path``) as ``python -m grader`` does and return the report, which a
    notebook shows as the cell's output (a script gets it printed). ``options`` go to the command
    line, e.g. ``grade("-v")`` or ``grade("01_standard.ipynb", "-v")``. In Jupyter the file is graded
    as last saved: when the kernel ran definitions that the saved file lacks, the report says so first."""
    if os.environ.get(RUNNING):
        print("grade(): skipped, this notebook is being graded")
        return None
    if path is not None and str(path).startswith("-"):
        path, options = None, (str(path), *options)
    result = _grade(path, options)
    if _shell() is None:  # no front end to display the result
        print(result)
    return result


def _grade(path: str | os.PathLike | None, options: tuple[str, ...]) -> GradeReport:
    nb = colab_notebook()
    warning = ""
    with tempfile.TemporaryDirectory() as tmp:
        if nb is not None:
            name = Path(path).name if path else (nb.get("metadata", {}).get("colab", {}).get("name") or "notebook.ipynb")
            target = Path(tmp) / Path(name).name
            target.write_text(json.dumps(nb), encoding="utf-8")
        else:
            here = notebook_path()  # the kernel's own notebook: only its saved file can lag behind the kernel
            target = Path(path) if path is not None else here
            if target is None:
                return GradeReport("", 2, error='grade(): cannot tell which notebook this is; pass its file name, '
                                   'e.g. grade("01_standard.ipynb") (and save it first)')
            if not target.exists():
                return GradeReport(str(target), 2, error=f"grade(): {target} not found; pass this notebook's file "
                                   "name (and save it first)")
            if here is not None and here.resolve() == target.resolve() and unsaved(target):
                warning = UNSAVED
        report = Path(tmp) / "grade.json"
        done = subprocess.run([sys.executable, "-m", "grader", str(target), "--json", str(report), *options],
                              capture_output=True, text=True)
        data = json.loads(report.read_text(encoding="utf-8")) if report.is_file() else None
    output = (done.stdout + done.stderr).rstrip()
    verbose = any(o in ("-v", "--verbose") for o in options)
    submissions = (data or {}).get("submissions") or [None]
    if submissions[0] is None:  # options that replaced the report (--json elsewhere), or a usage error
        return GradeReport(str(target), done.returncode, text=output, warning=warning, verbose=verbose)
    return from_json(submissions[0], done.returncode, verbose, warning, done.stderr.strip())


def from_json(data: dict, returncode: int, verbose: bool = False, warning: str = "", stderr: str = "") -> GradeReport:
    """The report of one submission (an item of ``submissions`` in ``python -m grader --json``'s
    report), its table with every note, as ``check()`` shows them."""
    from grader.report.model import SubmissionResult

    result = SubmissionResult.from_json(data)
    text = result.table(verbose, notes=None)
    error = "\n".join(filter(None, [text, stderr])) if result.error else ""
    return GradeReport(data["path"], returncode, result, text, warning, error, verbose)


# ---------------------------------------------------------------------------- unsaved changes

def _shell():
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None


def executed_inputs() -> list[str]:
    """The cells this kernel ran, in order, as typed (IPython's raw history; else its ``In``)."""
    shell = _shell()
    if shell is None:
        return []
    history = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None)
    if history is None:
        history = shell.user_ns.get("In", [])
    return [src for src in history if isinstance(src, str)]


def unsaved(path: Path, inputs: list[str] | None = None) -> bool:
    """Whether the kernel ran a definition that the saved notebook ``path`` does not hold."""
    if path.suffix != ".ipynb":
        return False
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        saved = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                 for c in cells if c.get("cell_type") == "code"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    return bool(differing(saved, executed_inputs() if inputs is None else inputs))


def differing(saved: list[str], inputs: list[str]) -> list[str]:
    """The names, graded or defined by the saved cells, whose last definition that ran (``inputs``,
    oldest first) is not one of the ``saved`` cells. A definition run from a scratch cell that the
    file lacks counts; an old version redefined later, or a scratch name the file never defines, does not."""
    from grader.spec.catalog import ACTIVATIONS

    saved_normal = {_normal(src) for src in saved}
    watched = {n for a in ACTIVATIONS for n in a.names}
    for src in saved:
        watched |= _defines(src)
    last: dict[str, str] = {}
    for src in inputs:
        for name in _defines(src) & watched:
            last[name] = src
    return sorted(name for name, src in last.items() if _normal(src) not in saved_normal)


def _normal(source: str) -> str:
    """A cell's code as the kernel runs it (magics as IPython rewrites them: ``In`` holds that form),
    without trailing spaces or blank lines at either end."""
    source = _python(source) or source
    return "\n".join(line.rstrip() for line in source.strip("\n").splitlines()).strip("\n")


def _python(source: str) -> str | None:
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:
        return None
    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # IPython's own parser on a half-written cell: compare it as typed
        return None


def _defines(source: str) -> set[str]:
    """The names a cell defines at top level: functions, classes, assignments."""
    try:
        tree = ast.parse(_python(source) or source)
    except (SyntaxError, ValueError):
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names
