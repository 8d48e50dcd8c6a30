"""``python -m grader ...``: the grader's command line. ``python -m grader SUBMISSION...`` grades
(grader/commands/grade.py); ``batch``, ``merge``, ``grading-workflow``, ``classroom``, ``classroom50``,
``gradescope`` and ``class-report`` are the instructors' commands, each a module of grader/commands/."""
from __future__ import annotations

import importlib
import sys

COMMANDS = ("batch", "merge", "grading-workflow", "classroom", "classroom50", "gradescope", "class-report")  # a submission is a file name with a suffix, never one of these


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from grader.checks.harness import use_grading_threads

    use_grading_threads()
    if argv and argv[0] in COMMANDS:
        return importlib.import_module(f"grader.commands.{argv[0].replace('-', '_')}").main(argv[1:])
    from grader.commands import grade

    return grade.main(argv)
