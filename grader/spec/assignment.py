"""Exercises and assignments: the gradebook's columns, and the part of the course a class is given.

An *exercise* is one activation in one chapter's notebook, written for one framework: ``ReLU`` of
``01_standard`` (torch) and ``MLX ReLU`` of ``10_mlx`` are two exercises, graded by different
checks, each with a column of its own. Its ``key`` names it everywhere a grade is kept: the JSON
reports, the gradebook's CSV, the class report, Gradescope's tests and Classroom's points.

An *assignment* is a set of chapters, named by their exercise notebooks' stems (``02_relu_variants``,
``10_mlx``); without one, the whole course is graded, as before assignments existed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Iterable

from grader.spec.catalog import ACTIVATIONS, BY_NAME, CHAPTERS, chapter_stem
from grader.spec.frameworks import FRAMEWORKS, MLX, QUANTIZED, TORCH
from grader.spec.mlx_catalog import PORT_OF, PORTS
from grader.spec.quantized_catalog import BY_ENTRY as EIGHT_BIT, EXERCISES8

MLX_CHAPTER = MLX.chapter
QUANTIZED_CHAPTER = QUANTIZED.chapter
# what a framework's exercises are called in front of the activation's name (the 8-bit chapter's
# exercises are named by their own catalogue: "Quantized ReLU6", "FP8 GELU")
PREFIX = {f.name: f.key_prefix for f in FRAMEWORKS if f.key_prefix is not None}


@dataclass(frozen=True)
class ExerciseSpec:
    key: str  # the column: "ReLU", "MLX ReLU"
    activation: str  # the catalogue entry it is graded against
    framework: str  # a Framework's name (grader/spec/frameworks.py), as reports record it
    chapter: str  # the exercise notebook's stem

    @property
    def names(self) -> tuple[str, ...]:
        """What a submission defines for it: ``relu``, ``ReLUFunction``, ``ReLU`` (MLX: mlx.nn's names)."""
        if self.framework == QUANTIZED.name:
            return (EIGHT_BIT[self.activation].name,)
        return PORT_OF[self.activation].names if self.framework == MLX.name else BY_NAME[self.activation].names


def activation_of(key: str) -> str:
    """The catalogue activation an exercise is graded against (``MLX ReLU`` -> ``ReLU``); a key of
    another grader version's report stands for itself."""
    return BY_KEY[key].activation if key in BY_KEY else key


def exercise_key(activation: str, framework: str = "torch") -> str:
    """``ReLU`` for torch's exercise, ``MLX ReLU`` for MLX's, ``Quantized ReLU6`` or ``FP8 GELU`` for
    the 8-bit chapter's (an activation it does not have keeps its plain name, so no key is taken)."""
    if framework == QUANTIZED.name:
        exercise = EIGHT_BIT.get(activation)
        return exercise.key if exercise else f"8-bit {activation}"
    return PREFIX[framework] + activation


EXERCISES: tuple[ExerciseSpec, ...] = (
    *(ExerciseSpec(a.name, a.name, TORCH.name, chapter_stem(a.chapter)) for a in ACTIVATIONS),
    *(ExerciseSpec(exercise_key(p.entry, MLX.name), p.entry, MLX.name, MLX_CHAPTER) for p in PORTS),
    *(ExerciseSpec(e.key, e.entry, QUANTIZED.name, QUANTIZED_CHAPTER) for e in EXERCISES8),
)
BY_KEY: dict[str, ExerciseSpec] = {e.key: e for e in EXERCISES}
# the exercise notebooks, in the course's order
CHAPTER_STEMS: tuple[str, ...] = tuple(dict.fromkeys(e.chapter for e in EXERCISES))
TITLES: dict[str, str] = {**{chapter_stem(c): title for c, title in CHAPTERS.items()}, MLX_CHAPTER: "MLX",
                          QUANTIZED_CHAPTER: "Activations in 8 bits"}


def chapter_title(stem: str) -> str:
    """``2. ReLU variants``: a chapter as reports head it."""
    return f"{int(stem[:2])}. {TITLES[stem]}" if stem in TITLES else stem


class AssignmentError(ValueError):
    """An assignment that names no chapter of the course; its message is one line."""


@dataclass(frozen=True)
class Assignment:
    chapters: tuple[str, ...]  # stems, in the course's order

    @property
    def whole(self) -> bool:
        return self.chapters == CHAPTER_STEMS

    @property
    def exercises(self) -> tuple[ExerciseSpec, ...]:
        return tuple(e for e in EXERCISES if e.chapter in self.chapters)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(e.key for e in self.exercises)

    def includes(self, activation: str, framework: str = "torch") -> bool:
        exercise = BY_KEY.get(exercise_key(activation, framework))
        return exercise is not None and exercise.chapter in self.chapters

    def describe(self) -> str:
        return "the whole course" if self.whole else "chapter" + ("s " if len(self.chapters) > 1 else " ") + \
            ", ".join(self.chapters)

    def as_list(self) -> list[str]:
        """What reports record, and what ``--chapter`` takes back."""
        return list(self.chapters)


WHOLE_COURSE = Assignment(CHAPTER_STEMS)


def parse_chapter(name: str) -> str:
    """A chapter's stem from what an instructor may type: ``02_relu_variants``, its notebook's file
    name or path; raises :class:`AssignmentError` for anything else."""
    stem = PurePath(name.strip()).name.removesuffix(".ipynb")
    if stem in CHAPTER_STEMS:
        return stem
    raise AssignmentError(f"--chapter {name!r}: not a chapter of the course; the chapters are "
                          + ", ".join(CHAPTER_STEMS))


def assignment(chapters: Iterable[str] | None = None) -> Assignment:
    """The assignment of these chapters (repeats allowed); none: the whole course."""
    chosen = {parse_chapter(c) for c in chapters or ()}
    if not chosen:
        return WHOLE_COURSE
    return Assignment(tuple(c for c in CHAPTER_STEMS if c in chosen))
