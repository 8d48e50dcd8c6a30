"""``python -m grader batch SUBMISSIONS_DIR --csv GRADEBOOK [--json REPORT] [--jobs N] [--force] [--shard K/N]``.

Grades a class into a gradebook (:mod:`grader.report.gradebook`). Who the students are, and which
files are theirs, is :mod:`grader.grading.discovery`'s: a subfolder or a loose file per student;
hidden files, virtual environments and symbolic links are never graded.

Each student's files are graded one after the other by one worker (grader/run/sandbox.py), which
imports torch once and runs each file in a process of its own forked from it, with the sandbox and
limits of a single grading: a file that crashes or hangs costs that file's exercise alone, and no
file can change another's grade. This process judges every result (torch's references computed once
for the class) in a thread per student, ``--jobs`` students at once; a failure of its own while
judging one student is that student's "grader error" line. A file identical to one already graded
in the batch (same SHA-256, name and options: an untouched exercise, a copy) is not graded again.
With ``--json``, a re-run reuses the students whose files (SHA-256) are unchanged since that report
was written by the same grader version, torch and device; ``--force`` regrades everyone.

``--shard K/N`` grades the K-th of N disjoint slices of the class, one per machine: a student's slice
is the SHA-256 of their name modulo N, so it depends on nothing else (not on who else is in the
class, nor on the order of the folders). ``python -m grader merge`` (grader/commands/merge.py) joins
the N JSON reports into the gradebook that one batch of the whole class writes.

``--fetched RECORD`` (written by ``grading-workflow --fetch``) adds each student's repository and
the commit graded to the gradebook; a repository that could not be fetched is its student's error.
``--canvas``, ``--moodle`` and ``--roster`` also write the grades as Canvas's and Moodle's grade
imports (:mod:`grader.report.lms`).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
import zlib
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from grader import __version__
from grader.report import gradebook
from grader.core import limits
from grader.run import sandbox, worker_process
from grader.report.model import NOT_FINISHED, SubmissionResult, as_json, write_json
from grader.spec.assignment import WHOLE_COURSE, Assignment
from grader.commands import grade, options as grading_options
from grader.grading import fetch as fetching
from grader.grading.discovery import MAX_FILES, Student, discover, parse_shard, sha256, shard_of

CHECKPOINT_SECONDS = 60.0  # how often a long batch saves what it has graded (--json), to resume after a stop


@dataclass
class Options:
    device: str = "all"
    check_timeout: float = limits.CHECK_TIMEOUT
    memory: int = limits.MEMORY
    hide: tuple[str, ...] = ()
    assignment: Assignment = WHOLE_COURSE


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _problem(student: Student) -> str:
    """Why there is nothing to grade, before grading."""
    where = f"{student.folder}/" if student.folder else student.name
    if not student.files:
        why = f"no .ipynb or .py file in {where}"
        if student.ignored:
            why += f" (symbolic links are not graded: {', '.join(sorted(student.ignored)[:3])})"
        return why
    if len(student.files) > MAX_FILES:
        return (f"{len(student.files)} .ipynb/.py files in {where}, more than the {MAX_FILES} graded per "
                "student: not graded (a committed library or environment?)")
    return ""


class Graded:
    """Each distinct file graded once per batch: a file with the same SHA-256, the same name (a .py
    and an .ipynb of the same bytes are not the same submission) and the same options as one graded
    before gets that one's report, with its own path (an untouched exercise, a copy). A student
    who needs a file another student is grading waits for that grading."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reports: dict[tuple, Future] = {}
        self.graded = 0  # files graded by a worker
        self.reused = 0  # files that got the report of an identical one

    def claim(self, key: tuple) -> tuple[Future, bool]:
        """The future report of the file ``key`` names, and whether the caller is to grade it (and
        then :meth:`settle` it)."""
        with self._lock:
            mine = key not in self._reports
            if mine:
                self._reports[key] = Future()
            return self._reports[key], mine

    def settle(self, key: tuple, report: dict | None, graded: bool = True) -> None:
        """``report``: the graded file, or None when it is not to be reused (a grader error, or a file
        whose grading was not clean): each student waiting for it then grades it himself. Kept
        compressed: a class holds thousands. ``graded``: a worker graded it."""
        with self._lock:
            future = self._reports[key]
            if report is None:
                del self._reports[key]
            if graded:
                self.graded += 1
        future.set_result(None if report is None else zlib.compress(json.dumps(report).encode()))

    def count_reuse(self) -> None:
        with self._lock:
            self.reused += 1


