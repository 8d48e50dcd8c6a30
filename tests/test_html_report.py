"""`python -m grader SUBMISSION --html PAGE`: a self-contained page with every failure, its hint and
its picture, drawn by the parent from what the worker recorded; it renders in Chromium."""
from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import ARTIFACTS

ROOT = Path(__file__).resolve().parent.parent

WRONG = [
    "def sigmoid(input):\n    return 1 / (1 + torch.exp(-input))\n",
    "def tanh(input):\n    return (torch.exp(input) - torch.exp(-input)) / (torch.exp(input) + torch.exp(-input))\n",
]


def grader(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("html")
    nb = nbformat.read(ROOT / "solutions" / "01_standard.ipynb", 4)
    nb.cells += [nbformat.v4.new_code_cell(code) for code in WRONG]
    nbformat.write(nb, tmp / "student.ipynb")
    (tmp / "broken.ipynb").write_text("{not json")
    out = tmp / "out" / "feedback.html"
    r = grader(str(tmp / "student.ipynb"), str(tmp / "broken.ipynb"), "--device", "cpu", "--html", str(out))
    assert r.returncode == 1, r.stdout + r.stderr
    return out


def test_page_has_every_failure_with_its_hint_and_picture(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert "student.ipynb" in text and "broken.ipynb" in text and "Cannot be graded" in text
    failures = re.findall(r'<div class="failure"><p><strong><code>([^<]+)</code></strong>: ([^<]*)</p>', text)
    assert len(failures) >= 4
    assert ("edges", "sigmoid() float32: grad is nan at x=-100.0, torch gives 0.0") in failures
    assert ("edges", "tanh() float32: value is nan at x=100.0, torch gives 1.0") in failures
    assert "exp(-|x|)" in text and "inf/inf for large |x|" in text  # the two activations' own hints
    # every values/grad/edges/kinks failure of these elementwise activations has its picture
    plotted = sum(1 for name, _ in failures if name.split("[")[0] in ("values", "grad", "edges", "kinks"))
    images = re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', text)
    assert len(images) == plotted > 0
    assert all(base64.b64decode(data).startswith(b"\x89PNG") for _, data in images)
    assert any(alt.startswith("Sigmoid edges:") and "-100.0" in alt for alt, _ in images)
    # self-contained: nothing to fetch, nothing to run
    assert "<script" not in text
    assert not re.search(r'(?:src|href)="(?!data:)', text)


def test_page_renders_in_chromium(page: Path, browser) -> None:
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    tab = ctx.new_page()
    errors: list[str] = []
    fetched: list[str] = []
    tab.on("console", lambda m: m.type == "error" and errors.append(m.text))
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.on("request", lambda r: fetched.append(r.url))
    response = tab.goto(page.as_uri())
    assert response is not None and response.ok
    tab.wait_for_load_state("load")
    images = tab.locator("img")
    assert images.count() > 0
    for i in range(images.count()):
        assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0"), f"image {i} did not render"
    assert tab.locator("table.checks").count() >= 3
    assert not errors, errors
    assert [u for u in fetched if not u.startswith(("file:", "data:"))] == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "feedback.png"), full_page=True)
    ctx.close()


def test_html_path_that_cannot_be_written_is_a_one_line_error(tmp_path: Path) -> None:
    sub = tmp_path / "relu.py"
    sub.write_text("import torch\ndef relu(input, inplace=False):\n    return input.abs()\n")
    (tmp_path / "file").write_text("")
    r = grader(str(sub), "--device", "cpu", "--html", str(tmp_path / "file" / "feedback.html"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: --html "), r.stderr
