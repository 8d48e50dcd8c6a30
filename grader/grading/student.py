"""One student of a class graded into their gradebook record: all their files in one worker
(grader/run/supervisor.py: each file in a process of its own), judged in this process, a file identical
to one graded before in the batch reused (:mod:`grader.grading.dedup`)."""
from __future__ import annotations

from pathlib import Path

from grader.grading import submissions
from grader.grading.dedup import FileReportCache, report_key, reusable_report, with_path
from grader.grading.discovery import Student, nothing_to_grade, relative
from grader.grading.options import GradingOptions
from grader.report import gradebook
from grader.report.model import SubmissionResult


def grade_student(student: Student, root: Path, files: list[dict], options: GradingOptions,
                  maxima: dict[str, int], cache: FileReportCache | None = None, read_only: tuple[Path, ...] = (),
                  fetched: dict | None = None) -> dict:
    """Grade one student's files; a file identical to one graded before in this batch (``cache``) is
    not graded again. Returns the student's record; a failure of the grader's own is that student's
    "grader error", never the batch's. ``fetched``: the repository the files were fetched from
    (:mod:`grader.grading.fetch`), recorded with the grades; its error, if it could not be fetched,
    is the student's."""
    problem = (fetched or {}).get("error") or nothing_to_grade(student)
    if problem:
        return _with_source(gradebook.student_record(student.name, files, [], maxima, problem), fetched)
    try:
        reports = _grade_files(student, files, options, cache or FileReportCache(), read_only or (root,))
    except Exception as exc:  # the grader's own failure: this student's, never the batch's
        return _with_source(gradebook.student_record(student.name, files, [], maxima,
                                                     f"grader error: {type(exc).__name__}: {exc}"[:300]), fetched)
    by_path = {str(p): relative(p, root) for p in student.files}
    for report in reports:
        report.path = by_path.get(report.path, report.path)
    return _with_source(gradebook.student_record(student.name, files, reports, maxima), fetched)


def _with_source(record: dict, fetched: dict | None) -> dict:
    if fetched is None:
        return record
    return {**record, **{key: fetched.get(key) for key in gradebook.FETCHED}}


def _grade_files(student: Student, files: list[dict], options: GradingOptions, cache: FileReportCache,
                 read_only: tuple[Path, ...]) -> list[SubmissionResult]:
    """The reports of a student's files, in order: graded here, or an identical file's."""
    keys = [report_key(p, f["sha256"], options) for p, f in zip(student.files, files)]
    claims = [cache.claim(k) for k in keys]
    mine = [i for i, (_, own) in enumerate(claims) if own]
    reports: dict[int, SubmissionResult] = {}
    shareable: set[int] = set()
    try:
        for i, (report, clean) in _grade_in_worker(student, mine, options, read_only).items():
            reports[i] = report
            if clean:
                shareable.add(i)
    finally:  # settled even when grading failed: a student waiting for these files grades them himself
        for i in mine:
            ok = i in shareable and reusable_report(reports[i])
            cache.settle(keys[i], reports[i] if ok else None, i in reports)
    left = []
    for i, (future, own) in enumerate(claims):
        if own:
            continue
        shared = future.result()  # the other student's grading has no wait of its own: it ends
        if shared is None:
            left.append(i)
        else:
            cache.count_reuse()
            reports[i] = with_path(shared, student.files[i])
    reports.update({i: report for i, (report, _) in _grade_in_worker(student, left, options, read_only).items()})
    return [reports[i] for i in range(len(student.files))]


def _grade_in_worker(student: Student, indices: list[int], options: GradingOptions,
                     others: tuple[Path, ...]) -> dict[int, tuple[SubmissionResult, bool]]:
    """The reports of the files at ``indices``, each with whether it may stand for an identical file
    (graded cleanly: nothing unplanned on the channel, no worker lost)."""
    if not indices:
        return {}
    paths = [str(student.files[i]) for i in indices]
    reports = submissions.grade_many(paths, options.device, options.check_timeout, options.memory,
                                     hide=tuple(Path(h) for h in options.hide), assignment=options.assignment,
                                     others=others)
    return {i: (r, r.shareable) for i, r in zip(indices, reports)}
