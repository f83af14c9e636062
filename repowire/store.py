"""The only module that reads and writes job files: paths, YAML, atomic writes, locks."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from . import clock
from .errors import JobNotFound, LockTimeout, RepowireError, ValidationError
from .model import TERMINAL, Invalid, Job, job_from_record, job_to_dict, parse_job
from .values import new_job_id, validate_id

__all__ = [
    "Store",
    "load_yaml",
    "dump_yaml",
    "atomic_write",
    "create_exclusive",
    "open_file",
    "read_tail",
    "read_text",
    "MAX_FILE_BYTES",
]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
MAX_FILE_BYTES = 1 << 20  # a job file larger than 1 MiB is refused before parsing
LOCK_TIMEOUT = 10.0
INDEX_VERSION = 1
RACY_NS = 50_000_000  # wider than the file system's timestamp tick (a jiffy, 1 to 10 ms)
SIBLING_SUFFIXES = (".yaml", ".log", ".result.md", ".exit")
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):
    """Block style, times as plain ISO-8601 Z timestamps, multi-line text as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True  # a person reads these files: no &anchors and *aliases


def _represent_time(dumper: Any, value: datetime) -> Any:
    text = value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return dumper.represent_scalar("tag:yaml.org,2002:timestamp", text)


def _represent_text(dumper: Any, value: str) -> Any:
    style = "|" if "\n" in value and not value.endswith((" ", "\t")) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(datetime, _represent_time)
_Dumper.add_representer(str, _represent_text)


def load_yaml(path: Path, text: str | None = None) -> Any:
    """Parse a YAML file with the safe loader; a ValidationError says what is wrong and where."""
    if text is None:
        text = read_text(path)
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader, C where available
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValidationError(f"{path}: not valid YAML{where}: {problem}") from None


def open_file(path: Path, flags: int = os.O_RDONLY) -> BinaryIO:
    """Open a regular file without following a symbolic link planted at its name."""
    try:
        fd = os.open(path, flags | _NOFOLLOW, 0o644)
    except FileNotFoundError:
        raise  # callers tell "no such job" from "cannot be read"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValidationError(f"{path}: is a symbolic link; refusing to follow it") from None
        raise ValidationError(f"{path}: cannot be opened ({exc.strerror})") from None
    handle = os.fdopen(fd, "rb" if flags == os.O_RDONLY else "ab")
    if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
        handle.close()
        raise ValidationError(f"{path}: is not a regular file")
    return handle


