"""A batch's progress, one student at a time: a progress bar (tqdm) on a terminal; one line per
student elsewhere (CI logs), where a bar's redraws would be noise."""
from __future__ import annotations

import sys


class Progress:
    def __init__(self, total: int) -> None:
        self.total, self.done, self.bar = total, 0, None
        if sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="student", file=sys.stderr, dynamic_ncols=True)
            except ImportError:
                pass

    def update(self, record: dict) -> None:
        """One more student graded: ``record`` is their gradebook record."""
        self.done += 1
        line = f"{record['student']}: {record['score']}/{record['max_score']}"
        if record["error"]:
            line += f"  error: {record['error']}"
        if self.bar is not None:
            self.bar.update(1)
            if record["error"]:
                self.bar.write(line, file=sys.stderr)
        else:
            print(f"[{self.done}/{self.total}] {line}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
