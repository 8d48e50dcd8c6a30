"""The 8-bit exercises (chapter ``11_quantized``): activations on quint8 tensors, as 256-entry tables,
and in float8, graded against torch's quantized kernels and torch's float32 computation.

A quint8 exercise names its catalogue activation, the student's function (named and shaped after
torch's quantized functional one, so the two read line by line), where its output's scale and zero
point come from, the torch kernel it is graded against and the quantization parameters it is
graded on. The chosen qparams (``cases``) show the failure modes one can name in advance: a zero
point in the middle and at both ends (inputs all ≥ 0, all ≤ 0), power-of-two scales (exact ties,
where the rounding mode shows), outputs that clip at 0 and 255 (the clipping range), and each
parameter (alpha, negative_slope) away from its default. Chosen grids are few, and round: on all of
them 6 / scale is an integer or past 255, so a ReLU6 bound truncated instead of rounded passed. So
every exercise is also graded on ``SAMPLED`` grids, drawn as a calibration draws them (``GridSample``):
a wrong function of (scale, zero point), a bound, a constant's code, an output grid, shows on some.

An fp8 exercise computes in float32 and rounds once to ``torch.float8_e4m3fn`` (4 exponent bits,
3 mantissa bits, no infinities, largest 448), the format used for activations in fp8 training.
"""
from __future__ import annotations

import math
import random
import struct
from dataclasses import dataclass
from functools import cached_property

from grader.spec.catalog import BY_NAME, REQUIRED, Activation

QUINT8, FP8 = "quint8", "fp8"
FP8_DTYPE = "float8_e4m3fn"  # torch's name; the one of the two float8 formats meant for activations
# where a quint8 output's scale and zero point come from
INPUT, GIVEN, OPTIONAL, FIXED = "input's", "given", "given, or the input's", "fixed"


@dataclass(frozen=True)
class QCase:
    scale: float  # the input's
    zero_point: int
    kwargs: tuple[tuple[str, object], ...] = ()  # the student's keyword arguments (and torch's)
    origin: str = ""  # where a sampled grid comes from, so that a failure can be replayed

    @property
    def arguments(self) -> dict:
        return dict(self.kwargs)

    def describe(self, name: str) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self.kwargs)
        where = f" ({self.origin})" if self.origin else ""
        return f"{name}(x{args}) on x of scale={self.scale!r}, zero_point={self.zero_point}{where}"


def _float32(v: float) -> float:
    return struct.unpack("f", struct.pack("f", v))[0]


@dataclass(frozen=True)
class GridSample:
    """(scale, zero point) pairs drawn as calibration draws them, deterministically from ``seed``
    (Python's ``random.Random``: the same grids on every machine and Python version).

    Half the grids are a min/max observer's: a real range [a, b] holding 0, its ends' magnitudes
    log-uniform in ``ends`` (one range in ``one_sided`` starts at 0, one ends there: zero point 0 or
    255), scale (b − a)/255 rounded to float32 as the observer's tensor holds it, zero point
    round(−a / scale). The other half take a round scale from ``round_scales`` and a zero point
    anywhere in 0...255. Each input grid comes with an output grid, drawn the same way, for the
    exercises that take one; the two kinds alternate so that every pairing of them occurs."""
    seed: int
    count: int
    ends: tuple[float, float]
    one_sided: int
    round_scales: tuple[float, ...]

    def _draw(self, rng: random.Random, observed: bool) -> tuple[float, int]:
        if not observed:
            return self.round_scales[int(rng.random() * len(self.round_scales))], int(rng.random() * 256)
        low, high = math.log(self.ends[0]), math.log(self.ends[1])
        a, b = -math.exp(rng.uniform(low, high)), math.exp(rng.uniform(low, high))
        side = int(rng.random() * self.one_sided)
        a, b = (0.0, b) if side == 0 else (a, 0.0) if side == 1 else (a, b)
        scale = _float32((b - a) / 255)
        return scale, min(255, max(0, round(-a / scale)))

    @cached_property
    def grids(self) -> tuple[tuple[tuple[float, int], tuple[float, int]], ...]:
        """``count`` pairs (input grid, output grid)."""
        rng = random.Random(self.seed)
        return tuple((self._draw(rng, n % 2 == 0), self._draw(rng, n % 4 < 2)) for n in range(self.count))


# A mistake that shows on one grid in 20 of this distribution escapes all 96 with probability
# 0.95^96 < 1%. They cost one more call of the student's function per grid, all in one interaction
# per exercise: the chapter grades in the time it took on the chosen grids alone (README, Measured).
SAMPLED = GridSample(seed=31, count=96, ends=(0.25, 16.0), one_sided=8,
                     round_scales=(0.005, 0.01, 0.02, 0.025, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.25, 0.3,
                                   2.0 ** -4, 2.0 ** -5, 2.0 ** -6, 2.0 ** -7, 2.0 ** -8))


