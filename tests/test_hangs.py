"""The hang memo (grader/core/hangs.py) is scoped and keyed by identity: what hung in one submission or
one ``check()`` never fails another, and code that merely looks the same is not the same function."""
from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from grader.core import hangs, limits
from grader.catalog import BY_NAME
from grader.core.errors import CheckFailure
from grader.checks.harness import Impl
from grader.checks.registry import checks_for
from grader.run.live import run
from grader.submission.loader import IMPORT_GRACE, load, time_limit
from grader.core.errors import CheckTimeout
from grader.checks.replay import Tape, using

ROOT = Path(__file__).resolve().parent.parent
HELPER_HANGS = "import time\ndef _h(x):\n    while True:\n        time.sleep(0.01)\n"
HELPER_WORKS = "import time\ndef _h(x):\n    # no loop\n    return x.clamp_min(0)\n"  # as many lines: relu's code is equal
# the same text in both submissions: only the helper it calls differs
RELU = ("def relu(input, inplace=False):\n"
        "    out = _h(input)\n"
        "    return input.copy_(out) if inplace else out\n")


def chapter_one() -> str:
    nb = nbformat.read(ROOT / "solutions" / "01_standard.ipynb", 4)
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "code" and "check" not in c.metadata.get("tags", []))


def grade_relu_in_process(path: Path) -> list[tuple[str, bool, str, float]]:
    """Every CPU check of ReLU on ``path``, as the worker's suite runs them (one process, default limit)."""
    sub = load(path)
    entry = BY_NAME["ReLU"]
    out = []
    for check, device in checks_for(entry, ["cpu"]):
        start = time.monotonic()
        try:
            with using(Tape("direct")), time_limit(limits.CHECK_TIMEOUT, lambda what: CheckTimeout(
                    f"ReLU {check.name}: {what} (an infinite loop?)")):
                check.run(Impl(entry, sub.namespace), device)
            out.append((check.name, True, "", time.monotonic() - start))
        except CheckFailure as exc:
            out.append((check.name, False, str(exc).splitlines()[0], time.monotonic() - start))
    return out


# torch._dynamo takes about a second to import. The limit expires once its own code has started: a
# fixed 0.01 s could expire before it, while Python was still finding the module (seen under load)
LAZY_IMPORT = """
import os, signal, sys, time, torch
from grader.submission.loader import time_limit

class Late(Exception):
    pass

assert "torch._dynamo" not in sys.modules
DYNAMO = os.path.join(os.path.dirname(torch.__file__), "_dynamo", "__init__.py")

def expire_inside(frame, event, arg):
    if event == "call" and frame.f_code.co_filename == DYNAMO:
        sys.setprofile(None)
        signal.setitimer(signal.ITIMER_REAL, 0.001)  # the limit's own timer: it expires now

done = None
try:
    with time_limit(60, Late):
        sys.setprofile(expire_inside)
        import torch._dynamo
        done = time.monotonic()
        while True:
            pass
except Late:
    print("limit after the import" if done else "limit inside the import", callable(torch._dynamo.disable))
"""


