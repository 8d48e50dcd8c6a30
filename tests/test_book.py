"""The book: it builds with warnings as errors (the README's first command), and in a real browser
every page loads, with its figures, rendered math and no broken internal link."""
from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from grader.catalog import ACTIVATIONS, CHAPTERS, by_chapter

from conftest import ARTIFACTS

ROOT = Path(__file__).resolve().parent.parent
# Console noise of the theme that is not a rendering error (see shared FACTS).
KNOWN_CONSOLE_NOISE = ("THEBE_JS_URL", "invalid theme mode")


def toc_pages() -> list[str]:
    """Every document named in _toc.yml, without its suffix."""
    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("root", "file"):
                    yield str(value).removesuffix(".md").removesuffix(".ipynb")
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    return list(walk(yaml.safe_load((ROOT / "_toc.yml").read_text())))


GUIDES_CAPTION = "Using this course"  # the book's part that holds the guides README.md links to


def toc_part(caption: str) -> list[str]:
    """The documents of one part of _toc.yml, in order, without their suffix."""
    parts = yaml.safe_load((ROOT / "_toc.yml").read_text())["parts"]
    (part,) = [p for p in parts if p["caption"] == caption]
    return [str(c["file"]).removesuffix(".md").removesuffix(".ipynb") for c in part["chapters"]]


def test_readme_is_the_front_door() -> None:
    """README.md stays short and sends readers to the guides, which are pages of the book: every
    guide page is in the toc's part, every one is linked from the README, and every link resolves."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 150, len(readme.splitlines())
    guides = toc_part(GUIDES_CAPTION)
    assert guides == [g for g in toc_pages() if g.startswith("book/guide_")], "a guide outside its part"
    on_disk = sorted(f"book/{p.stem}" for p in (ROOT / "book").glob("guide_*.md"))
    assert sorted(guides) == on_disk, "a guide page missing from the toc"
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    local = {link.split("#")[0] for link in links if not link.startswith(("http://", "https://"))}
    for page in guides:
        assert f"{page}.md" in local, f"README.md does not link {page}.md"
    for link in local:
        assert (ROOT / link).exists(), f"README.md links {link}, which does not exist"
    # the guides send measured figures to the README's "Measured" section: it must be there
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    measured = config["repository"]["url"].rstrip("/") + "#measured"
    if any(measured in (ROOT / f"{g}.md").read_text(encoding="utf-8") for g in guides):
        assert re.search(r"(?m)^## Measured$", readme), "the guides link README.md#measured"


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    r = subprocess.run([str(jb if jb.exists() else shutil.which("jupyter-book")), "build", str(ROOT),
                        "--path-output", str(out), "--warningiserror", "--nitpick", "--keep-going"],
                       capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    return out / "_build" / "html"


def test_book_builds_every_page(html: Path) -> None:
    for page in toc_pages():
        assert (html / f"{page}.html").exists(), page
    catalogue = (html / "book/catalogue.html").read_text()
    counts = (f"{len(ACTIVATIONS)} activations in {len(CHAPTERS)} chapters, "
              f"{sum(a.in_torch for a in ACTIVATIONS)} of them torch.nn")
    assert "nn.LeakyReLU" in catalogue and counts in catalogue
    design = (html / "book/13_design.html").read_text()
    for entry in by_chapter("design"):  # every activation of the catalogue's design chapter is on its page
        assert f">{entry.name}Function</span>" in design, entry.name  # its code, in a tab
        assert f'<span class="pre">{entry.name}</span></code>' in design, entry.name  # the exercise's list
    assert (html / "mathjax" / "tex-mml-chtml.js").exists(), "MathJax is served with the book"


def notebook_pages() -> list[str]:
    return [page for page in toc_pages() if (ROOT / f"{page}.ipynb").exists()]


@pytest.mark.parametrize("page", notebook_pages())
def test_launch_and_download_buttons(page: str, html: Path) -> None:
    """Colab and Binder open this page's notebook from the repository of `_config.yml`, at a path
    that exists in the repository; the download button serves the notebook itself."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url, branch = config["repository"]["url"].rstrip("/"), config["repository"]["branch"]
    owner_repo = url.removeprefix("https://github.com/")
    text = (html / f"{page}.html").read_text()
    assert f'href="https://colab.research.google.com/github/{owner_repo}/blob/{branch}/{page}.ipynb"' in text
    assert f'href="https://mybinder.org/v2/gh/{owner_repo}/{branch}?urlpath=lab/tree/{page}.ipynb"' in text
    depth = "../" * page.count("/")
    assert f'href="{depth}_sources/{page}.ipynb"' in text
    assert (html / "_sources" / f"{page}.ipynb").read_bytes() == (ROOT / f"{page}.ipynb").read_bytes()