@dataclass(frozen=True)
class Exercise8:
    entry: str  # the torch catalogue activation
    kind: str  # quint8 | fp8
    name: str  # the student's function
    params: tuple[tuple[str, object], ...]  # after ``input``: (name, default or REQUIRED)
    kernel: str  # torch's function it is graded against (dotted)
    output: str = INPUT  # quint8: where the output's qparams come from
    fixed: tuple[float, int] | None = None  # FIXED: torch's scale and zero point
    cases: tuple[QCase, ...] = ()  # quint8: the input qparams and arguments
    fp8_cases: tuple[tuple[tuple[str, object], ...], ...] = ((),)  # fp8: keyword arguments
    # the catalogue's float functional's keyword arguments, from the student's (the float64 truth)
    float_args: tuple[str, ...] = ()

    @property
    def activation(self) -> Activation:
        return BY_NAME[self.entry]

    @property
    def key(self) -> str:
        """The exercise's column in every report: ``Quantized ReLU6``, ``FP8 GELU``."""
        return ("Quantized " if self.kind == QUINT8 else "FP8 ") + self.entry

    def signature(self) -> list[tuple[str, object]]:
        return [("input", REQUIRED), *self.params]

    @cached_property
    def sampled(self) -> tuple[QCase, ...]:
        """The chosen cases' arguments in turn on the ``SAMPLED`` grids: the input's grid and, where the
        case gives the output's scale and zero point, the output's."""
        out = []
        for n, (inp, output) in enumerate(SAMPLED.grids):
            kw = self.cases[n % len(self.cases)].arguments
            if kw.get("scale") is not None:
                kw.update(scale=output[0], zero_point=output[1])
            out.append(QCase(*inp, tuple(kw.items()),
                             f"sampled grid {n} of {SAMPLED.count}, seed {SAMPLED.seed}"))
        return tuple(out)

    @property
    def graded_cases(self) -> tuple[QCase, ...]:
        """What the values check grades: the chosen cases, then the sampled grids."""
        return self.cases + self.sampled


_A, _B, _C, _D, _E = (0.05, 128), (2.0 ** -4, 64), (0.1, 255), (2.0 ** -5, 0), (0.0123, 200)


def _cases(*specs: tuple) -> tuple[QCase, ...]:
    return tuple(QCase(s, z, tuple(kw.items())) for (s, z), kw in specs)


EXERCISES8: tuple[Exercise8, ...] = (
    Exercise8("ReLU6", QUINT8, "quantized_relu6", (), "torch.nn.functional.relu6",
              cases=_cases(*((q, {}) for q in (_A, _B, _C, _D, _E)))),
    Exercise8("Hardswish", QUINT8, "quantized_hardswish", (("scale", REQUIRED), ("zero_point", REQUIRED)),
              "torch.ao.nn.quantized.functional.hardswish", GIVEN,
              cases=_cases((_A, {"scale": 2.0 ** -5, "zero_point": 12}), (_B, {"scale": 0.05, "zero_point": 8}),
                           (_C, {"scale": 2.0 ** -6, "zero_point": 128}), (_E, {"scale": 0.02, "zero_point": 20}),
                           (_A, {"scale": 0.01, "zero_point": 40}))),
    Exercise8("Sigmoid", QUINT8, "quantized_sigmoid", (), "torch.sigmoid", FIXED, (1.0 / 256, 0),
              cases=_cases(*((q, {}) for q in (_A, _B, _C, _D, _E)))),
    Exercise8("ELU", QUINT8, "quantized_elu", (("scale", REQUIRED), ("zero_point", REQUIRED), ("alpha", 1.0)),
              "torch.ao.nn.quantized.functional.elu", GIVEN, float_args=("alpha",),
              cases=_cases((_A, {"scale": 2.0 ** -5, "zero_point": 64}),
                           (_B, {"scale": 0.05, "zero_point": 100, "alpha": 0.5}),
                           (_C, {"scale": 0.01, "zero_point": 210, "alpha": 2.0}),
                           (_E, {"scale": 0.03, "zero_point": 40}))),
    Exercise8("LeakyReLU", QUINT8, "quantized_leaky_relu",
              (("negative_slope", 0.01), ("scale", None), ("zero_point", None)),
              "torch.ao.nn.quantized.functional.leaky_relu", OPTIONAL, float_args=("negative_slope",),
              cases=_cases((_A, {}), (_B, {"negative_slope": 0.5}),
                           (_C, {"negative_slope": 0.2, "scale": 0.02, "zero_point": 255}),
                           (_E, {"negative_slope": 2.0}),
                           (_A, {"scale": 0.02, "zero_point": 0}))),
    Exercise8("GELU", FP8, "fp8_gelu", (("approximate", "none"),), "torch.nn.functional.gelu",
              fp8_cases=((), (("approximate", "tanh"),)), float_args=("approximate",)),
    Exercise8("SiLU", FP8, "fp8_silu", (), "torch.nn.functional.silu"),
)
BY_ENTRY: dict[str, Exercise8] = {e.entry: e for e in EXERCISES8}
NAMES: frozenset[str] = frozenset(e.name for e in EXERCISES8)


def graded(namespace: dict) -> list[Activation]:
    """The activations whose 8-bit functions the submission defines, in this chapter's order."""
    return [e.activation for e in EXERCISES8 if e.name in namespace]
