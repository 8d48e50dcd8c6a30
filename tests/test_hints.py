"""Hints: every wrong implementation the suite proves the checks with gets the hint it should, the
issue's examples too, a correct implementation never sees one, and no hint gives away solution code."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from grader.catalog import ACTIVATIONS, BY_NAME
from grader.feedback.hints import HINTS, find_hint, hint_for
from grader.run.live import run

from conftest import fresh_solution
from test_checks_prove import RIGHT, WRONG, Wrong

ROOT = Path(__file__).resolve().parent.parent

# The hint each wrong implementation of tests/test_checks_prove.py must get, by its `why`.
EXPECTED = {
    "a wrong default": "signature",
    "the module's parameter misnamed": "init-params",
    "a form missing": "not-defined",
    "the tanh approximation used for the exact GELU": "gelu-tanh-approx",
    "a leaky slope in plain ReLU": "relu-leak",
    "constants rounded to 4 decimals": "selu-constants",
    "half precision summed in half precision": "half-precision",
    "every step rounded to bfloat16": "half-precision",
    "returns float64 for a float32 input": "dtype",
    "a detached factor: values right, gradient missing a term": "grad-mismatch",
    "a straight-through gradient of 1": "grad-mismatch",
    "computed under no_grad": "detached",
    "torch.where with exp in the masked branch (the issue's example)": "where-overflow",
    "the naive sigmoid: exp(100) overflows in the backward": "sigmoid-overflow",
    "nan mapped to 0": "nan-propagation",
    "log(softmax) underflows to -inf with a spread of 1e4": "log-of-softmax",
    "tanh as an exponential ratio: inf/inf": "tanh-exp-ratio",
    "the sign as x / |x|: nan at the kink": "kink-nan",
    "an out-of-range value at the upper kink": "kink-range",
    "view() on a non-contiguous input": "view",
    "squeeze() changes the shape": "shape",
    "no extra_repr": "repr",
    "the weight under another name": "state-dict",
    "the weight is detached: it never learns": "param-grad",
    "forgot the (1 - y) factor": "sigmoid-derivative",
    "the diagonal of the Jacobian only": "softmax-jacobian",
    "a first derivative that is itself not differentiable": "gradgradcheck",
    "1 - y instead of 1 - y^2": "tanh-derivative",
    "inplace=True ignored": "inplace-return",
    "always in place": "inplace-modified",
    "no check of min_val > max_val": "invalid",
    "an unknown approximate silently means 'none'": "invalid",
    "an odd size silently split": "invalid",
    "slopes in range, mean right, but triangular": "rrelu-uniform",
    "the eval slope used in training": "rrelu-uniform",
    "slopes only from the lower half of the range": "rrelu-uniform",
    "slopes drawn from [0, upper]": "rrelu-range",
    "torch's own relu": "forbidden",
    "selu through F.elu": "forbidden",
    "a composite with no ATen op of its own: seen at the API level": "forbidden",
    "softmin through torch.softmax": "forbidden",
    "the module calls Tensor.sigmoid": "forbidden",
    "a loop over elements": "loop",
    "a loop over rows": "loop",
    # the graded defaults
    "dim=None read as the last dim: right for 1-D and 2-D inputs only": "implicit-dim",
    "dim=None read as the last dim": "implicit-dim",
    "the module alone reads dim=None as the last dim": "implicit-dim",
    "the legacy rule right up to 3-D, the last dim for 4-D": "implicit-dim",
    "dtype ignored": "dtype",
    "a 1-D input read as channels: torch has no channel dim below 2-D (one shared slope only)": "invalid",
    "a module that starts in eval mode, like the functional's training=False": "rrelu-training-mode",
    "the default dim=-1 read as the channel dim 1": "shape",
    "the channels as dim 1: right for a 4-D input only": "softmax2d-dim",
    # the design chapter
    "the paper's formula as written: 0/0 at alpha = 0, where the limit is x": "snake-limit",
    "the epsilon fix: finite at alpha = 0, but d/dalpha is 0 there instead of the sum of x^2": "snake-alpha-grad",
    "torch.sinc for sin(t)/t: its second derivative at t = 0 (alpha = 0) is nan": "gradgradcheck",
    "sin(t)/t guarded at 0 only: cos(t)/t - sin(t)/t^2 is inf - inf for a subnormal t": "snake-small-t",
    "the wrong constant: 100 for 108": "hardswish-c1-constant",
    "Hardswish's derivative in the backward": "function-backward",
    "F.hardswish for the outer pieces: right values, forbidden op": "forbidden",
    "the halves swapped: the gate on the first half": "glu-halves",
    "the gate's limit not taken: SiLU(-inf) = -inf * 0": "gate-limit",
    "the tanh approximation of GELU for the exact one": "geglu-exact",
    "beta detached: it never learns": "detached",
    "a backward without beta's gradient": "function-backward",
    "SiLU rescaled: torch's op computing the function": "forbidden",
    "the grader's own reference imported instead of written": "forbidden",
}

# The issue's own examples, as a student would write them.
ISSUE = [
    (Wrong("Sigmoid", "edges", "grad is nan at x=-100.0",
           "def sigmoid(input):\n    return 1 / (1 + torch.exp(-input))", "naive sigmoid"), "sigmoid-overflow"),
    (Wrong("Softplus", "edges", "value is inf at x=100.0",
           "def softplus(input, beta=1.0, threshold=20.0):\n    return torch.log1p(torch.exp(beta * input)) / beta",
           "log1p(exp(x)) without the threshold"), "softplus-overflow"),
    (Wrong("Softplus", "values[float64]", "softplus(beta=2.0, threshold=5.0)",
           "def softplus(input, beta=1.0, threshold=20.0):\n    return torch.log1p(torch.exp(beta * input)) / beta",
           "log1p(exp(x)) without the threshold, on the random inputs"), "softplus-threshold"),
    (Wrong("GELU", "values[float64]", "torch gives",
           "def gelu(input, approximate='none'):\n"
           "    return 0.5 * input * (1 + torch.tanh(math.sqrt(2 / math.pi) * (input + 0.044715 * input ** 3)))",
           "the tanh approximation"), "gelu-tanh-approx"),
    (Wrong("LeakyReLU", "values[float64]", "negative_slope=2.0",
           "def leaky_relu(input, negative_slope=0.01, inplace=False):\n"
           "    out = torch.maximum(negative_slope * input, input)\n"
           "    return input.copy_(out) if inplace else out",
           "max(slope * x, x)"), "leaky-max"),
    (Wrong("LogSigmoid", "edges", "at x=-",
           "def logsigmoid(input):\n    return torch.log(1 / (1 + torch.exp(-input)))",
           "log of the naive sigmoid"), "logsigmoid-overflow"),
]


def _failure(w: Wrong, failure_of) -> str:
    message = failure_of(w)  # run once, shared with tests/test_checks_prove.py (tests/conftest.py)
    assert message is not None, f"{w.check} passed {w.why!r}"
    assert w.message in message, message
    return message


def test_every_wrong_implementation_has_an_expected_hint() -> None:
    missing = [w.why for w in WRONG if w.why not in EXPECTED]
    assert not missing, f"add the hint these wrong implementations should get to EXPECTED: {missing}"


@pytest.mark.parametrize("wrong", WRONG, ids=[f"{w.activation}-{w.check}-{i}" for i, w in enumerate(WRONG)])
def test_wrong_implementation_gets_its_hint(wrong: Wrong, failure_of) -> None:
    message = _failure(wrong, failure_of)
    hint = find_hint(wrong.activation, wrong.check, message)
    assert hint is not None and hint.id == EXPECTED[wrong.why], (message, hint)
    assert hint_for(wrong.activation, wrong.check, message) == hint.text
    # the same failure reported on the GPU is the same mistake
    assert hint_for(wrong.activation, f"{wrong.check}@cuda", message) == hint.text


@pytest.mark.parametrize("wrong,hint_id", ISSUE, ids=[w.why for w, _ in ISSUE])
def test_the_issue_s_examples_get_their_hints(wrong: Wrong, hint_id: str, failure_of) -> None:
    message = _failure(wrong, failure_of)
    hint = find_hint(wrong.activation, wrong.check, message)
    assert hint is not None and hint.id == hint_id, (message, hint)


def test_a_correct_implementation_never_shows_a_hint() -> None:
    """The reference solutions and the correct alternatives pass every check, so check() shows no
    failure and no hint for any of them."""
    shown = []
    for entry in ACTIVATIONS:
        report = run(entry.name, fresh_solution(entry.name).namespace, "cpu", plot=False)
        shown += [(entry.name, c.name, c.message, c.hint) for c in report.checks if c.passed is False or c.hint]
    for label, (activation, code) in RIGHT.items():
        report = run(activation, fresh_solution(activation, code).namespace, "cpu", plot=False)
        shown += [(label, c.name, c.message, c.hint) for c in report.checks if c.passed is False or c.hint]
    assert not shown, shown


def test_hints_are_keyed_by_the_catalogue_and_unique() -> None:
    assert set(HINTS) <= set(BY_NAME) | {"*"}
    for activation, hints in HINTS.items():
        ids = [h.id for h in hints]
        assert len(ids) == len(set(ids)), activation
        for h in hints:
            re.compile(h.pattern)
            assert h.text.endswith(".") and "\n" not in h.text, h.id


def test_no_hint_gives_away_solution_code() -> None:
    """No line of the reference solutions' code appears in a hint, and no hint is itself code."""
    lines = set()
    for path in (ROOT / "solutions").glob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                lines |= {l.strip() for l in source.splitlines() if len(l.strip()) >= 12 and not l.strip().startswith("#")}
    for hints in HINTS.values():
        for h in hints:
            assert not [l for l in lines if l in h.text], h.id
            assert not re.search(r"(?:^|[:;]\s*)return\b|\bdef \w+\(|torch(?:\.\w+)+\([^)]+\)", h.text), h.id


def test_no_hint_for_an_unknown_failure() -> None:
    assert hint_for("ReLU", "values[float32]", "something no hint knows") is None
    assert hint_for("ReLU", "values[float32]", "") is None