def test_a_time_limit_does_not_cut_torch_s_lazy_import_in_half() -> None:
    """What torch imports on first use (a student's backward can pull torch._dynamo in, inside a check)
    is imported whole, and the limit still stops the code that runs on after it."""
    r = subprocess.run([sys.executable, "-c", LAZY_IMPORT], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.stdout.strip() == "limit after the import True", r.stdout + r.stderr[-2000:]


# a student's endless loop compiled under a filename in torch's folder, as if torch were importing it
FAKE_IMPORT = """
import os, sys, time, torch
from grader.submission import loader

class Late(Exception):
    pass

code = compile("while True:\\n    pass\\n", os.path.join(os.path.dirname(torch.__file__), "fake.py"), "exec")
for limit in range(3):
    start = time.monotonic()
    try:
        with loader.time_limit(0.5, Late):
            exec(code, {})
    except Late:
        print(round(time.monotonic() - start, 1))
"""


def test_code_that_poses_as_torch_s_import_gets_the_grace_once_per_process() -> None:
    r = subprocess.run([sys.executable, "-c", FAKE_IMPORT], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    first, second, third = map(float, r.stdout.split())
    assert first <= 0.5 + IMPORT_GRACE + 1 and second < 1.5 and third < 1.5, r.stdout + r.stderr[-2000:]


def test_code_objects_of_the_same_text_are_equal_but_not_the_same_function() -> None:
    """Why the memo keys by identity: CPython compares code objects without their file name."""
    a = compile(RELU, "student_a.ipynb", "exec")
    b = compile(RELU, "student_b.ipynb", "exec")
    assert a == b and hash(a) == hash(b) and a is not b
    ns_a, ns_b = {}, {}
    exec(HELPER_HANGS + RELU, ns_a)
    exec(HELPER_WORKS + RELU, ns_b)
    memo = hangs.Memo(ns_a)
    code_a, code_b = ns_a["relu"].__code__, ns_b["relu"].__code__
    assert code_a == code_b  # equal, so a dict keyed by the code's value would refuse both
    memo.hung[id(code_a)] = (code_a, "hung")
    assert memo.refuses(code_a) == "hung" and memo.refuses(code_b) is None


def test_a_second_submission_with_the_same_relu_is_not_refused(tmp_path: Path) -> None:
    """Two submissions graded one after the other in one process, with the same ``relu`` text: the
    first hangs through its helper (one time limit, then refusals), the second gets every point."""
    base = chapter_one()
    a, b = tmp_path / "a" / "hw.py", tmp_path / "b" / "hw.py"  # the same file name, as in a class
    for path, helper in ((a, HELPER_HANGS), (b, HELPER_WORKS)):
        path.parent.mkdir()
        path.write_text(base + "\n\n" + helper + RELU)
    first = grade_relu_in_process(a)
    failed = [r for r in first if not r[1]]
    assert any("did not return within" in m for _, _, m, _ in failed), first
    refused = [r for r in failed if "timed out in an earlier check (`relu`" in r[2]]
    assert len(refused) >= 5 and all(r[3] < limits.CHECK_TIMEOUT / 2 for r in refused), first  # not waited out
    second = grade_relu_in_process(b)
    assert all(ok for _, ok, _, _ in second), [r for r in second if not r[1]]


def test_a_submission_starts_with_an_empty_memo(tmp_path: Path) -> None:
    path = tmp_path / "hw.py"
    path.write_text(HELPER_WORKS + RELU)
    ns = {}
    exec(HELPER_HANGS + RELU, ns)
    hangs.start(ns).hung[id(ns["relu"].__code__)] = (ns["relu"].__code__, "hung")
    sub = load(path)
    memo = hangs.current()
    assert memo is not None and memo.namespace is sub.namespace and not memo.hung


def test_in_a_kernel_a_hang_costs_one_limit_and_a_fixed_helper_passes() -> None:
    """``check()`` with a ``relu`` that never returns (through its helper) takes about one time limit,
    not one per check; once the helper is fixed, the unchanged ``relu`` passes."""
    namespace = load(ROOT / "solutions" / "01_standard.ipynb").namespace  # a kernel after running the cells
    hangs.forget()
    exec(HELPER_HANGS + RELU, namespace)
    # the module and the Function call relu too, as students often write them
    exec("class ReLUFunction(torch.autograd.Function):\n"
         "    @staticmethod\n"
         "    def forward(ctx, input):\n"
         "        ctx.save_for_backward(input)\n"
         "        return relu(input)\n"
         "    @staticmethod\n"
         "    def backward(ctx, grad_output):\n"
         "        (input,) = ctx.saved_tensors\n"
         "        return grad_output * (input > 0)\n", namespace)
    start = time.monotonic()
    report = run("ReLU", namespace, "cpu", plot=False)  # the default limit, as a student runs it
    took = time.monotonic() - start
    assert took < limits.CHECK_TIMEOUT * 1.5 + 5, f"{took:.1f} s"
    messages = [c.message for c in report.checks if c.passed is False]
    assert sum("did not return within" in m and "earlier check" not in m for m in messages) == 1, messages
    assert sum("timed out in an earlier check" in m for m in messages) >= 5, messages
    exec(HELPER_WORKS, namespace)  # the student fixes the helper and runs that cell again
    again = run("ReLU", namespace, "cpu", plot=False)
    assert again.score == again.max_score, str(again)
    assert hangs.current() is None  # check() leaves no scope behind


# The tests that leave a hang (or an interrupt) behind in this process, and those that run student
# code here after one and must not see it: test_hangs.py's own, check()'s in test_check.py, and the
# hints' runs of wrong and of correct implementations. The rest of those files runs nothing of a
# student's in this process (pure functions, subprocesses: the import-grace tests above run theirs in
# a fresh interpreter), so a memo could not leak into it.
HANG_RELATED = [
    "tests/test_hangs.py::test_code_objects_of_the_same_text_are_equal_but_not_the_same_function",
    "tests/test_hangs.py::test_a_second_submission_with_the_same_relu_is_not_refused",
    "tests/test_hangs.py::test_a_submission_starts_with_an_empty_memo",
    "tests/test_hangs.py::test_in_a_kernel_a_hang_costs_one_limit_and_a_fixed_helper_passes",
    "tests/test_check.py::test_result_object_and_its_displays",
    "tests/test_check.py::test_ipython_display_shows_the_table_then_the_picture",
    "tests/test_check.py::test_check_names_an_unknown_activation",
    "tests/test_check.py::test_a_check_that_runs_too_long_fails_with_the_grader_s_message",
    "tests/test_check.py::test_an_interrupt_stops_check_although_student_code_swallows_it",
    "tests/test_hints.py::test_the_issue_s_examples_get_their_hints",
    "tests/test_hints.py::test_a_correct_implementation_never_shows_a_hint",
]


def test_the_hang_related_tests_pass_in_one_process_in_any_order() -> None:
    """The memo must not leak between tests that share a process: the hang-related tests run
    together in one process (no xdist), in a shuffled order, and pass."""
    if os.environ.get("ACTIVATIONS_TESTS_NESTED"):
        return  # this test, run by itself inside the run it starts
    seed = str(random.randrange(10**6))  # a new order every run; the seed reproduces a failure
    r = subprocess.run([sys.executable, "-m", "pytest", *HANG_RELATED, "-n", "0", "-q", "-p", "no:cacheprovider",
                        "--shuffle", seed, "-x", "--deselect",
                        "tests/test_hangs.py::test_the_hang_related_tests_pass_in_one_process_in_any_order"],
                       cwd=ROOT, capture_output=True, text=True, timeout=1500,
                       env=dict(os.environ, ACTIVATIONS_TESTS_NESTED="1"))
    assert r.returncode == 0, f"--shuffle {seed}:\n" + r.stdout[-4000:] + r.stderr[-2000:]