def _key(path: Path, sha: str, options: Options) -> tuple:
    return (sha, path.name, __version__, options.device, options.check_timeout, options.memory, options.hide,
            options.assignment)


def _as_dict(report: SubmissionResult, device: str) -> dict:
    return as_json([report], device)["submissions"][0]


def _reusable_report(report: dict) -> bool:
    """A file's report that stands for every identical file: not the grader's own failure."""
    texts = [report.get("error") or ""] + [c["message"] for e in report["exercises"] for c in e["checks"]]
    return not any(t.startswith("grader error") or "grader error:" in t for t in texts)


def _with_path(report: bytes, path: Path) -> dict:
    """An identical file's report, as this file's: its path, and its errors naming this file."""
    mine = json.loads(zlib.decompress(report))
    old = mine["path"]
    mine["path"] = str(path)
    if mine.get("error") and mine["error"].startswith(old):
        mine["error"] = str(path) + mine["error"][len(old):]
    return mine


def grade_student(student: Student, root: Path, files: list[dict], options: Options,
                  maxima: dict[str, int], graded: Graded | None = None, read_only: tuple[Path, ...] = (),
                  fetched: dict | None = None) -> dict:
    """Grade one student's files, all in one worker (grader/run/sandbox.py: each file in a process
    of its own), judged in this process; a file identical to one graded before in this batch
    (``graded``) is not graded again. Returns the student's record; a failure of the grader's own
    is that student's "grader error", never the batch's. ``fetched``: the repository the files
    were fetched from (:mod:`grader.grading.fetch`), recorded with the grades; its error, if it
    could not be fetched, is the student's."""
    problem = (fetched or {}).get("error") or _problem(student)
    if problem:
        return _with_source(gradebook.student_record(student.name, files, [], maxima, problem), fetched)
    try:
        submissions = _grade_files(student, files, options, graded or Graded(), read_only or (root,))
    except Exception as exc:  # the grader's own failure: this student's, never the batch's
        return _with_source(gradebook.student_record(student.name, files, [], maxima,
                                                     f"grader error: {type(exc).__name__}: {exc}"[:300]), fetched)
    by_path = {str(p): _relative(p, root) for p in student.files}
    for sub in submissions:
        sub["path"] = by_path.get(sub["path"], sub["path"])
    return _with_source(gradebook.student_record(student.name, files, submissions, maxima), fetched)


def _with_source(record: dict, fetched: dict | None) -> dict:
    if fetched is None:
        return record
    return {**record, **{key: fetched.get(key) for key in gradebook.FETCHED}}


def _grade_files(student: Student, files: list[dict], options: Options, graded: Graded,
                 read_only: tuple[Path, ...]) -> list[dict]:
    """The reports of a student's files, in order: graded here, or an identical file's."""
    keys = [_key(p, f["sha256"], options) for p, f in zip(student.files, files)]
    claims = [graded.claim(k) for k in keys]
    mine = [i for i, (_, own) in enumerate(claims) if own]
    reports: dict[int, dict] = {}
    shareable: set[int] = set()
    try:
        for i, (report, clean) in _grade_in_worker(student, mine, options, read_only).items():
            reports[i] = report
            if clean:
                shareable.add(i)
    finally:  # settled even when grading failed: a student waiting for these files grades them himself
        for i in mine:
            ok = i in shareable and _reusable_report(reports[i])
            graded.settle(keys[i], {**reports[i], "path": str(student.files[i])} if ok else None, i in reports)
    left = []
    for i, (future, own) in enumerate(claims):
        if own:
            continue
        shared = future.result()  # the other student's grading has no wait of its own: it ends
        if shared is None:
            left.append(i)
        else:
            graded.count_reuse()
            reports[i] = _with_path(shared, student.files[i])
    reports.update({i: report for i, (report, _) in _grade_in_worker(student, left, options, read_only).items()})
    return [reports[i] for i in range(len(student.files))]


