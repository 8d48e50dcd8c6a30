"""Every check's verdict on every implementation the course and its tests know, so that two versions of
the checks can be compared line for line (a refactoring of the checks must not change a status, a
message or a note):

    python bench/same_verdicts.py OUT [--framework torch --framework mlx ...]
    diff -r OUT_BEFORE OUT_AFTER

It runs, in this process and on the CPU (CUDA checks are recorded as the runner skips them here),
every check of every framework's ``CHECKS`` (grader/checks/registry.py's ``checks_for``, in its
order) on:

* the solution notebooks (solutions/*.ipynb) and the exercise stubs (exercises/*.ipynb), loaded as the
  grader loads a submission (grader/submission/loader.py), graded by the framework their code is for;
* every wrong (and every correct alternative) implementation the test suite proves the checks with:
  tests/test_checks_prove.py's ``WRONG``, ``RIGHT`` and ``NONE_AS_LAST``, tests/test_mlx.py's
  ``WRONG`` and ``WRAPPED``, each run through *all* the checks of its activation, not only the one
  it is meant to fail.

Each check runs as the worker runs it (grader/checks/runner.py's ``run_check``, recording the
student's code on a tape) and is then judged as the parent judges it (``judge``: the check again,
replaying that tape). One JSON line per (implementation, activation, check, device) goes to
``OUT/<framework>.jsonl``: the worker's status, message and notes, the parent's, and a digest of the
tape's labels (which student code was met, in which order). Nothing here depends on timing: no time
limit is set.

Two things would make the same version answer differently from run to run, and are fixed here:
the random number generators (torch's, NumPy's, Python's, MLX's) are seeded before each check, since
a wrong RReLU's slopes (drawn by the student's code) appear in its message; and MLX's compilation is
disabled, since mlx.nn's compiled activations misbehave on some of the wrong calls the tests make
(``mlx.nn.prelu``, compiled shapeless, given an alpha that broadcasts, answers with memory it does
not own). Neither changes what the checks do, only what the students' code draws and computes.

A developer's tool, not a test: a full run takes several minutes (``--framework`` splits it over
processes: write each framework's file from its own process).
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
# the tests' data (tests/conftest.py, not the repository's own conftest.py), then this checkout's grader
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from grader.catalog import BY_NAME  # noqa: E402
from grader.checks import replay  # noqa: E402
from grader.checks.harness import Impl  # noqa: E402
from grader.checks.plan import PlannedCheck  # noqa: E402
from grader.checks.registry import checks_for  # noqa: E402
from grader.checks.runner import judge, run_check  # noqa: E402
from grader.core.results import DEVICES  # noqa: E402
from grader.spec.frameworks import MLX, TORCH, Framework, framework as framework_named  # noqa: E402
from grader.submission.framework import framework_of  # noqa: E402
from grader.submission.loader import load  # noqa: E402


def _quiet_load(path: Path) -> dict:
    """A submission's namespace, its cells run as the grader runs them (an exercise's cells that call
    its stubs fail, as they do for a student who has written nothing)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return load(path).namespace


def implementations(wanted: set[str]) -> Iterator[tuple[str, Framework, dict, list[str]]]:
    """(label, framework, namespace, activations) of every implementation, in a fixed order;
    ``activations`` empty: every activation the namespace defines for its framework."""
    for folder in ("solutions", "exercises"):
        for path in sorted((ROOT / folder).glob("*.ipynb")):
            fw = framework_named(framework_of(path))
            if fw.name in wanted and (fw is not MLX or MLX.available()):
                yield f"{folder}/{path.name}", fw, _quiet_load(path), []
    if "torch" in wanted:
        from conftest import fresh_solution
        from test_checks_prove import NONE_AS_LAST, RIGHT, WRONG

        def solution_with(activation: str, code: str) -> dict:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                return fresh_solution(activation, code).namespace

        for i, w in enumerate(WRONG):
            yield f"test_checks_prove WRONG[{i}] {w.why}", TORCH, solution_with(w.activation, w.code), [w.activation]
        for label in sorted(RIGHT):
            activation, code = RIGHT[label]
            yield f"test_checks_prove RIGHT {label}", TORCH, solution_with(activation, code), [activation]
        for name in ("Softmax", "LogSoftmax", "Softmin"):
            code = NONE_AS_LAST.format(name=BY_NAME[name].functional)
            yield f"test_checks_prove NONE_AS_LAST {name}", TORCH, solution_with(name, code), [name]
    if "mlx" in wanted and MLX.available():
        import test_mlx

        for i, (activation, check, code, _) in enumerate(test_mlx.WRONG):
            namespace = _quiet_load(test_mlx.SOLUTION)
            exec(compile(code, "<wrong>", "exec"), namespace)
            yield f"test_mlx WRONG[{i}] {activation} {check}", MLX, namespace, [activation]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "wrapped.py"
            path.write_text(test_mlx.WRAPPED)
            yield "test_mlx WRAPPED", MLX, _quiet_load(path), []


def tape_digest(entries: list) -> str:
    """Which interactions with student code the worker taped, in order, and whether each succeeded
    (not what they returned: a random activation's draws differ from run to run)."""
    return hashlib.sha256(json.dumps([[e[0], e[1]] for e in entries]).encode()).hexdigest()[:16]


def seed_everything() -> None:
    """The same draws for the student's code at each run (see the module's docstring)."""
    import random

    import numpy
    import torch

    random.seed(0)
    numpy.random.seed(0)
    torch.manual_seed(0)
    if MLX.available():
        import mlx.core as mx

        mx.random.seed(0)


def verdicts(label: str, fw: Framework, namespace: dict, only: list[str]) -> Iterator[dict]:
    for entry in fw.graded(namespace):
        if only and entry.name not in only:
            continue
        for check, device in checks_for(entry, DEVICES["all"], fw):
            seed_everything()
            tape = replay.Tape("record")
            ran = run_check(Impl(entry, namespace, framework=fw), check, device, tape).result
            line = {"implementation": label, "framework": fw.name, "activation": entry.name, "check": check.name,
                    "device": device, "status": ran.status, "message": ran.message,
                    "notes": [str(n) for n in ran.notes]}
            if ran.status != "skipped":
                judged = judge(PlannedCheck(entry.name, check.name, device), ran.status,
                               replay.encode(tape.entries), ran.message)
                line.update(judged_status=judged.status, judged_message=judged.message,
                            judged_notes=[str(n) for n in judged.notes], tape=tape_digest(tape.entries))
            yield line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="a folder: one <framework>.jsonl per framework")
    parser.add_argument("--framework", action="append", choices=["torch", "mlx", "quantized"],
                        help="only this framework's implementations (repeatable; default: all)")
    args = parser.parse_args()
    wanted = set(args.framework or ["torch", "mlx", "quantized"])
    args.out.mkdir(parents=True, exist_ok=True)
    warnings.simplefilter("ignore")  # torch's dim=None warning and the like: not part of a verdict
    if MLX.available():
        import mlx.core as mx

        mx.disable_compile()  # see the module's docstring
    files = {name: (args.out / f"{name}.jsonl").open("w") for name in sorted(wanted)}
    try:
        for label, fw, namespace, only in implementations(wanted):
            for line in verdicts(label, fw, namespace, only):
                files[fw.name].write(json.dumps(line, sort_keys=True) + "\n")
            files[fw.name].flush()
            print(label, file=sys.stderr)
    finally:
        for f in files.values():
            f.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