def read_tail(path: Path, limit: int) -> str:
    """The last `limit` bytes of a file as text ("" when there is none); links refused."""
    try:
        with open_file(path) as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - limit))
            return handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def read_text(path: Path) -> str:
    """A file's text, refusing files over MAX_FILE_BYTES and anything but regular files."""
    with open_file(path) as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ValidationError(f"{path}: is larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"{path}: is not UTF-8 text") from None


def dump_yaml(data: Any) -> str:
    """YAML text in block style, keys in the order given."""
    return str(yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename is still atomic
    finally:
        os.close(fd)


def _write_temp(folder: Path, data: bytes, mode: int) -> str:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            full_sync = getattr(fcntl, "F_FULLFSYNC", None)
            if full_sync is not None:  # macOS: plain fsync leaves data in the drive's cache
                fcntl.fcntl(handle.fileno(), full_sync)
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), mode)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(os.lstat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write(path: Path, text: str) -> None:
    """Replace path with text: temp file in the same folder, fsync, rename, fsync the folder."""
    tmp = _write_temp(path.parent, text.encode("utf-8"), _mode_for(path))
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def create_exclusive(path: Path, text: str) -> bool:
    """Create path with text, complete or not at all; False if it already exists."""
    tmp = _write_temp(path.parent, text.encode("utf-8"), _mode_for(path))
    try:
        os.link(tmp, path)  # fails if path exists: an exclusive create of a finished file
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    _fsync_dir(path.parent)
    return True


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

    # locks -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, name: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
        """Hold locks/<name>.lock; lock files stay, since deleting one breaks exclusion."""
        import filelock  # imported here: read-only commands never lock, and start faster

        path = self.locks_dir / f"{validate_id(name)}.lock"
        if not self._locks_ready:
            self.locks_dir.mkdir(parents=True, exist_ok=True)
            self._locks_ready = True
        lock = filelock.FileLock(str(path), timeout=timeout)
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
        """The record of job_id; JobNotFound or ValidationError otherwise."""
        path = self.job_file(job_id)
        try:
            data = load_yaml(path)
        except FileNotFoundError:
            raise JobNotFound(f"no job {job_id} in {self.jobs_dir}") from None
        return parse_job(job_id, data, where=str(path))

    def write_job(self, job: Job) -> None:
        """Replace the record atomically; callers hold the job's lock."""
        path = self.job_file(job.id)
        try:
            atomic_write(path, dump_yaml(job_to_dict(job, times_as_text=False)))
        except OSError as exc:
            raise RepowireError(
                f"could not write {path}: {exc.strerror or exc}; the record is unchanged"
            ) from None

    def try_create(self, job: Job) -> bool:
        """Write a new record with an exclusive create; False if that id exists already."""
        self.ensure_layout()
        now = clock.now()
        job.created_at = job.created_at or now
        job.updated_at = job.updated_at or now
        return create_exclusive(
            self.job_file(job.id), dump_yaml(job_to_dict(job, times_as_text=False))
        )

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

    def transition(self, job_id: str, change: Callable[[Job], bool | None]) -> Job:
        """Read, change and write one record under its lock; the only read-modify-write.

        A change that returns False changed nothing, and nothing is written."""
        with self.lock(job_id):
            job = self.read_job(job_id)
            if change(job) is False:
                return job
            job.updated_at = clock.now()
            self.write_job(job)
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

    def load(self, job_id: str) -> Job | Invalid:
        """A job, or an Invalid entry that says why it could not be read."""
        path = self.jobs_dir / f"{job_id}.yaml"
        try:
            return self.read_job(job_id)
        except FileNotFoundError:
            return Invalid(job_id, str(path), "the file disappeared while it was read")
        except (ValidationError, JobNotFound) as exc:
            return Invalid(job_id, str(path), str(exc))

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
        try:
            entries = [
                e
                for e in os.scandir(self.jobs_dir)
                if e.name.endswith(".yaml") and not e.name.startswith(".")
            ]
        except FileNotFoundError:
            return []
        if self._index is None:
            self._index = self._read_index()
        settled_before = time.time_ns() - RACY_NS
        index: dict[str, tuple[tuple[int, ...], dict[str, Any]]] = {}
        out: list[tuple[str, tuple[int, ...], dict[str, Any], bool]] = []
        for entry in sorted(entries, key=lambda e: e.name):
            job_id = entry.name[: -len(".yaml")]
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            key = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
            hit = self._index.get(job_id)
            if hit is not None and hit[0] == key:
                record = hit[1]
            else:
                record = _record_of(self.load(job_id))
                self._index_dirty = True
            settled = info.st_ctime_ns < settled_before
            if settled:
                index[job_id] = (key, record)
            out.append((job_id, key, record, settled))
        if len(index) != len(self._index):
            self._index_dirty = True
        self._index = index
        return out

    def _index_path(self) -> Path:
        return self.base / "cache" / "index.json"

    def _read_index(self) -> dict[str, tuple[tuple[int, ...], dict[str, Any]]]:
        try:
            data = json.loads(read_tail(self._index_path(), 1 << 40) or "{}")
        except (ValueError, RepowireError):
            return {}  # a damaged index is rebuilt from the files
        if not isinstance(data, dict) or data.get("version") != INDEX_VERSION:
            return {}
        entries = data.get("entries")
        if not isinstance(entries, dict):
            return {}
        return {
            k: (tuple(v[0]), v[1])
            for k, v in entries.items()
            if isinstance(v, list) and len(v) == 2 and isinstance(v[1], dict)
        }

    def _write_index(self) -> None:
        data = {
            "version": INDEX_VERSION,
            "entries": {k: [list(key), rec] for k, (key, rec) in (self._index or {}).items()},
        }
        with contextlib.suppress(OSError):
            (self.base / "cache").mkdir(exist_ok=True)
            atomic_write(self._index_path(), json.dumps(data, separators=(",", ":")))
        self._index_dirty = False

    def remove_stale_temp_files(self, older_than: float = 60.0) -> list[Path]:
        """Delete temp files a crashed writer left (never a live writer's: they are young)."""
        cutoff = time.time() - older_than
        folders = [self.jobs_dir, self.locks_dir, *self.agents_dir.glob("*/")]
        removed = []
        for folder in folders:
            for pattern in (".tmp-*", ".prompt-*", "*.exit.tmp.*"):
                for path in folder.glob(pattern):
                    with contextlib.suppress(FileNotFoundError):
                        if path.lstat().st_mtime < cutoff:
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


_SLIM_KEYS = ("id", "state", "template", "scheduled_for", "executor", "created_at", "attempt")


def _job_of(job_id: str, record: dict[str, Any], slim_terminal: bool) -> Job | Invalid:
    """The Job (or Invalid) a plain record stands for."""
    if record.get("state") == "invalid":
        return Invalid(job_id, str(record.get("path", "")), str(record.get("error", "")))
    if slim_terminal and record.get("state") in {s.value for s in TERMINAL}:
        record = {k: record[k] for k in _SLIM_KEYS if k in record}
        record.setdefault("command", "")  # a finished job's definition is not needed here
    return job_from_record(record)