def _grade_in_worker(student: Student, indices: list[int], options: Options,
                     others: tuple[Path, ...]) -> dict[int, tuple[dict, bool]]:
    """The reports of the files at ``indices``, each with whether it may stand for an identical file
    (graded cleanly: nothing unplanned on the channel, no worker lost)."""
    if not indices:
        return {}
    paths = [str(student.files[i]) for i in indices]
    reports = grade.grade_many(paths, options.device, options.check_timeout, options.memory,
                               hide=tuple(Path(h) for h in options.hide), assignment=options.assignment,
                               others=others)
    return {i: (_as_dict(r, options.device), r.shareable) for i, r in zip(indices, reports)}


def previous_records(path: Path, device: str, maxima: dict[str, int],
                     assignment: Assignment = WHOLE_COURSE) -> dict[str, dict]:
    """The students of an earlier report that can be reused: same grader, torch, device and assignment."""
    import torch

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        print(f"warning: {path}: cannot reuse it ({exc}); grading everyone", file=sys.stderr)
        return {}
    same = (isinstance(data, dict) and data.get("grader_version") == __version__
            and data.get("torch_version") == torch.__version__ and data.get("device") == device
            and data.get("cuda_available") == torch.cuda.is_available() and data.get("max_scores") == maxima
            and data.get("assignment", list(WHOLE_COURSE.chapters)) == assignment.as_list())
    if not same:
        print(f"note: {path} was written by another grader, torch, device or assignment: grading everyone",
              file=sys.stderr)
        return {}
    return {r["student"]: r for r in data.get("students", []) if isinstance(r, dict) and "student" in r}


def reusable(old: dict | None, files: list[dict], fetched: dict | None = None) -> bool:
    # "grader error" is the batch's own failure (a killed process) and NOT_FINISHED a student the
    # batch never got to: worth another try, unlike a corrupt notebook, which stays corrupt until its
    # SHA-256 changes. A repository that could not be fetched is tried again on every run.
    fetched = fetched or {}
    return (old is not None and old.get("files") == files and not fetched.get("error")
            and all(old.get(key) == fetched.get(key) for key in gradebook.FETCHED)
            and not str(old.get("error") or "").startswith(("grader error", NOT_FINISHED)))


def not_finished(student: Student, files: list[dict], maxima: dict[str, int]) -> dict:
    """The provisional record of a student not graded yet: what the gradebook says if the batch is
    stopped before it gets there."""
    return gradebook.student_record(student.name, files, [], maxima,
                                    f"{NOT_FINISHED}: the batch was stopped before this student was graded")


