"""Where the course is: the folder that holds grader/, exercises/, solutions/ and book/ (or, in
a Gradescope bundle or a Classroom template, the folder that holds grader/)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "grader"
