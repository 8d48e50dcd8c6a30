"""An instructor adds an activation torch does not have by following the book's "Add an activation"
page (book/guide_add_activation.md) literally: its four code blocks (reference, catalogue entry,
solution cell, check cell) go into the files the page names, in a temporary copy of the whole course,
then the exercises are regenerated as `make exercises` does. Nothing else is edited. In that copy the
new activation earns full marks, the mistakes the page warns about lose marks, and the catalogue,
reference, check() and book tests pass. The book is built with every page of the table of contents,
the design chapter and the catalogue page executed; the other chapters are replaced by their titles
(they read only torch's entries, and the MLX chapter only counts the catalogue): executing them all
takes over 10 minutes on 2 cores, the design chapter took 33 to 51 s here and the whole test 140 s.
One test: it runs once in the suite."""
from __future__ import annotations

import html as html_lib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from grader.catalog import ACTIVATIONS

ROOT = Path(__file__).resolve().parent.parent
DESIGN = "09_design.ipynb"
KEEP = {"13_design.ipynb", "catalogue.ipynb"}  # the book's pages that read the design entries


GUIDE = ROOT / "book" / "guide_add_activation.md"


def guide_blocks() -> list[str]:
    """The code blocks of the "Add an activation" page, without the list's indentation."""
    text = GUIDE.read_text(encoding="utf-8")
    blocks = re.findall(r"\n( *)```python\n(.*?)\n *```", text, re.S)
    return [re.sub(rf"(?m)^{indent}", "", code) + "\n" for indent, code in blocks]


def guide_files() -> tuple[str, str]:
    """Where the page says the reference and the catalogue entry go (paths in the repository)."""
    text = GUIDE.read_text(encoding="utf-8")
    (references,) = re.findall(r"\*\*A reference\*\*, appended to `([^`]+\.py)`", text)
    (catalog,) = re.findall(r"\*\*A catalogue entry\*\*, appended to `ACTIVATIONS` in `([^`]+\.py)`", text)
    return references, catalog


def _copy_of_the_course(tmp: Path) -> Path:
    repo = tmp / "course"
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(
        ".git", ".venv", "_build", "_mathjax", "artifacts", "__pycache__", "*.egg-info", ".pytest_cache"))
    mathjax = repo / "_mathjax" / "mathjax" / "tex-mml-chtml.js"  # html_extra_path (`make mathjax`)
    mathjax.parent.mkdir(parents=True)
    source = ROOT / "_mathjax" / "mathjax" / "tex-mml-chtml.js"
    mathjax.write_bytes(source.read_bytes() if source.exists() else b"")
    return repo


def _append_cell(notebook: Path, source: str, tags: list[str]) -> None:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    cell = {"cell_type": "code", "execution_count": None, "metadata": {"tags": tags} if tags else {},
            "outputs": [], "source": source}
    if (nb["nbformat"], nb["nbformat_minor"]) >= (4, 5):
        cell["id"] = uuid.uuid4().hex[:8]
    nb["cells"].append(cell)
    notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def follow_the_guide(repo: Path) -> None:
    reference, entry, solution, check = guide_blocks()
    references_file, catalog_file = guide_files()
    assert (repo / references_file).is_file() and (repo / catalog_file).is_file(), (references_file, catalog_file)
    with open(repo / references_file, "a", encoding="utf-8") as f:
        f.write("\n\n" + reference)
    catalog = repo / catalog_file
    text = catalog.read_text(encoding="utf-8")
    end = "\n)\n\nBY_NAME"  # the end of ACTIVATIONS
    assert text.count(end) == 1
    catalog.write_text(text.replace(end, "\n" + entry.rstrip("\n") + end), encoding="utf-8")
    _append_cell(repo / "solutions" / DESIGN, solution.rstrip("\n"), [])
    _append_cell(repo / "solutions" / DESIGN, check.rstrip("\n"), ["check"])
    for module in ("grader.authoring.exercises", "grader.authoring.launch"):  # `make exercises`
        r = _run(repo, "-m", module)
        assert r.returncode == 0, r.stdout + r.stderr