class Progress:
    """A progress bar (tqdm) on a terminal; one line per student elsewhere (CI logs)."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.bar = total, 0, None
        if sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="student", file=sys.stderr, dynamic_ncols=True)
            except ImportError:
                pass

    def update(self, record: dict) -> None:
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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m grader batch", description=__doc__.splitlines()[0].strip("`"))
    p.add_argument("submissions", metavar="SUBMISSIONS_DIR", help="one subfolder or file per student")
    p.add_argument("--csv", required=True, metavar="GRADEBOOK", help="write the gradebook (CSV) here")
    p.add_argument("--json", metavar="REPORT",
                   help="write the full report here; a re-run with it grades only the students whose files changed")
    p.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count() or 1, metavar="N", help="students graded at once (default: the number of CPUs)")
    p.add_argument("--force", action="store_true", help="regrade every student, even unchanged ones")
    p.add_argument("--strip-prefix", default="", metavar="PREFIX",
                   help="remove PREFIX from folder names, e.g. 'CLASSROOM-ASSIGNMENT-' of Classroom 50's 'CLASSROOM-ASSIGNMENT-user'")
    p.add_argument("--shard", metavar="K/N",
                   help="grade only the K-th of N disjoint slices of the students (by the SHA-256 of their name), "
                        "one per machine; `python -m grader merge` joins the N JSON reports into one gradebook")
    p.add_argument("--fetched", type=Path, metavar="RECORD",
                   help="the record of `grading-workflow --fetch`: each folder's repository and commit go into the "
                        "gradebook, and a repository that could not be fetched is its student's error")
    grading_options.add(p)
    grading_options.add_lms(p)
    return p


def _wrong_arguments(args: argparse.Namespace, root: Path) -> str | None:
    """What is wrong with the command line, as one line, or None."""
    if not root.is_dir():
        return f"{root}: not a folder of submissions"
    if args.jobs < 1:
        return "--jobs must be at least 1"
    if args.shard is not None and parse_shard(args.shard) is None:
        return f"--shard {args.shard}: expected K/N, the K-th of N slices (1 <= K <= N), e.g. 2/4"
    if args.shard is not None and (args.canvas or args.moodle):
        return "--canvas and --moodle need the whole class: give them to `python -m grader merge` of the shards"
    if args.fetched is not None:
        try:
            args.fetched_record = fetching.read_record(args.fetched)
        except ValueError as exc:
            return f"--fetched {exc}"
    return grading_options.problem(args) or grading_options.lms_problem(args)


def _plan(students: list[Student], root: Path, previous: dict[str, dict],
          fetched: dict[str, dict] | None = None) -> tuple[dict[str, dict], list]:
    """The records that can be kept from the last report (same files, same grader, same commit) and
    the students left to grade, each with its files' paths and hashes and where they were fetched
    from (``fetched``: a folder's record, :func:`grader.grading.fetch.read_record`)."""
    records: dict[str, dict] = {}
    todo: list[tuple[Student, list[dict], dict | None]] = []
    for s in students:
        files = [{"path": _relative(p, root), "sha256": sha256(p)} for p in s.files]
        source = (fetched or {}).get(s.folder) if s.folder else None
        if reusable(previous.get(s.name), files, source):
            records[s.name] = previous[s.name]
        else:
            todo.append((s, files, source))
    return records, todo


def _grade_all(todo: list, root: Path, grading: Options, maxima: dict[str, int], jobs: int,
               records: dict[str, dict], progress: "Progress", save: Callable[[], None],
               read_only: tuple[Path, ...] = ()) -> bool:
    """Grade every student of ``todo``, ``jobs`` at a time, into ``records``, saving both reports
    every :data:`CHECKPOINT_SECONDS`; False when interrupted (every worker is then stopped and what
    was graded is saved)."""
    last_save = time.monotonic()
    graded = Graded()
    clock = _Clock()
    # each thread waits on its student's worker and judges its results here, with torch's references
    # computed once for the whole class (grader/checks/harness.py)
    pool = ThreadPoolExecutor(max_workers=jobs)
    futures: set[Future] = {pool.submit(grade_student, s, root, files, grading, maxima, graded, read_only or (root,),
                                        source) for s, files, source in todo}
    try:
        while futures:
            done, futures = wait(futures, return_when=FIRST_COMPLETED)
            for f in done:
                record = f.result()
                records[record["student"]] = record
                progress.update(record)
            if time.monotonic() - last_save > CHECKPOINT_SECONDS:
                save()
                last_save = time.monotonic()
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        worker_process.stop_all()
        pool.shutdown(wait=True)
        progress.close()
        save()
        return False
    pool.shutdown()
    progress.close()
    print(clock.summary(graded), file=sys.stderr)
    return True


class _Clock:
    """Where a batch's time went: CPU seconds of the workers (every process below this one), of
    this process (judging, and the rest), and wall time."""

    def __init__(self) -> None:
        self.wall = time.monotonic()
        self.children = self._cpu(resource.RUSAGE_CHILDREN)
        self.own = self._cpu(resource.RUSAGE_SELF)
        self.judging = sandbox.JUDGING.seconds

    @staticmethod
    def _cpu(who: int) -> float:
        usage = resource.getrusage(who)
        return usage.ru_utime + usage.ru_stime

    def summary(self, graded: Graded) -> str:
        return (f"files: {graded.graded} graded, {graded.reused} the same as one graded before (not graded again); "
                f"CPU: workers {self._cpu(resource.RUSAGE_CHILDREN) - self.children:.1f} s, this process "
                f"{self._cpu(resource.RUSAGE_SELF) - self.own:.1f} s (judging "
                f"{sandbox.JUDGING.seconds - self.judging:.1f} s); wall {time.monotonic() - self.wall:.1f} s")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    root = Path(args.submissions)
    wrong = _wrong_arguments(args, root)
    if wrong:
        print(f"error: {wrong}", file=sys.stderr)
        return 2
    root = root.resolve()
    students = discover(root, args.strip_prefix)
    if not students:
        print(f"error: {root}: no student (no subfolder, no .ipynb or .py file)", file=sys.stderr)
        return 2
    assignment = grading_options.chosen(args)
    shard = parse_shard(args.shard) if args.shard else None
    if shard:
        everyone = len(students)
        students = [s for s in students if shard_of(s.name, shard[1]) == shard[0]]
        print(f"shard {shard[0]}/{shard[1]}: {len(students)} of the {everyone} students", file=sys.stderr)
    grading = Options(args.device, args.check_timeout, grading_options.memory_bytes(args),
                      tuple(str(Path(h).resolve()) for h in args.hide), assignment)
    maxima = gradebook.max_scores(args.device, assignment)
    previous = {} if args.force or not args.json else previous_records(Path(args.json), args.device, maxima,
                                                                        assignment)
    records, todo = _plan(students, root, previous, getattr(args, "fetched_record", None))
    print(f"{len(students)} student{'' if len(students) == 1 else 's'}: {len(todo)} to grade, {len(records)} "
          f"unchanged since the last report ({assignment.describe()}; jobs: {args.jobs})", file=sys.stderr, flush=True)

    pending = {s.name: not_finished(s, files, maxima) for s, files, _ in todo}

    def save() -> None:
        """Both reports, atomically: the students graded so far, the others provisional."""
        everyone = list({**pending, **records}.values())
        gradebook.write_csv(everyone, maxima, args.csv)
        if args.json and shard:  # the same report, saying which slice of the class it holds
            write_json({**gradebook.batch_json(everyone, args.device, maxima, assignment),
                        "shard": f"{shard[0]}/{shard[1]}"}, args.json)
        elif args.json:
            gradebook.write_batch_json(everyone, args.device, maxima, args.json, assignment)

    try:
        save()  # before any student code runs: what stands if the batch is killed
    except OSError as exc:
        print(f"error: cannot write the gradebook: {exc}", file=sys.stderr)
        return 2
    progress = Progress(len(todo))
    if not _grade_all(todo, root, grading, maxima, args.jobs, records, progress, save):
        print(f"interrupted: {len(records)} of {len(students)} students graded, saved in {args.csv}"
              + (f" and {args.json} (run again to go on)" if args.json else ""), file=sys.stderr)
        return 130
    save()
    errors = sum(1 for r in records.values() if r["error"])
    print(f"wrote {args.csv}" + (f" and {args.json}" if args.json else "")
          + f": {len(records)} students, {errors} with an error", file=sys.stderr)
    try:
        for line in grading_options.write_lms(args, list(records.values()), sum(maxima.values()), assignment):
            print(line, file=sys.stderr)
    except OSError as exc:
        print(f"error: cannot write the LMS import: {exc}", file=sys.stderr)
        return 2
    if records and errors == len(records):  # a shard may hold no student
        return 2
    return 1 if errors else 0
