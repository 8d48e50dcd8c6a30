"""pytest plugin: ``--submission PATH`` runs the grader's suite on one submission and collects results."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Callable

import pytest

import torch

from grader.checks.plan import PlannedCheck, plan
from grader.checks.registry import CHECKS_BY_NAME
from grader.checks.replay import Tape, encode
from grader.core import limits
from grader.core.errors import SubmissionError
from grader.core.results import DEVICES, CheckResult
from grader.spec.catalog import BY_NAME, Activation
from grader.spec.mlx_catalog import available as mlx_available
from grader.submission import reading
from grader.submission.loader import Submission, load

SUITE = str(Path(__file__).with_name("suite.py"))


class GraderPlugin:
    """Registered by the worker (with the submission loaded and an ``emit`` to its parent) or, for
    ``pytest --submission``, by ``pytest_configure`` (pytest's own report is then the result)."""

    def __init__(self, submission: Submission | None = None, emit: Callable[..., None] | None = None,
                 planned: list[PlannedCheck] | None = None) -> None:
        self._submission = submission
        self.emit = emit  # the worker streams events to its parent
        self.planned = planned  # the parent's plan: exactly these checks run, in this order

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if self.emit and isinstance(params.get("activation"), Activation):
            self.emit(event="start", activation=params["activation"].name, check=params["check"].name,
                      device=params["device"])

    def submission(self, config: pytest.Config) -> Submission:
        if self._submission is None:
            path = config.getoption("submission")
            try:
                self._submission = load(path)
            except SubmissionError as exc:
                raise pytest.UsageError(str(exc)) from None
        return self._submission

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        rep = outcome.get_result()
        params = getattr(getattr(item, "callspec", None), "params", {})
        if not self.emit or not isinstance(params.get("activation"), Activation):
            return
        if rep.when == "call" or (rep.when == "setup" and not rep.passed):
            message = ""
            if call.excinfo is not None:
                exc = call.excinfo.value
                message = str(getattr(exc, "msg", "") or exc)
                if not isinstance(exc, (pytest.fail.Exception, pytest.skip.Exception)):
                    message = f"grader error: {type(exc).__name__}: {message}".splitlines()[0]
            status = "passed" if rep.passed else "skipped" if rep.skipped else "failed"
            notes = [v for k, v in item.user_properties if k == "note"]
            result = CheckResult(params["activation"].name, params["check"].name, params["device"], status,
                                 message, notes)
            tapes = [v for k, v in item.user_properties if k == "tape" and v.mode == "record"]
            self.emit(event="result", **asdict(result), tape=encode(tapes[0].entries) if tapes else None)


_PLUGIN_KEY = pytest.StashKey[GraderPlugin]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grader", "activation-course grader")
    group.addoption("--submission", default=None, help="grade this .ipynb or .py submission")
    group.addoption("--device", default="all", choices=sorted(DEVICES),
                    help="cpu, cuda, or all (CUDA checks are skipped when CUDA is absent)")
    group.addoption("--check-timeout", type=float, default=limits.CHECK_TIMEOUT,
                    help=f"seconds one check may take before it fails (default {limits.CHECK_TIMEOUT:g})")


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("submission", None):
        return
    plugin = next((p for p in config.pluginmanager.get_plugins() if isinstance(p, GraderPlugin)), None)
    if plugin is None:
        plugin = GraderPlugin()
        config.pluginmanager.register(plugin, "grader-results")
    config.stash[_PLUGIN_KEY] = plugin
    config.args = [SUITE]  # grade: run the grader's suite, not the project's tests


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "activation" not in metafunc.fixturenames or _PLUGIN_KEY not in metafunc.config.stash:
        return
    config = metafunc.config
    plugin = config.stash[_PLUGIN_KEY]
    sub = plugin.submission(config)
    planned = plugin.planned
    if planned is None:  # pytest --submission: planned here, as the parent plans (the file read, not run)
        try:
            own = plan(reading.read(sub.path), config.getoption("device"), cuda=torch.cuda.is_available(),
                       mlx=mlx_available())
        except SubmissionError as exc:
            raise pytest.UsageError(str(exc)) from None
        planned = own.run
    params = [(BY_NAME[p.activation], CHECKS_BY_NAME[p.check], p.device) for p in planned]
    ids = [f"{p.activation}-{p.check}-{p.device}" for p in planned]
    metafunc.parametrize("activation,check,device", params, ids=ids)


@pytest.fixture(scope="session")
def submission(request: pytest.FixtureRequest) -> Submission:
    return request.config.stash[_PLUGIN_KEY].submission(request.config)


@pytest.fixture
def tape(request: pytest.FixtureRequest) -> Tape:
    """In the worker, each check's interactions with student code are recorded for the parent."""
    return Tape("record" if request.config.stash[_PLUGIN_KEY].emit else "direct")


@pytest.fixture
def check_timeout(request: pytest.FixtureRequest) -> float:
    """Seconds per check (grader/checks/runner.py applies them), so an infinite loop costs one
    check, not the run."""
    return request.config.getoption("check_timeout")
