"""The only module that reads and writes job records: paths, locks, transitions, listing."""

from __future__ import annotations

import contextlib
import copy
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repowire import clock
from repowire.errors import InvalidId, JobNotFound, RepowireError, ValidationError, problems_of
from repowire.files import (
    MAX_FILE_BYTES,
    Identity,
    atomic_write,
    create_exclusive,
    dump_yaml,
    load_yaml,
    read_text,
)
from repowire.ids import new_job_id, validate_id
from repowire.record.handle import RootRef
from repowire.record.job import Invalid, Job, job_from_record, job_to_dict, with_text_times
from repowire.record.parsing import parse_job
from repowire.record.states import TERMINAL_NAMES
from repowire.store.locks import file_lock, hold

if TYPE_CHECKING:
    from filelock import BaseFileLock as FileLock

    from repowire.store.index import RecordIndex, Whole
    from repowire.store.listing_row import Row

__all__ = ["Store", "PEOPLE_LIMIT"]

LOCK_TIMEOUT = 10.0
PEOPLE_LIMIT = 512 * 1024  # a record people (CLI, MCP, dashboard) may grow it to
PATHS_KEPT = 4096  # record and sibling paths kept: a runner asks for each some 20 times a job
RACY_NS = 50_000_000  # wider than the file system's timestamp tick (a jiffy, 1 to 10 ms)
SIBLING_SUFFIXES = (".yaml", ".log", ".result.md", ".exit")
Entry = tuple[str, Identity, float, bool]  # a record file's id, identity, mtime, and settledness


