"""A class fetched from its repositories: one folder per repository of a roster, holding that
repository's ``exercises/`` as it was at a deadline, and a record of what was fetched.

The roster is ``OWNER/NAME`` a line (``#`` comments and blank lines ignored), e.g. Classroom 50's
``<classroom>-<assignment>-<username>`` repositories of an organisation. Each is cloned with
``gh repo clone`` (GitHub's CLI, authenticated by ``GH_TOKEN``) into a folder named after the
repository, or ``OWNER--NAME`` when two owners have a repository of that name (``--`` cannot occur
in a GitHub login, so the two parts never run together). A repository that cannot be cloned, or
that has no commit before the deadline, is recorded with the reason: the student's row says it,
and every other student is graded.

The record (JSON) maps each folder to ``{"repository", "commit", "committed", "error"}``: ``batch
--fetched RECORD`` puts the commit in the gradebook and the reason in the error column.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from grader.core.files import write_atomic
from grader.grading.discovery import student_name
from grader.grading.sharding import shard_of

KEPT = "exercises"  # what of a repository is the student's work (a handed-out one also holds a grader)
CLONE_SECONDS = 300
_OWNER = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})"  # GitHub logins: letters, digits and single hyphens
_NAME = r"[A-Za-z0-9._-]{1,100}"
_LINE = re.compile(rf"^({_OWNER})/({_NAME})$")


class RosterError(ValueError):
    """A roster that cannot be read, in one line."""


@dataclass(frozen=True)
class Repository:
    owner: str
    name: str
    folder: str  # its folder in the submissions folder

    @property
    def slug(self) -> str:
        return f"{self.owner}/{self.name}"


def read_roster(path: Path) -> list[Repository]:
    """The roster's repositories, each with a folder no other has; :class:`RosterError` for a line
    that is not OWNER/NAME, a repository listed twice, or no repository at all."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError(f"{path}: cannot read it ({type(exc).__name__})") from None
    found: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m or m.group(2) in (".", ".."):
            raise RosterError(f"{path} line {number}: {line[:80]!r} is not OWNER/NAME")
        key = line.casefold()  # GitHub's names ignore case
        if key in seen:
            raise RosterError(f"{path} line {number}: {line} is listed on line {seen[key]} already")
        seen[key] = number
        found.append((m.group(1), m.group(2)))
    if not found:
        raise RosterError(f"{path} lists no repository (OWNER/NAME a line)")
    names: dict[str, int] = {}
    for _, name in found:
        names[name.casefold()] = names.get(name.casefold(), 0) + 1
    return [Repository(owner, name, name if names[name.casefold()] == 1 else f"{owner}--{name}")
            for owner, name in found]


def in_shard(repositories: list[Repository], shard: tuple[int, int] | None,
             strip_prefix: str = "") -> list[Repository]:
    """The repositories whose student ``batch --shard K/N`` grades: the same hash of the same name
    (the folder, less ``--strip-prefix``), so a shard clones only its own students."""
    if shard is None:
        return list(repositories)
    k, n = shard
    return [r for r in repositories if shard_of(student_name(r.folder, strip_prefix), n) == k]


