"""Where a batch's time went: CPU seconds of the workers (every process below this one), of this
process (judging, and the rest), and wall time; what to look at before buying more machines."""
from __future__ import annotations

import resource
import time

from grader.grading.dedup import FileReportCache
from grader.run import supervisor


class CpuClock:
    def __init__(self) -> None:
        self.wall = time.monotonic()
        self.children = self._cpu(resource.RUSAGE_CHILDREN)
        self.own = self._cpu(resource.RUSAGE_SELF)
        self.judging = supervisor.JUDGING.seconds

    @staticmethod
    def _cpu(who: int) -> float:
        usage = resource.getrusage(who)
        return usage.ru_utime + usage.ru_stime

    def summary(self, cache: FileReportCache) -> str:
        """One line: the files graded and reused since this clock started, and the seconds spent."""
        return (f"files: {cache.files_graded} graded, {cache.files_reused} the same as one graded before (not "
                f"graded again); CPU: workers {self._cpu(resource.RUSAGE_CHILDREN) - self.children:.1f} s, this "
                f"process {self._cpu(resource.RUSAGE_SELF) - self.own:.1f} s (judging "
                f"{supervisor.JUDGING.seconds - self.judging:.1f} s); wall {time.monotonic() - self.wall:.1f} s")