class Store:
    """The .repowire/ folder of one root, and every read and write of its job records."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.base = self.root / ".repowire"
        self.jobs_dir = self.base / "jobs"
        self.agents_dir = self.base / "agents"
        self.locks_dir = self.base / "locks"
        self._index: RecordIndex | None = None
        self._locks_ready = False
        self._file_locks: dict[Path, FileLock] = {}
        self._root_ref: RootRef | None = None
        self.lock_timeout = LOCK_TIMEOUT  # how long a writer waits for a job's lock
        self._written = OwnWrites()  # what this process wrote last, not parsed again
        self._paths: dict[tuple[str, str], Path] = {}
        self._touched: set[str] = set()  # records this process wrote or removed (take_touched)
        self._touched_lock = threading.Lock()  # the runner's notifier writes from its threads

    @property
    def index(self) -> RecordIndex:
        """The derived listing index (index_db.py), opened when first needed."""
        if self._index is None:
            from repowire.store.index import (
                RecordIndex,  # imported here: reading one record needs none
            )

            self._index = RecordIndex(self.base)
        return self._index

    # paths -------------------------------------------------------------------------------
    def job_file(self, job_id: str) -> Path:
        return self.sibling(job_id, ".yaml")

    def sibling(self, job_id: str, suffix: str) -> Path:
        """<id>.log, <id>.result.md, <id>.exit and the like, beside the record (kept)."""
        path = self._paths.get((job_id, suffix))
        if path is None:
            if len(self._paths) >= PATHS_KEPT:
                self._paths.clear()
            path = self._paths[job_id, suffix] = self.jobs_dir / f"{validate_id(job_id)}{suffix}"
        return path

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
            import secrets  # imported here: commands that read only start faster

            create_exclusive(path, secrets.token_hex(16) + "\n")
            token = read_text(path).strip()
            if not token:
                raise RepowireError(f"{path} is empty; delete it and start the runner again")
            self._root_ref = RootRef(str(self.root.resolve()), token)
        return self._root_ref

    # locks -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, name: str, timeout: float | None = None) -> Iterator[None]:
        """Hold locks/<name>.lock with filelock (flock(2) on the file, never through a link
        planted at its name). Lock files stay, since deleting one breaks exclusion."""
        self._locks_folder()
        path = self.lock_file(name)
        wait = self.lock_timeout if timeout is None else timeout
        with hold(self._file_lock(path), wait, name, path):
            yield

    def _file_lock(self, path: Path) -> FileLock:
        """The one lock object of this path (a transition creates none once it exists)."""
        lock = self._file_locks.get(path)
        if lock is None:
            lock = self._file_locks.setdefault(path, file_lock(path))
        return lock

    def _temp_folder(self) -> Path:
        """Where a record's temp file is written: locks/, a folder of the same root that no
        watcher looks at, so a write raises one file event in jobs/ (its rename or link), not
        four (the temp file's create, close, and both halves of the move)."""
        return self._locks_folder()

    def _locks_folder(self) -> Path:
        """locks/, made on first use."""
        if not self._locks_ready:
            self.locks_dir.mkdir(parents=True, exist_ok=True)
            self._locks_ready = True
        return self.locks_dir

    def lock_file(self, name: str) -> Path:
        return self.locks_dir / f"{validate_id(name)}.lock"

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
        known = self._written.job(job_id, text)
        if known is not None:
            return known
        return parse_job(job_id, load_yaml(path, text), where=str(path))

    def _touch(self, job_id: str) -> None:
        with self._touched_lock:
            self._touched.add(job_id)

    def take_touched(self) -> set[str]:
        """The records this process wrote or removed since the last take (the runner's
        table learns of its own writes at once, not when their file events come)."""
        with self._touched_lock:
            touched, self._touched = self._touched, set()
        return touched

    def _remember(self, job: Job, written: tuple[str, dict[str, Any]]) -> None:
        """What this process wrote to a record: its text and data, for read_job."""
        self._touch(job.id)
        self._written.remember(job.id, *written)

    def write_job(self, job: Job, limit: int = MAX_FILE_BYTES) -> None:
        """Replace the record atomically; callers hold the job's lock."""
        path = self.job_file(job.id)
        written = record_text(job, limit)
        try:
            atomic_write(path, written[0], self._temp_folder())
        except OSError as exc:
            self._written.forget(job.id)
            raise RepowireError(
                f"could not write {path}: {exc.strerror or exc}; the record is unchanged"
            ) from None
        self._remember(job, written)

    def try_create(self, job: Job) -> bool:
        """Write a new record with an exclusive create; False if that id exists already."""
        self.ensure_layout()
        now = clock.now()
        job.created_at = job.created_at or now
        job.updated_at = job.updated_at or now
        written = record_text(job, PEOPLE_LIMIT)
        created = create_exclusive(self.job_file(job.id), written[0], self._temp_folder())
        if created:
            self._remember(job, written)
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
        names = [entry.name for entry in self.record_entries()]
        return sorted(name[: -len(".yaml")] for name in names if name.endswith(".yaml"))

    def _misnamed(self, name: str) -> Invalid | None:
        """A .yml file in jobs/: not a record, and listed so that nobody wonders why."""
        if not name.endswith(".yml"):
            return None
        stem = name[: -len(".yml")]
        why = f"records are named <id>.yaml, so this file is not read; rename it to {stem}.yaml"
        return Invalid(name, f".repowire/jobs/{name}", why)

    def load(self, job_id: str) -> Job | Invalid:
        """A job, or an Invalid entry that says why it could not be read."""
        label = f".repowire/jobs/{job_id}.yaml"  # as people see it: from the root
        try:
            validate_id(job_id)  # a file of jobs/ named by no valid id is listed, not read
        except InvalidId as exc:
            return Invalid(job_id, label, f"{exc}, so this file is not read; rename it")
        try:
            return self.read_job(job_id)
        except FileNotFoundError:
            return Invalid(job_id, label, "the file disappeared while it was read")
        except (ValidationError, JobNotFound) as exc:
            return Invalid(job_id, label, "; ".join(problems_of(exc, self.job_file(job_id))))

    def item(self, job_id: str) -> Job | Invalid:
        """What the listing shows for a file of jobs/: its job, or why it cannot be read."""
        return self._misnamed(job_id) or self.load(job_id)

    def list_rows(self, brief: bool = False, by_id: bool = True) -> list[Row]:
        """Every record as a row (broken ones as invalid; sorted by id if `by_id`): from the
        derived index (.repowire/cache/index.sqlite3) for files whose identity is unchanged.
        Brief rows of finished jobs hold only BRIEF_KEYS, which is all that is read of them."""
        from repowire.store.index import Whole

        whole = Whole(self.index, self.jobs_dir, RACY_NS)  # taken before the folder is read
        entries = self.entries(sort=by_id)
        rows = self.rows_for(entries, True, brief, whole)
        return [rows[e[0]] for e in entries if e[0] in rows] if by_id else list(rows.values())

    def rows_of(self, job_ids: list[str]) -> list[Row]:
        """The whole rows of these jobs (those whose record exists)."""
        entries = []
        for job_id in job_ids:
            try:
                entries.append(self.entry(job_id, self.job_file(job_id).lstat()))
            except (FileNotFoundError, InvalidId):  # gone, or a file no id names (not read)
                continue
        rows = self.rows_for(entries, False)
        return [rows[e[0]] for e in entries if e[0] in rows]

    def spend(self, since: str, by: str) -> tuple[list[tuple[str, Any]], list[Row]] | None:
        """What index.spend sums of the records unchanged since they were indexed, and the
        rows of the others (read now); None without a usable index."""
        entries = self.entries(sort=False)
        with self.index.session():
            found = self.index.spend({e[0]: e[1] for e in entries}, since, by)
            if found is None:
                return None
            sums, unknown = found
            rows = self._rows_in_session([e for e in entries if e[0] in unknown], False, False)
        return sums, list(rows.values())

    def resting(
        self, entries: list[Entry], may_rest: Callable[[str, int, float], bool]
    ) -> dict[str, str]:
        """The state of each of these records the index says may rest (RecordIndex.resting)."""
        with self.index.session():
            return self.index.resting({e[0]: e[1] for e in entries}, may_rest)

    def rows_for(
        self, entries: list[Entry], all_rows: bool, brief: bool = False, whole: Whole | None = None
    ) -> dict[str, Row]:
        """The rows of these entries: from the index where the file is unchanged, else parsed
        (and indexed once settled); with all_rows, records indexed with no file are dropped.
        With brief, finished jobs' rows may hold only their brief."""
        if not entries and not all_rows:
            return {}
        with self.index.session():
            return self._rows_in_session(entries, all_rows, brief, whole)

    def _rows_in_session(
        self, entries: list[Entry], all_rows: bool, brief: bool, whole: Whole | None = None
    ) -> dict[str, Row]:
        from repowire.store.listing_row import Row

        row_of = Row.of
        keys = {e[0]: e[1] for e in entries}
        rows, stale = self.index.rows(keys, None if all_rows else list(keys), brief)
        gone = stale if all_rows else []
        if brief:  # the others whole
            unfinished = [i for i, row in rows.items() if row.state not in TERMINAL_NAMES]
            for job_id in unfinished:
                del rows[job_id]
            rows.update(self.index.rows(keys, unfinished)[0])
        fresh, unsettled = [], False
        for job_id, key, mtime, settled in entries if len(rows) < len(entries) else ():  # misses
            if job_id not in rows:
                record = _record_of(self.item(job_id))
                rows[job_id] = row_of(record, mtime)
                fresh += [(rows[job_id], key)] if settled else []
                unsettled = unsettled or not settled
        if self.index.put(fresh, gone) and whole is not None and not unsettled:
            whole.done()
        return rows

    def entries(self, sort: bool = True) -> list[Entry]:
        """Each record file's id, identity, mtime, and whether it is settled; sorted by id.

        A file whose identity (inode, size, mtime, ctime) is unchanged since it was parsed is
        not parsed again. One that changed within a timestamp tick of being parsed is not
        settled: it is parsed again next time, since a second write in the same tick could
        leave the same identity (git's "racy" files)."""
        settled_before = time.time_ns() - RACY_NS
        out: list[Entry] = []
        add = out.append
        try:
            folder = os.scandir(self.jobs_dir)
        except FileNotFoundError:
            return out
        with folder:  # record_entries written out: this loop is every listing's floor
            for entry in folder:
                name = entry.name
                if name[0] == "." or not name.endswith((".yaml", ".yml")):
                    continue
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                key = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
                job_id = name[:-5] if name[-5:] == ".yaml" else name
                # the mtime as the index gives it back (st_mtime may differ in the last bit)
                add((job_id, key, info.st_mtime_ns / 1e9, info.st_ctime_ns < settled_before))
        if sort:
            out.sort()
        return out

    def entry(self, job_id: str, info: os.stat_result, now: int | None = None) -> Entry:
        """A record file's entry from its stat (settled: unchanged for RACY_NS before now)."""
        now = time.time_ns() if now is None else now
        key = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        return (job_id, key, info.st_mtime_ns / 1e9, info.st_ctime_ns < now - RACY_NS)

    def record_entries(self) -> Iterator[os.DirEntry[str]]:
        """The <id>.yaml entries of jobs/ (dot-files and temp files skipped), one at a time
        (a list of them all, each holding its stat, would cost a long history much memory)."""
        try:
            entries = os.scandir(self.jobs_dir)
        except FileNotFoundError:
            return
        with entries:
            for entry in entries:
                if entry.name.endswith((".yaml", ".yml")) and entry.name[0] != ".":
                    yield entry

    def remove_job_files(self, job_id: str) -> None:
        """Delete a record and its sibling files (retention)."""
        self._touch(job_id)
        for suffix in SIBLING_SUFFIXES:
            with contextlib.suppress(FileNotFoundError):
                self.sibling(job_id, suffix).unlink()


def _record_of(item: Job | Invalid) -> dict[str, Any]:
    return job_to_dict(item, with_id=True) if isinstance(item, Job) else item.to_dict()


def record_text(job: Job, limit: int) -> tuple[str, dict[str, Any]]:
    """The record's YAML, refused when it would grow past `limit` (so it stays readable), and
    the data dumped."""
    record = job_to_dict(job, times_as_text=False)
    text = dump_yaml(record)
    if len(text.encode("utf-8")) > limit:
        raise ValidationError(
            f"job {job.id}'s record would grow past {limit // 1024} KiB; nothing was written "
            "(put long text in its result file, $REPOWIRE_RESULT_FILE, instead)"
        )
    return text, record


class OwnWrites:
    """The text this process last wrote to each of the latest KEPT records, and its data: a
    record read back with exactly those bytes is made from the data, not parsed again."""

    KEPT = 512  # the runner's busiest records: each write moves one to the end

    def __init__(self) -> None:
        self._items: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()
        self._guard = threading.Lock()  # the runner's notifier writes from its threads

    def remember(self, job_id: str, text: str, dumped: dict[str, Any]) -> None:
        """`text` was written to the record, dumped from `dumped` (times as datetimes)."""
        with self._guard:
            self._items[job_id] = (text, with_text_times(dumped, job_id))
            self._items.move_to_end(job_id)
            while len(self._items) > self.KEPT:
                self._items.popitem(last=False)

    def forget(self, job_id: str) -> None:
        with self._guard:
            self._items.pop(job_id, None)

    def job(self, job_id: str, text: str) -> Job | None:
        """A new Job of the record, if `text` is what this process wrote there last."""
        known = self._items.get(job_id)
        if known is None or known[0] != text:
            return None
        return job_from_record(_unshared(known[1]))


_REBUILT = frozenset({"notes", "executor", "worktree"})  # job_from_record makes new objects


def _unshared(record: dict[str, Any]) -> dict[str, Any]:
    """A copy of a remembered record that job_from_record may hand to a caller who changes
    it: the lists and mappings it does not build anew are copied."""
    return {
        k: v if k in _REBUILT or not isinstance(v, (dict, list)) else copy.deepcopy(v)
        for k, v in record.items()
    }
