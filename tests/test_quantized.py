"""The 8-bit exercises (chapter 11_quantized): the solutions earn full marks through the real grader
and the exercise nothing; each quint8 and fp8 check fails a realistic wrong implementation, which
gets its hint; the chapter is known by its names (read, never run) and its exercises have keys of
their own."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from grader.catalog import BY_NAME
from grader.checks.harness import Impl
from grader.checks.quantized_checks import CHECKS, every_quint8, exact_positions, quint8_values_on, torch_quint8
from grader.checks.registry import checks_for
from grader.grading.submissions import grade
from grader.core.errors import CheckFailure
from grader.feedback.hints import find_hint
from grader.spec.assignment import BY_KEY, EXERCISES, exercise_key
from grader.spec.quantized_catalog import BY_ENTRY, EXERCISES8, SAMPLED, GridSample, QCase
from grader.submission.framework import framework_of
from grader.submission.loader import load

ROOT = Path(__file__).resolve().parent.parent
SOLUTION, EXERCISE = ROOT / "solutions" / "11_quantized.ipynb", ROOT / "exercises" / "11_quantized.ipynb"
BY_CHECK = {c.name: c for c in CHECKS}


def test_solution_earns_full_marks_through_the_grader() -> None:
    report = grade(str(SOLUTION), device="cpu")
    assert not report.error and not report.notes, (report.error, report.notes)
    # every exercise of the chapter, under its own key (not chapter 4's ReLU6)
    assert [e.name for e in report.exercises] == [x.key for x in EXERCISES8]
    assert [e.activation for e in report.exercises] == [x.entry for x in EXERCISES8]
    failures = [f"{e.name} {r.name}: {r.message}" for e in report.exercises for r in e.checks if r.status != "passed"]
    assert not failures, "\n".join(failures)
    for e in report.exercises:  # the 8-bit checks, and only those
        assert e.max_score == len(checks_for(BY_NAME[e.activation], ["cpu", "cuda"], "quantized")) >= 4
        assert all(r.check.startswith(("quint8 ", "fp8 ")) for r in e.checks)


def test_exercise_earns_nothing_and_says_not_implemented() -> None:
    report = grade(str(EXERCISE), device="cpu")
    assert len(report.exercises) == len(EXERCISES8) and report.score == 0 and report.max_score > 0
    for e in report.exercises:
        assert "not implemented" in e.failure_text, e.failure_text


def test_the_chapter_is_known_by_its_names_and_keyed_apart() -> None:
    assert framework_of(SOLUTION) == framework_of(EXERCISE) == "quantized"
    assert framework_of(ROOT / "solutions" / "02_relu_variants.ipynb") == "torch"
    assert framework_of(ROOT / "solutions" / "10_mlx.ipynb") == "mlx"
    assert exercise_key("ReLU6", "quantized") == "Quantized ReLU6" and exercise_key("GELU", "quantized") == "FP8 GELU"
    ours = [e for e in EXERCISES if e.chapter == "11_quantized"]
    assert sorted(e.key for e in ours) == sorted(x.key for x in EXERCISES8)
    assert all(BY_KEY[e.key] is e and e.framework == "quantized" for e in ours)
    assert len(BY_KEY) == len(EXERCISES)  # no key taken twice (ReLU6 stays torch's, Quantized ReLU6 is ours)
    assert {c.name for c, _ in checks_for(BY_NAME["ReLU6"], ["cpu"], "quantized")} == \
        {c.name for c in CHECKS if c.name.startswith("quint8 ")}
    assert {c.name for c, _ in checks_for(BY_NAME["GELU"], ["cpu"], "quantized")} == \
        {c.name for c in CHECKS if c.name.startswith("fp8 ")}


def _namespace(extra: str) -> dict:
    sub = load(SOLUTION)
    assert not sub.notes, sub.notes
    exec(compile(extra, "<wrong>", "exec"), sub.namespace)
    return sub.namespace


HALF_AWAY = ("def requantize(y, scale, zero_point):\n"
             "    v = y * (1.0 / torch.tensor(scale, dtype=torch.float32))\n"
             "    return (torch.sign(v) * torch.floor(v.abs() + 0.5) + zero_point).clamp(0, 255).to(torch.uint8)")
HALF_UP = ("def requantize(y, scale, zero_point):\n"
           "    v = y * (1.0 / torch.tensor(scale, dtype=torch.float32))\n"
           "    return (torch.floor(v + 0.5) + zero_point).clamp(0, 255).to(torch.uint8)")
NO_INPUT_ZP = ("def dequantized_table(scale, zero_point):\n"
               "    return torch.arange(256, dtype=torch.float32) * scale")
NO_OUTPUT_ZP = ("def requantize(y, scale, zero_point):\n"
                "    return torch.round(y * (1.0 / torch.tensor(scale, dtype=torch.float32))).clamp(0, 255).to(torch.uint8)")
QINT8_RANGE = ("def requantize(y, scale, zero_point):\n"
               "    v = torch.round(y * (1.0 / torch.tensor(scale, dtype=torch.float32))) + zero_point\n"
               "    return v.clamp(0, 127).to(torch.uint8)")
OFF_BY_ONE = ("def dequantized_table(scale, zero_point):\n"
              "    return (torch.arange(1, 257, dtype=torch.float32) - zero_point) * scale")
INPUT_QPARAMS = ("def quantized_sigmoid(input):\n"
                 "    x = dequantized_table(input.q_scale(), input.q_zero_point())\n"
                 "    s, z = input.q_scale(), input.q_zero_point()\n"
                 "    return apply_table(input, requantize(1 / (1 + torch.exp(-x)), s, z), s, z)")
WHOLE_INPUT = ("def quantized_relu6(input):\n"
               "    s, z = input.q_scale(), input.q_zero_point()\n"
               "    y = torch.clamp(input.dequantize(), 0, 6)\n"
               "    return torch._make_per_tensor_quantized_tensor(requantize(y, s, z), s, z)")
KERNEL = "def quantized_relu6(input):\n    return F.relu6(input)"
FAKE_QUANT = ("def quantized_hardswish(input, scale, zero_point):\n"
              "    x = dequantized_table(input.q_scale(), input.q_zero_point())\n"
              "    return apply_table(input, requantize(F.hardswish(x), scale, zero_point), scale, zero_point)")
LOOP = ("def apply_table(input, table, scale, zero_point):\n"
        "    ints = torch.stack([table[int(q)] for q in input.int_repr().reshape(-1)]).reshape(input.shape)\n"
        "    return torch._make_per_tensor_quantized_tensor(ints, scale, zero_point)")
TRUNCATED_BOUND = ("def quantized_relu6(input):\n"
                   "    s, z = input.q_scale(), input.q_zero_point()\n"
                   "    top = min(255, z + int(6 / s))  # the code of 6, truncated\n"
                   "    return apply_table(input, torch.arange(256).clamp(z, top).to(torch.uint8), s, z)")
TRUNCATED_KINKS = ("def quantized_hardswish(input, scale, zero_point):\n"
                   "    s, z = input.q_scale(), input.q_zero_point()\n"
                   "    q, x = torch.arange(256), dequantized_table(s, z)\n"
                   "    low, high = z + int(-3 / s), z + int(3 / s)  # the codes of -3 and 3, truncated\n"
                   "    y = torch.where(q <= low, 0.0, torch.where(q >= high, x, x * (x + 3) / 6))\n"
                   "    return apply_table(input, requantize(y, scale, zero_point), scale, zero_point)")
FP8_TWICE = ("def fp8_silu(input):\n    x = input.float()\n"
             "    return (x / (1 + torch.exp(-x))).to(torch.bfloat16).to(torch.float8_e4m3fn)")
FP8_FLOAT32 = "def fp8_silu(input):\n    x = input.float()\n    return x / (1 + torch.exp(-x))"
FP8_KERNEL = "def fp8_gelu(input, approximate='none'):\n    return F.gelu(input.float(), approximate=approximate).to(torch.float8_e4m3fn)"
FP8_LOOP = ("def fp8_silu(input):\n    flat = input.float().reshape(-1)\n"
            "    return torch.stack([v / (1 + torch.exp(-v)) for v in flat]).reshape(input.shape).to(torch.float8_e4m3fn)")

WRONG = [  # (activation, check, wrong implementation, words of the message, the hint it gets)
    ("LeakyReLU", "quint8 values", HALF_AWAY, "a tie: torch rounds half to even", "quantized-rounding"),
    ("LeakyReLU", "quint8 values", HALF_UP, "a tie: torch rounds half to even", "quantized-rounding"),
    ("ReLU6", "quint8 values", NO_INPUT_ZP, "the input's zero point is missing", "quantized-zero-point"),
    ("Hardswish", "quint8 values", NO_OUTPUT_ZP, "the output's zero point is missing", "quantized-zero-point"),
    ("Sigmoid", "quint8 values", QINT8_RANGE, "clipped to [0, 127]", "quantized-clip"),
    ("ELU", "quint8 values", OFF_BY_ONE, "shifted by one entry", "quantized-shift"),
    ("ReLU6", "quint8 values", TRUNCATED_BOUND, "truncated toward the zero point", "quantized-truncated"),
    ("Hardswish", "quint8 values", TRUNCATED_KINKS, "within one input step of the kink at x=-3", "quantized-kink"),
    ("Sigmoid", "quint8 values", INPUT_QPARAMS, "wrong output qparams", "quantized-qparams"),
    ("ReLU6", "quint8 api", "def quantized_relu6(input, inplace=False):\n    return input",
     "expected quantized_relu6(input)", "eight-bit-signature"),
    ("ReLU6", "quint8 table", WHOLE_INPUT, "not on a table", "quantized-table"),
    ("ReLU6", "quint8 forbidden", KERNEL, "calls torch's own aten.hardtanh", "eight-bit-forbidden"),
    ("Hardswish", "quint8 forbidden", FAKE_QUANT, "calls torch's own aten.hardswish", "eight-bit-forbidden"),
    ("ReLU6", "quint8 vectorised", LOOP, "a Python loop", "loop"),
    ("SiLU", "fp8 values", FP8_TWICE, "rounding twice, through bfloat16", "fp8-double-rounding"),
    ("SiLU", "fp8 values", FP8_FLOAT32, "dtype is float32, torch gives float8_e4m3fn", "quantized-float"),
    ("GELU", "fp8 api", "def fp8_gelu(input):\n    return input", "expected fp8_gelu(input, approximate='none')",
     "eight-bit-signature"),
    ("GELU", "fp8 forbidden", FP8_KERNEL, "calls torch's own aten.gelu", "eight-bit-forbidden"),
    ("SiLU", "fp8 vectorised", FP8_LOOP, "a Python loop", "loop"),
]


@pytest.mark.parametrize("activation,check,code,words,hint", WRONG,
                         ids=[f"{a}-{c}-{i}" for i, (a, c, _, _, _) in enumerate(WRONG)])
def test_each_check_fails_a_wrong_implementation_with_its_hint(activation: str, check: str, code: str, words: str,
                                                              hint: str) -> None:
    with pytest.raises(CheckFailure) as info:
        BY_CHECK[check].run(Impl(BY_NAME[activation], _namespace(code)), "cpu")
    message = str(info.value)
    assert words in message, message
    found = find_hint(activation, check, message)
    assert found is not None and found.id == hint, (message, found)


def test_every_check_is_proven_and_the_solution_passes_each_directly() -> None:
    assert {c for _, c, _, _, _ in WRONG} == set(BY_CHECK)
    ns = _namespace("")
    for exercise in EXERCISES8:
        for check, _ in checks_for(exercise.activation, ["cpu"], "quantized"):
            assert check.run(Impl(exercise.activation, ns), "cpu") == []


@pytest.mark.parametrize("activation,code", [("ReLU6", TRUNCATED_BOUND), ("Hardswish", TRUNCATED_KINKS)])
def test_the_sampled_grids_are_needed(activation: str, code: str) -> None:
    """A bound's code truncated agrees with torch on every chosen grid (round scales, where 6 / scale
    and 3 / scale are integers or the bound lies past the codes): only the sampled grids catch it, and
    the message names the grid, so that it can be replayed."""
    exercise = BY_ENTRY[activation]
    impl = Impl(BY_NAME[activation], _namespace(code))
    quint8_values_on(impl, exercise, exercise.cases)
    with pytest.raises(CheckFailure) as info:
        quint8_values_on(impl, exercise, exercise.graded_cases)
    message = str(info.value)
    n = int(message.split("sampled grid ")[1].split()[0])
    case = exercise.sampled[n]
    assert f"scale={case.scale!r}, zero_point={case.zero_point}" in message, message
    assert f"seed {SAMPLED.seed}" in message


def test_the_guide_shows_the_message_the_grader_gives() -> None:
    """book/guide_grader.md quotes the truncated bound's failure: it is the grader's, word for word."""
    guide = (ROOT / "book" / "guide_grader.md").read_text(encoding="utf-8")
    quoted = guide.split("(grader-8bit)=")[1].split("```text\n")[1].split("\n```")[0]
    with pytest.raises(CheckFailure) as info:
        BY_CHECK["quint8 values"].run(Impl(BY_NAME["ReLU6"], _namespace(TRUNCATED_BOUND)), "cpu")
    assert quoted == str(info.value)


def test_the_sampled_grids_are_drawn_as_calibration_draws_them_and_replayable() -> None:
    again = GridSample(SAMPLED.seed, SAMPLED.count, SAMPLED.ends, SAMPLED.one_sided, SAMPLED.round_scales)
    assert again.grids == SAMPLED.grids and len(SAMPLED.grids) == SAMPLED.count
    other = GridSample(SAMPLED.seed + 1, SAMPLED.count, SAMPLED.ends, SAMPLED.one_sided, SAMPLED.round_scales)
    assert other.grids != SAMPLED.grids
    inputs = [i for i, _ in SAMPLED.grids]
    outputs = [o for _, o in SAMPLED.grids]
    for grids in (inputs, outputs):
        zero_points = [z for _, z in grids]
        assert {0, 255} <= set(zero_points) and any(40 < z < 215 for z in zero_points)  # both ends, the middle
        round_ones = [s for s, _ in grids if s in SAMPLED.round_scales]
        observed = [s for s, _ in grids if s not in SAMPLED.round_scales]
        assert len(round_ones) >= SAMPLED.count // 3 and len(observed) >= SAMPLED.count // 3
        assert all(s == float(torch.tensor(s, dtype=torch.float32)) for s in observed)  # as an observer holds it
        assert all(0 <= z <= 255 for z in zero_points) and all(s > 0 for s, _ in grids)
    for exercise in EXERCISES8:  # every case's arguments in turn; an output grid where the case gives one
        if exercise.kind == "quint8":
            assert len(exercise.graded_cases) == len(exercise.cases) + SAMPLED.count
            for n, case in enumerate(exercise.sampled):
                chosen = exercise.cases[n % len(exercise.cases)].arguments
                assert (case.scale, case.zero_point) == inputs[n]
                if chosen.get("scale") is not None:
                    assert (case.arguments["scale"], case.arguments["zero_point"]) == outputs[n]
                assert {k: v for k, v in case.arguments.items() if k not in ("scale", "zero_point")} == \
                    {k: v for k, v in chosen.items() if k not in ("scale", "zero_point")}


def test_a_table_computed_another_correct_way_passes() -> None:
    """(q − zp)·scale and y / scale instead of torch's fused multiply-add and float32 inverse: only
    near-ties differ, and there either neighbour is accepted."""
    other = ("def requantize(y, scale, zero_point):\n"
             "    return (torch.round(y.double() / scale) + zero_point).clamp(0, 255).to(torch.uint8)")
    ns = _namespace(other)
    differ = 0
    for exercise in EXERCISES8:
        if exercise.kind == "quint8":
            BY_CHECK["quint8 values"].run(Impl(exercise.activation, ns), "cpu")
            for case in exercise.graded_cases:
                x = every_quint8(case)
                differ += int((ns[exercise.name](x, **case.arguments).int_repr()
                               != torch_quint8(exercise, x, case.arguments).int_repr()).sum())
    assert differ > 0  # it is not torch's arithmetic: the near-tie rule is what lets it pass


def test_at_an_exact_tie_float32_cannot_reach_torch_lands_on_either_side() -> None:
    """Where the exact position is a tie that float32 does not hold (121·0.025 / 0.05 = 60.5, with
    0.025 inexact), torch's own kernel gives one code on a contiguous input and the other on the
    grader's transposed one; the solution lands on either. The rule that accepts both is needed: the
    solution differs from torch at such ties and still passes."""
    ns = _namespace("")
    at_ties = layouts = 0
    for exercise in (e for e in EXERCISES8 if e.kind == "quint8"):
        cases = exercise.graded_cases
        exact = exact_positions(exercise, cases)
        for n, case in enumerate(cases):
            x = every_quint8(case)
            order = torch.argsort(x.int_repr().reshape(-1).long())
            ours = ns[exercise.name](x, **case.arguments).int_repr().reshape(-1)[order].long()
            theirs = torch_quint8(exercise, x, case.arguments).int_repr().reshape(-1)[order].long()
            contiguous = torch_quint8(exercise, x.contiguous(), case.arguments).int_repr().reshape(-1)[order].long()
            tie = exact[n] % 1 == 0.5
            at_ties += int(((ours != theirs) & tie).sum())
            layouts += int(((contiguous != theirs) & tie).sum())
        BY_CHECK["quint8 values"].run(Impl(exercise.activation, ns), "cpu")
    assert at_ties > 0 and layouts > 0


def test_at_an_exact_tie_float32_reaches_either_zero_point_convention_passes_and_half_up_fails() -> None:
    """Inputs k/16 to an output step of 1/8: ELU's positive half lands on exact ties that float32
    holds. On the grader's transposed input torch adds the odd zero point before rounding, the
    solution (as torch on a contiguous input) after: both pass. With an even zero point the two
    conventions agree, and rounding half up fails (with an odd one it matches one of them at each tie)."""
    exercise, case = BY_ENTRY["ELU"], QCase(2.0 ** -4, 64, (("scale", 2.0 ** -3), ("zero_point", 11)))
    ns = _namespace("")
    x = every_quint8(case)
    ours, theirs = ns["quantized_elu"](x, **case.arguments), torch_quint8(exercise, x, case.arguments)
    assert torch.equal(ours.int_repr(), torch_quint8(exercise, x.contiguous(), case.arguments).int_repr())
    assert not torch.equal(ours.int_repr(), theirs.int_repr())
    quint8_values_on(Impl(exercise.activation, ns), exercise, (case,))
    even = QCase(2.0 ** -4, 64, (("scale", 2.0 ** -3), ("zero_point", 12)))
    quint8_values_on(Impl(exercise.activation, ns), exercise, (even,))
    with pytest.raises(CheckFailure, match="a tie: torch rounds half to even"):
        quint8_values_on(Impl(exercise.activation, _namespace(HALF_UP)), exercise, (even,))


def test_a_submission_is_this_chapter_s_by_a_top_level_definition(tmp_path: Path) -> None:
    """Read, never run: a top-level def, assignment or import of a chapter's name; not a mention."""
    cases = {"def fp8_silu(input):\n    return input\n": "quantized",
             "quantized_relu6 = lambda input: input\n": "quantized",
             "from mine import quantized_elu\n": "quantized",
             "def helper():\n    def quantized_relu6(x):\n        return x\n": "torch",
             "text = 'quantized_relu6'\ndef relu(input, inplace=False):\n    return input\n": "torch"}
    for n, (code, framework) in enumerate(cases.items()):
        path = tmp_path / f"s{n}.py"
        path.write_text(code)
        assert framework_of(path) == framework, code
