"""One check's result, as the worker reports it and the parent judges it, and the devices a run
may ask for."""
from __future__ import annotations

from dataclasses import dataclass, field

DEVICES = {"cpu": ["cpu"], "cuda": ["cuda"], "all": ["cpu", "cuda"]}
NO_CUDA = "CUDA is not available on this machine"


@dataclass
class CheckResult:
    activation: str
    check: str
    device: str
    status: str  # passed | failed | skipped
    message: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return check_label(self.check, self.device)


def check_label(check: str, device: str) -> str:
    """A check's name in every report: ``grad[float32]`` on the CPU, ``grad[float32]@cuda`` elsewhere."""
    return check if device == "cpu" else f"{check}@{device}"


def parse_check_label(label: str) -> tuple[str, str]:
    """``(check, device)`` of a label made by :func:`check_label`."""
    check, _, device = label.partition("@")
    return check, device or "cpu"


def check_kind(label: str) -> str:
    """What a check looks at, without its parameters and device: ``grad[float32]@cuda`` -> ``grad``."""
    return parse_check_label(label)[0].split("[", 1)[0]