def parse_deadline(text: str) -> dt.datetime:
    """``2026-12-20T23:59Z`` (or with seconds, or an offset such as ``+01:00``) as an aware time;
    ValueError for anything else, a time without its zone included (which zone would it be?)."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone: add Z (UTC) or an offset such as +01:00")
    return value


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess:
    # safe.directory: the clone may belong to another user than the one grading (a container)
    return subprocess.run(["git", "-c", "safe.directory=*", "-C", str(folder), *args], capture_output=True,
                          text=True, timeout=120)


def _reason(stderr: str) -> str:
    lines = [l.strip() for l in stderr.splitlines() if l.strip()]
    return (lines[-1] if lines else "no message")[:200]


def fetch_one(repository: Repository, into: Path, clones: Path, deadline: dt.datetime | None) -> dict:
    """Clone one repository and keep its work in ``into/<folder>``; returns its record. Never
    raises for the repository's sake: what went wrong is the record's ``error``."""
    record = {"repository": repository.slug, "commit": None, "committed": None, "error": None}
    clone = clones / repository.folder
    target = into / repository.folder
    target.mkdir(parents=True, exist_ok=True)  # the student is in the class whatever happens below
    # the whole history only when a deadline needs it: a commit before it may be far back
    depth = [] if deadline else ["--depth", "1"]
    try:
        r = subprocess.run(["gh", "repo", "clone", repository.slug, str(clone), "--", "--quiet", *depth],
                           capture_output=True, text=True, timeout=CLONE_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as exc:
        record["error"] = f"could not fetch {repository.slug}: {type(exc).__name__}"
        return record
    if r.returncode != 0 or not clone.is_dir():
        record["error"] = f"could not fetch {repository.slug}: {_reason(r.stderr or r.stdout)}"
        return record
    commit = _pick_commit(clone, deadline)
    if isinstance(commit, str) and commit.startswith("error: "):
        record["error"] = f"could not fetch {repository.slug}: {commit[len('error: '):]}"
        return record
    record["commit"], record["committed"] = commit
    if (clone / KEPT).is_dir() and not (clone / KEPT).is_symlink():
        shutil.move(str(clone / KEPT), str(target / KEPT))
    shutil.rmtree(clone, ignore_errors=True)
    return record


def _pick_commit(clone: Path, deadline: dt.datetime | None) -> tuple[str, str] | str:
    """The commit graded, checked out: the default branch's last commit (its committer date, as the
    student's git recorded it) at or before ``deadline``, else its tip; "error: ..." when there is none."""
    if deadline is not None:
        # first parent: the branch as it stood, not a commit merged into it after the deadline
        r = _git(clone, "rev-list", "-n", "1", "--first-parent", f"--before={deadline.isoformat()}", "HEAD")
        sha = r.stdout.strip()
        if r.returncode != 0:
            return f"error: git rev-list failed ({_reason(r.stderr)})"
        if not sha:
            return f"error: no commit before the deadline {deadline.isoformat()}"
        r = _git(clone, "-c", "advice.detachedHead=false", "checkout", "--quiet", sha)
        if r.returncode != 0:
            return f"error: cannot check out {sha[:12]} ({_reason(r.stderr)})"
    r = _git(clone, "log", "-1", "--format=%H %cI")
    if r.returncode != 0 or len(r.stdout.split()) != 2:
        return "error: the repository has no commit"
    sha, when = r.stdout.split()
    return sha, when


def fetch(repositories: list[Repository], into: Path, record_path: Path, deadline: dt.datetime | None = None,
          clones: Path | None = None, log=print) -> dict[str, dict]:
    """Fetch every repository (one after the other) into ``into`` and write the record; returns it."""
    into.mkdir(parents=True, exist_ok=True)
    clones = clones or into.parent / f".{into.name}-clones"
    clones.mkdir(parents=True, exist_ok=True)
    records: dict[str, dict] = {}
    for i, repository in enumerate(repositories, 1):
        record = fetch_one(repository, into, clones, deadline)
        records[repository.folder] = record
        log(f"[{i}/{len(repositories)}] {repository.slug}: "
            + (record["error"] or f"{record['commit'][:12]} of {record['committed']}"))
    shutil.rmtree(clones, ignore_errors=True)
    write_record(records, record_path, deadline)
    return records


def write_record(records: dict[str, dict], path: Path, deadline: dt.datetime | None = None) -> None:
    write_atomic(path, json.dumps({"deadline": deadline.isoformat() if deadline else None,
                                   "repositories": records}, indent=2) + "\n", shared=True)


def read_record(path: Path) -> dict[str, dict]:
    """folder -> ``{"repository", "commit", "committed", "error"}`` of a record :func:`fetch` wrote;
    ValueError (one line) for a file that is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read it ({type(exc).__name__})") from None
    repositories = data.get("repositories") if isinstance(data, dict) else None
    fields = ("repository", "commit", "committed", "error")
    if not isinstance(repositories, dict) or not all(
            isinstance(r, dict) and all(isinstance(r.get(f), (str, type(None))) for f in fields)
            for r in repositories.values()):
        raise ValueError(f"{path}: not a record of fetched repositories (grading-workflow --fetch)")
    return {folder: {f: r.get(f) for f in fields} for folder, r in repositories.items()}