NO_MLX_RUN = """
import json, re, sys
import nbclient, nbformat
nb = nbformat.read("book/09_mlx.ipynb", 4)
nbclient.NotebookClient(nb, resources={"metadata": {"path": "book"}}, timeout=600).execute()
outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
glued = {o["metadata"]["scrapbook"]["name"]: json.dumps(o["data"]) for o in outputs
         if "scrapbook" in o.get("metadata", {})}
used = {k for c in nb.cells if c.cell_type == "markdown"
        for k in re.findall(r"\\{glue:(?:text|md)?\\}`([^`:]+)", c.source)}
print(json.dumps({"warning": any("MLX is not installed here" in json.dumps(o) for o in outputs),
                  "used": sorted(used), "glued": glued}))
"""


def test_mlx_chapter_without_mlx(tmp_path: Path) -> None:
    """Where MLX cannot be installed (Windows) the chapter still runs, says so, and every number
    its prose pastes reads "n/a" instead of breaking the build."""
    (tmp_path / "mlx").mkdir()
    (tmp_path / "mlx" / "__init__.py").write_text('raise ImportError("no MLX wheel for this platform")\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-c", NO_MLX_RUN], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["warning"]
    assert len(result["used"]) > 20 and set(result["used"]) <= set(result["glued"])
    assert result["glued"].pop("mlx_torch_version") != "n/a"
    assert all("n/a" in value for value in result["glued"].values())


@pytest.fixture(scope="module")
def server(html: Path):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(html))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _source_has_math(page: str) -> bool:
    for suffix in (".ipynb", ".md"):
        path = ROOT / f"{page}{suffix}"
        if path.exists():
            return "$$" in path.read_text() or "\\\\(" in path.read_text()
    return False


def _source_has_plot(page: str) -> bool:
    path = ROOT / f"{page}.ipynb"
    if path.exists():
        return "plot_derivatives(" in path.read_text() or "plt." in path.read_text()
    path = ROOT / f"{page}.md"  # a figure or an image in a markdown page (a guide's screenshot)
    return path.exists() and bool(re.search(r"```\{figure\}|!\[", path.read_text()))


@pytest.mark.parametrize("page", toc_pages())
def test_page_in_browser(page: str, html: Path, server: str, browser) -> None:
    ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    tab = ctx.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: m.type == "error" and errors.append(f"{m.text} {m.location.get('url', '')}"))
    tab.on("pageerror", lambda e: errors.append(str(e)))
    response = tab.goto(f"{server}/{page}.html")
    assert response is not None and response.ok, page
    tab.wait_for_load_state("load")
    if _source_has_math(page):
        tab.wait_for_selector("mjx-container", timeout=15000)
        raw = tab.locator("div.math:not(:has(mjx-container))").count()
        assert raw == 0, f"{page}: {raw} display formulas left as raw TeX"
    if _source_has_plot(page):
        images = tab.locator("article img")
        assert images.count() > 0, f"{page}: no figures"
        for i in range(images.count()):
            ok = images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
            assert ok, f"{page}: figure {i} did not load"
    links = tab.eval_on_selector_all("article a[href]", "as => as.map(a => a.href)")
    for link in {l.split("#")[0] for l in links if l.startswith(server)}:
        status = tab.request.head(link).status
        assert status == 200, f"{page}: broken link {link} ({status})"
    errors = [e for e in errors if not any(n in e for n in KNOWN_CONSOLE_NOISE)]
    assert not errors, f"{page}: console errors {errors}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{page.replace('/', '_')}.png"), full_page=True)
    ctx.close()
