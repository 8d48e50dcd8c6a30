"""A class graded into a gradebook: the service under ``python -m grader batch``.

:meth:`ClassBatch.plan` decides who is graded (the machine's slice of the class, the students
unchanged since the last report kept); :meth:`ClassBatch.save` writes the gradebook and the report
as they stand, the students not graded yet provisional, so that a batch killed at any point leaves a
gradebook that says so; :meth:`ClassBatch.grade` grades the others, ``jobs`` students at once, each
in a thread that waits on its student's worker and judges the results here, with torch's
references computed once for the whole class (grader/checks/harness.py).
"""
from __future__ import annotations

import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from grader.grading import resume
from grader.grading.cpu_clock import CpuClock
from grader.grading.dedup import FileReportCache
from grader.grading.discovery import Student
from grader.grading.options import BatchOptions
from grader.grading.progress import Progress
from grader.grading.sharding import in_shard
from grader.grading.student import grade_student
from grader.report import gradebook
from grader.report.model import write_json
from grader.run import worker_control
from grader.spec.assignment import Assignment

CHECKPOINT_SECONDS = 60.0  # how often a long batch saves what it has graded (--json), to resume after a stop


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class ClassBatch:
    options: BatchOptions
    students: list[Student]  # those this run grades or keeps: the machine's slice
    maxima: dict[str, int]
    records: dict[str, dict]  # by student: graded, or kept from the last report
    todo: list[resume.ToGrade]
    pending: dict[str, dict] = field(default_factory=dict)  # provisional records of the students in todo

    @property
    def assignment(self) -> Assignment:
        return self.options.grading.assignment

    @classmethod
    def plan(cls, options: BatchOptions, students: list[Student],
             log: Callable[[str], None] = _to_stderr) -> "ClassBatch":
        """The run over ``students`` (all of the class, as discovered): ``log`` says how many are graded."""
        if options.shard:
            everyone = len(students)
            students = in_shard(students, options.shard)
            log(f"shard {options.shard[0]}/{options.shard[1]}: {len(students)} of the {everyone} students")
        grading = options.grading
        maxima = gradebook.max_scores(grading.device, grading.assignment)
        previous = {} if options.force or not options.json else resume.previous_records(
            Path(options.json), grading.device, maxima, grading.assignment)
        records, todo = resume.plan(students, options.submissions, previous, options.fetched)
        log(f"{len(students)} student{'' if len(students) == 1 else 's'}: {len(todo)} to grade, {len(records)} "
            f"unchanged since the last report ({grading.assignment.describe()}; jobs: {options.jobs})")
        pending = {s.name: resume.not_finished(s, files, maxima) for s, files, _ in todo}
        return cls(options, students, maxima, records, todo, pending)

    def save(self) -> None:
        """Both reports, atomically: the students graded so far, the others provisional. OSError when
        they cannot be written."""
        everyone = list({**self.pending, **self.records}.values())
        device, shard = self.options.grading.device, self.options.shard
        gradebook.write_csv(everyone, self.maxima, self.options.csv)
        if self.options.json and shard:  # the same report, saying which slice of the class it holds
            write_json({**gradebook.batch_json(everyone, device, self.maxima, self.assignment),
                        "shard": f"{shard[0]}/{shard[1]}"}, self.options.json)
        elif self.options.json:
            gradebook.write_batch_json(everyone, device, self.maxima, self.options.json, self.assignment)

    def grade(self, log: Callable[[str], None] = _to_stderr) -> bool:
        """Grade every student left, ``jobs`` at a time, into :attr:`records`, saving both reports
        every :data:`CHECKPOINT_SECONDS`; False when interrupted (every worker is then stopped and
        what was graded is saved). ``log`` gets where the time went."""
        root = self.options.submissions
        progress = Progress(len(self.todo))
        last_save = time.monotonic()
        cache = FileReportCache()
        clock = CpuClock()
        pool = ThreadPoolExecutor(max_workers=self.options.jobs)
        futures: set[Future] = {pool.submit(grade_student, s, root, files, self.options.grading, self.maxima, cache,
                                            (root,), source) for s, files, source in self.todo}
        try:
            while futures:
                done, futures = wait(futures, return_when=FIRST_COMPLETED)
                for f in done:
                    record = f.result()
                    self.records[record["student"]] = record
                    progress.update(record)
                if time.monotonic() - last_save > CHECKPOINT_SECONDS:
                    self.save()
                    last_save = time.monotonic()
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            worker_control.stop_all()
            pool.shutdown(wait=True)
            progress.close()
            self.save()
            return False
        pool.shutdown()
        progress.close()
        log(clock.summary(cache))
        return True