def _run(repo: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(repo)}
    return subprocess.run([sys.executable, *args], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _variant(repo: Path, tmp: Path, name: str, old: str, new: str) -> Path:
    """The solution notebook with its last solution cell edited: a mistake the page warns about."""
    nb = json.loads((repo / "solutions" / DESIGN).read_text(encoding="utf-8"))
    cell = nb["cells"][-2]
    assert old in cell["source"], old
    cell["source"] = cell["source"].replace(old, new)
    path = tmp / f"{name}.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def test_an_instructor_adds_an_activation_by_the_guide(tmp_path: Path) -> None:
    repo = _copy_of_the_course(tmp_path)
    follow_the_guide(repo)

    # the exercise: stubs where the answers were, and a check cell for the new activation
    exercise = json.loads((repo / "exercises" / DESIGN).read_text(encoding="utf-8"))
    sources = ["".join(c["source"]) for c in exercise["cells"]]
    stub = next(s for s in sources if "def bipolar_sigmoid" in s)
    assert stub.count("raise NotImplementedError") == 6 and "expm1" not in stub
    assert sources[sources.index(stub) + 1].endswith('check("BipolarSigmoid")')

    # graded against the new reference: full marks for the solution; the page's warnings hold
    body = "    x = _compute(input)\n    m = torch.where(x < 0, x, -x)"
    wrong = {
        "naive": _variant(repo, tmp_path, "naive", body, "    return 2 / (1 + torch.exp(-input)) - 1\n" + body),
        "tanh": _variant(repo, tmp_path, "tanh", body,
                         "    return _finish(input, torch.tanh(_compute(input) / 2), inplace)\n" + body),
        "abs": _variant(repo, tmp_path, "abs", "torch.where(x < 0, x, -x)", "-x.abs()"),
        "no_inplace": _variant(repo, tmp_path, "no_inplace", "torch.where(x < 0, -t, t), inplace)",
                               "torch.where(x < 0, -t, t))"),
    }
    report = tmp_path / "r.json"
    graded = _run(repo, "-m", "grader", f"solutions/{DESIGN}", *map(str, wrong.values()), "--device", "cpu",
                  "--json", str(report))
    assert graded.returncode == 1, graded.stdout + graded.stderr
    results = {}
    for submission in json.loads(report.read_text())["submissions"]:
        (new,) = [e for e in submission["exercises"] if e["name"] == "BipolarSigmoid"]
        results[Path(submission["path"]).stem] = new
    right = results.pop("09_design")
    assert right["score"] == right["max_score"] > 10, right
    assert {c["name"] for c in right["checks"]} >= {"api", "values[float16]", "edges", "module", "inplace",
                                                    "function", "gradcheck", "forbidden"}
    failed = {name: {c["name"]: c["message"] for c in r["checks"] if c["passed"] is False}
              for name, r in results.items()}
    assert "grad is nan at x=-100.0" in failed["naive"].get("edges", ""), failed["naive"]
    assert set(failed["tanh"]) == {"forbidden"}, failed["tanh"]
    assert "grad" in failed["abs"].get("edges", "") and "x=0.0" in failed["abs"]["edges"], failed["abs"]
    assert set(failed["no_inplace"]) == {"inplace"}, failed["no_inplace"]

    # the tests of what reads the catalogue, in the copy: their unit tier, which holds every test
    # parametrised by the catalogue (the slow tier's start the grader or an interpreter on existing
    # chapters, and read nothing of a new entry)
    r = _run(repo, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "-m", "not slow",
             "tests/test_catalog.py", "tests/test_references.py", "tests/test_check.py")
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert "BipolarSigmoid" in _run(repo, "-m", "pytest", "--collect-only", "-q", "-n", "0",
                                    "tests/test_references.py").stdout

    # the book: every page of the table of contents built (warnings are errors), the design chapter
    # and the catalogue page executed; the other chapters are their titles only
    for page in (repo / "book").glob("*.ipynb"):
        if page.name not in KEEP:
            nb = json.loads(page.read_text(encoding="utf-8"))
            title = "".join(nb["cells"][0]["source"]).split("\n")[0]
            nb["cells"] = [{"cell_type": "markdown", "metadata": {}, "source": title}]
            page.write_text(json.dumps(nb), encoding="utf-8")
    base = tmp_path / "pytest-book"
    r = _run(repo, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "--basetemp", str(base),
             "tests/test_book.py", "-k", "builds_every_page or launch_and_download")
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    html = base / "book0" / "_build" / "html"  # where the html fixture of test_book built it
    page = (html / "book" / "13_design.html").read_text(encoding="utf-8")
    text = html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))
    # test_book found its code and its name in the exercise; here its rows in the chapter's table, in
    # the checklist (f(0) = 0, f'(0) = 0.5, the ends -1 and 1) and in the training run, and the count
    # of the Functions that pass gradcheck
    assert "BipolarSigmoid bipolar_sigmoid BipolarSigmoid The bipolar sigmoid" in text
    assert "BipolarSigmoid C∞ 0, 0.5 → −1, → 1 " in text
    assert re.search(r"BipolarSigmoid 0\.\d{3} ± 0\.\d{3} ", text)
    n = len([e for e in ACTIVATIONS if e.chapter == "design"]) + 1
    assert f"( {n} of {n} )" in text or f"({n} of {n})" in text
