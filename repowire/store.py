"""The only module that reads and writes job records: paths, locks, transitions, listing."""

from __future__ import annotations

import contextlib
import copy
import os
import secrets
import shutil
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import clock
from .errors import JobNotFound, LockTimeout, RepowireError, ValidationError, problems_of
from .files import (
    MAX_FILE_BYTES,
    atomic_write,
    create_exclusive,
    dump_yaml,
    load_yaml,
    read_text,
)
from .handles import RootRef
from .index_file import read_index, write_index
from .model import TERMINAL, Invalid, Job, job_from_record, job_to_dict
from .schema import parse_job
from .values import new_job_id, validate_id

__all__ = ["Store", "PEOPLE_LIMIT"]

LOCK_TIMEOUT = 10.0
PEOPLE_LIMIT = 512 * 1024  # a record people (CLI, MCP, dashboard) may grow it to
WRITTEN_KEPT = 512  # records whose last write by this process is kept, to skip parsing them
RACY_NS = 50_000_000  # wider than the file system's timestamp tick (a jiffy, 1 to 10 ms)
SIBLING_SUFFIXES = (".yaml", ".log", ".result.md", ".exit")


class Store:
    """The .repowire/ folder of one root, and every read and write of its job records."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.base = self.root / ".repowire"
        self.jobs_dir = self.base / "jobs"
        self.agents_dir = self.base / "agents"
        self.locks_dir = self.base / "locks"
        self._index: dict[str, tuple[tuple[int, ...], dict[str, Any]]] | None = None
        self._index_dirty = False
        self._objects: dict[str, tuple[tuple[int, ...], Job | Invalid]] = {}
        self._locks_ready = False
        self._root_ref: RootRef | None = None
        self.lock_timeout = LOCK_TIMEOUT  # how long a writer waits for a job's lock
        self._file_times: dict[str, float] = {}  # each record's mtime at the last scan
        self._written: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()

    # paths -------------------------------------------------------------------------------
    def job_file(self, job_id: str) -> Path:
        return self.jobs_dir / f"{validate_id(job_id)}.yaml"

    def sibling(self, job_id: str, suffix: str) -> Path:
        """<id>.log, <id>.result.md, <id>.exit and the like, beside the record."""
        return self.jobs_dir / f"{validate_id(job_id)}{suffix}"

    def ensure_layout(self) -> None:
        """Create the folders on first write."""
        if self.base.exists() and not self.base.is_dir():
            raise RepowireError(f"{self.base} exists but is not a folder")
        for folder in (self.jobs_dir, self.agents_dir, self.locks_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def root_ref(self) -> RootRef:
        """This root's identity: its resolved path and its token (locks/root.token, made once).

        The token lives among the runtime files that git ignores, so a clone makes its own; a
        `cp -R` copies it, but then the path differs."""
        if self._root_ref is None:
            path = self.locks_dir / "root.token"
            self.locks_dir.mkdir(parents=True, exist_ok=True)
            create_exclusive(path, secrets.token_hex(16) + "\n")
            token = read_text(path).strip()
            if not token:
                raise RepowireError(f"{path} is empty; delete it and start the runner again")
            self._root_ref = RootRef(str(self.root.resolve()), token)
        return self._root_ref

    # locks -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, name: str, timeout: float | None = None) -> Iterator[None]:
        """Hold locks/<name>.lock; lock files stay, since deleting one breaks exclusion."""
        import filelock  # imported here: read-only commands never lock, and start faster

        path = self.locks_dir / f"{validate_id(name)}.lock"
        if not self._locks_ready:
            self.locks_dir.mkdir(parents=True, exist_ok=True)
            self._locks_ready = True
        lock = filelock.FileLock(
            str(path), timeout=self.lock_timeout if timeout is None else timeout
        )
        try:
            lock.acquire()
        except filelock.Timeout:
            raise LockTimeout(f"{name} is locked by another writer; try again") from None
        except OSError as exc:  # e.g. a symbolic link planted at the lock's name
            raise RepowireError(f"cannot lock {path}: {exc.strerror}; remove it") from None
        try:
            yield
        finally:
            lock.release()

    # records -----------------------------------------------------------------------------
    def read_job(self, job_id: str) -> Job:
        """The record of job_id; JobNotFound or ValidationError otherwise. A file whose bytes
        are what this process last wrote there is not parsed again (an edit by anyone else
        changes its bytes, and is parsed)."""
        path = self.job_file(job_id)
        try:
            text = read_text(path)
        except FileNotFoundError:
            raise JobNotFound(f"no job {job_id} in {self.jobs_dir}") from None
        known = self._written.get(job_id)
        if known is not None and known[0] == text:
            return job_from_record(copy.deepcopy(known[1]))
        return parse_job(job_id, load_yaml(path, text), where=str(path))

    def _remember(self, job: Job, text: str) -> None:
        """What this process wrote to a record: its text and data, for read_job."""
        self._written[job.id] = (text, job_to_dict(job, with_id=True))
        self._written.move_to_end(job.id)
        while len(self._written) > WRITTEN_KEPT:
            self._written.popitem(last=False)

    def _text_of(self, job: Job, limit: int) -> str:
        """The record's YAML, refused when it would grow past `limit` (so it stays readable)."""
        text = dump_yaml(job_to_dict(job, times_as_text=False))
        if len(text.encode("utf-8")) > limit:
            raise ValidationError(
                f"job {job.id}'s record would grow past {limit // 1024} KiB; nothing was written "
                "(put long text in its result file, $REPOWIRE_RESULT_FILE, instead)"
            )
        return text

    def write_job(self, job: Job, limit: int = MAX_FILE_BYTES) -> None:
        """Replace the record atomically; callers hold the job's lock."""
        path = self.job_file(job.id)
        text = self._text_of(job, limit)
        try:
            atomic_write(path, text)
        except OSError as exc:
            self._written.pop(job.id, None)
            raise RepowireError(
                f"could not write {path}: {exc.strerror or exc}; the record is unchanged"
            ) from None
        self._remember(job, text)

    def try_create(self, job: Job) -> bool:
        """Write a new record with an exclusive create; False if that id exists already."""
        self.ensure_layout()
        now = clock.now()
        job.created_at = job.created_at or now
        job.updated_at = job.updated_at or now
        text = self._text_of(job, PEOPLE_LIMIT)
        created = create_exclusive(self.job_file(job.id), text)
        if created:
            self._remember(job, text)
        return created

    def create_job(self, job: Job, generated_id: bool = False) -> Job:
        """Write a new record; a generated id is redrawn on collision, a chosen one refused."""
        now = clock.now()
        for _ in range(20):
            if self.try_create(job):
                return job
            if not generated_id:
                raise ValidationError(f"a job named {job.id} already exists")
            job.id = new_job_id(now)
        raise RepowireError("could not find a free job id; try again")

    def transition(
        self, job_id: str, change: Callable[[Job], bool | None], limit: int = MAX_FILE_BYTES
    ) -> Job:
        """Read, change and write one record under its lock; the only read-modify-write.

        A change that returns False changed nothing, and nothing is written. A record that
        would grow past `limit` is refused (people's writes pass PEOPLE_LIMIT, which leaves
        the runner room to record an outcome under the read limit)."""
        with self.lock(job_id):
            job = self.read_job(job_id)
            if change(job) is False:
                return job
            job.updated_at = clock.now()
            self.write_job(job, limit)
            return job

    def job_ids(self) -> list[str]:
        """Ids of every <id>.yaml in jobs/, sorted; dot-files and temp files skipped."""
        try:
            entries = list(os.scandir(self.jobs_dir))
        except FileNotFoundError:
            return []
        ids = []
        for entry in entries:
            name = entry.name
            if name.endswith(".yaml") and not name.startswith("."):
                ids.append(name[: -len(".yaml")])
        return sorted(ids)

    def label(self, job_id: str, suffix: str = ".yaml") -> str:
        """A record's name as people see it: relative to the root."""
        return f".repowire/jobs/{job_id}{suffix}"

    def _misnamed(self, name: str) -> Invalid | None:
        """A .yml file in jobs/: not a record, and listed so that nobody wonders why."""
        if not name.endswith(".yml"):
            return None
        stem = name[: -len(".yml")]
        return Invalid(
            name,
            f".repowire/jobs/{name}",
            f"records are named <id>.yaml, so this file is not read; rename it to {stem}.yaml",
        )

    def load(self, job_id: str) -> Job | Invalid:
        """A job, or an Invalid entry that says why it could not be read."""
        label = self.label(job_id)
        try:
            return self.read_job(job_id)
        except FileNotFoundError:
            return Invalid(job_id, label, "the file disappeared while it was read")
        except (ValidationError, JobNotFound) as exc:
            return Invalid(job_id, label, "; ".join(problems_of(exc, self.job_file(job_id))))

    def list_jobs(self, slim_terminal: bool = False) -> list[Job | Invalid]:
        """Every record in jobs/, broken ones included as Invalid, sorted by id.

        slim_terminal keeps only what a runner needs of finished jobs (state, template, slot,
        executor, times), so a long-lived runner holds little memory per record."""
        items = []
        objects: dict[str, tuple[tuple[int, ...], Job | Invalid]] = {}
        for job_id, key, record, settled in self._scan():
            known = self._objects.get(job_id)
            item = known[1] if known is not None and known[0] == key else None
            if item is None:
                item = _job_of(job_id, record, slim_terminal)
            if settled:
                objects[job_id] = (key, item)
            items.append(item)
        self._objects = objects
        return items

    def list_records(self) -> list[dict[str, Any]]:
        """Every record as the plain data `jobs list --json` prints (broken ones as invalid).

        Served from a derived index (.repowire/cache/index.json) for files whose identity is
        unchanged; the index is rewritten when anything was parsed again."""
        records = [record for _id, _key, record, _settled in self._scan()]
        if self._index_dirty:
            self._write_index()
        return records

    def _scan(self) -> list[tuple[str, tuple[int, ...], dict[str, Any], bool]]:
        """Each record file's id, identity and plain data, and whether it is settled.

        A file whose identity (inode, size, mtime, ctime) is unchanged since it was parsed is
        not parsed again. One that changed within a timestamp tick of being parsed is not
        settled: it is parsed again next time, since a second write in the same tick could
        leave the same identity (git's "racy" files)."""
        entries = self._record_entries()
        if self._index is None:
            self._index = read_index(self.base)
        settled_before = time.time_ns() - RACY_NS
        index: dict[str, tuple[tuple[int, ...], dict[str, Any]]] = {}
        out: list[tuple[str, tuple[int, ...], dict[str, Any], bool]] = []
        for entry in sorted(entries, key=lambda e: e.name):
            job_id = entry.name[: -len(".yaml")] if entry.name.endswith(".yaml") else entry.name
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            key = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
            self._file_times[job_id] = info.st_mtime
            hit = self._index.get(job_id)
            if hit is not None and hit[0] == key:
                record = hit[1]
            else:
                record = _record_of(self._misnamed(job_id) or self.load(job_id))
                self._index_dirty = True
            settled = info.st_ctime_ns < settled_before
            if settled:
                index[job_id] = (key, record)
            out.append((job_id, key, record, settled))
        if len(index) != len(self._index):
            self._index_dirty = True
        self._index = index
        return out

    def _record_entries(self) -> list[os.DirEntry[str]]:
        """The <id>.yaml entries of jobs/ (dot-files and temp files skipped)."""
        try:
            entries = os.scandir(self.jobs_dir)
        except FileNotFoundError:
            return []
        with entries:
            return [e for e in entries if e.name.endswith((".yaml", ".yml")) and e.name[0] != "."]

    def age_key(self, job_id: str, created_at: datetime | None) -> tuple[datetime, str]:
        """Oldest first: a record's creation time, else (a hand-written file has none) the
        time its file was last written, then the id."""
        if created_at is None:
            stamp = self._file_times.get(job_id, 0.0)
            created_at = datetime.fromtimestamp(stamp, timezone.utc)
        return (created_at, job_id)

    def _write_index(self) -> None:
        write_index(self.base, self._index or {})
        self._index_dirty = False

    def remove_stale_temp_files(self, older_than: float = 60.0) -> list[Path]:
        """Delete temp files a crashed writer left (never a live writer's: they are young)."""
        cutoff = time.time() - older_than
        folders = [self.jobs_dir, self.locks_dir, self.agents_dir, *self.agents_dir.glob("*/")]
        removed = []
        for folder in folders:
            for pattern in (".tmp-*", ".prompt-*", "*.exit.tmp.*"):
                for path in folder.glob(pattern):
                    with contextlib.suppress(FileNotFoundError):
                        if path.lstat().st_mtime < cutoff:
                            if path.is_dir() and not path.is_symlink():
                                shutil.rmtree(path)  # a worker folder staged by a crashed writer
                            else:
                                path.unlink()
                            removed.append(path)
        return removed

    def remove_job_files(self, job_id: str) -> None:
        """Delete a record and its sibling files (retention)."""
        for suffix in SIBLING_SUFFIXES:
            with contextlib.suppress(FileNotFoundError):
                self.sibling(job_id, suffix).unlink()


def _record_of(item: Job | Invalid) -> dict[str, Any]:
    return job_to_dict(item, with_id=True) if isinstance(item, Job) else item.to_dict()


_SLIM_KEYS = (
    "id",
    "state",
    "template",
    "scheduled_for",
    "executor",
    "created_at",
    "finished_at",
    "attempt",
    "continuity",
    "worktree",  # a worktree run's settling and tidying go on after it ends
    "keep_worktree",
    "usage",  # a template's budget adds up what its finished runs spent
    "notify",  # notifications are sent after a job ends
    "notified",
    "quiet",
    "updated_at",
    "session_id",  # a CLI that reports a session's running total is told the earlier runs'
)


def _job_of(job_id: str, record: dict[str, Any], slim_terminal: bool) -> Job | Invalid:
    """The Job (or Invalid) a plain record stands for."""
    if record.get("state") == "invalid":
        return Invalid(job_id, str(record.get("path", "")), str(record.get("error", "")))
    if slim_terminal and record.get("state") in {s.value for s in TERMINAL}:
        record = {k: record[k] for k in _SLIM_KEYS if k in record}
        record.setdefault("command", "")  # a finished job's definition is not needed here
    return job_from_record(record)
