"""Environment variables by which the grader tells code it runs what is going on."""
from __future__ import annotations

RUNNING = "ACTIVATIONS_GRADER_RUNNING"   # set by the grader while it runs submission code
