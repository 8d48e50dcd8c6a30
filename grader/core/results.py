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
        return self.check if self.device == "cpu" else f"{self.check}@{self.device}"
