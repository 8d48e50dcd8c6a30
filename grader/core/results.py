"""One check's result, the unit of every report (the parent's verdict, a line of ``check()``'s table,
a check in a report's JSON), and the devices a run may ask for. An exercise's and a submission's
results are :mod:`grader.report.model`'s."""
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
    # what to try, for a failure shown in a notebook (grader/feedback/hints.py); never in a report's JSON
    hint: str | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return check_label(self.check, self.device)

    @property
    def passed(self) -> bool | None:
        """None for a skipped check, which counts in no score."""
        return None if self.status == "skipped" else self.status == "passed"

    def to_json(self) -> dict:
        return {"name": self.name, "passed": self.passed, "status": self.status, "message": self.message,
                "notes": self.notes}

    @classmethod
    def from_json(cls, data: dict, activation: str) -> "CheckResult":
        """A check of ``activation`` as :meth:`to_json` wrote it."""
        return cls(activation, *parse_check_label(data["name"]), data["status"], data.get("message") or "",
                   list(data.get("notes") or []))


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
