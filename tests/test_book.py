"""The book builds from a clean tree with warnings as errors (the README's first command)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_book_builds_without_warnings(tmp_path: Path) -> None:
    jb = Path(sys.executable).with_name("jupyter-book")
    r = subprocess.run([str(jb if jb.exists() else shutil.which("jupyter-book")), "build", str(ROOT),
                        "--path-output", str(tmp_path), "--warningiserror", "--nitpick", "--keep-going"],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    html = tmp_path / "_build" / "html"
    for page in ["book/intro.html", "book/catalogue.html"]:
        assert (html / page).exists(), page
    catalogue = (html / "book/catalogue.html").read_text()
    assert "nn.LeakyReLU" in catalogue and "28 activations in 8 chapters" in catalogue
