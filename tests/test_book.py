"""The book builds from a clean tree with warnings as errors (the README's first command)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def toc_pages() -> list[str]:
    """Every file named in _toc.yml (without its suffix)."""
    import yaml

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("root", "file"):
                    yield str(value).rsplit(".", 1)[0] if str(value).endswith((".md", ".ipynb")) else str(value)
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    return list(walk(yaml.safe_load((ROOT / "_toc.yml").read_text())))


def test_book_builds_without_warnings(tmp_path: Path) -> None:
    jb = Path(sys.executable).with_name("jupyter-book")
    r = subprocess.run([str(jb if jb.exists() else shutil.which("jupyter-book")), "build", str(ROOT),
                        "--path-output", str(tmp_path), "--warningiserror", "--nitpick", "--keep-going"],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    html = tmp_path / "_build" / "html"
    for page in toc_pages():
        assert (html / f"{page}.html").exists(), page
    catalogue = (html / "book/catalogue.html").read_text()
    assert "nn.LeakyReLU" in catalogue and "28 activations in 8 chapters" in catalogue
