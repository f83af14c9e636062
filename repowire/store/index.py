"""The listing's derived index, .repowire/cache/index.sqlite3: per record its file identity, the
columns listings sort and filter by, a brief, and the record as JSON. A cache: rebuilt when
damaged, never trusted for a changed file, never needed (without it every record is parsed)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repowire.files import Identity
from repowire.store.listing_row import USAGE_NUMBERS, Row

if TYPE_CHECKING:
    import sqlite3

__all__ = ["RecordIndex", "INDEX_VERSION", "Whole", "folder_mark"]

INDEX_VERSION = 5
COARSE_TICK_NS = 2_000_000_000  # a file system that keeps whole seconds may keep two (FAT)
CHUNK = 500  # ids a query names at once (SQLite allows 999 parameters on old builds)
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY, ino INTEGER, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER,
    state TEXT, template TEXT, created REAL, changed REAL, rest INTEGER, brief TEXT, data TEXT,
    age REAL, ended TEXT, backend TEXT, input INTEGER, cached INTEGER, output INTEGER,
    cost REAL, estimated INTEGER
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS records_age ON records (age)",  # the newest, for `--limit`
    "CREATE INDEX IF NOT EXISTS records_ino ON records (ino)",  # inodes without the data
    "CREATE INDEX IF NOT EXISTS records_template ON records (template) WHERE template IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS records_unstamped ON records (id) WHERE created IS NULL",
    # the jobs/ folder's inode and mtime when the index last held every file there
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID",
)
_COLUMNS = "id, ino, size, mtime_ns, ctime_ns, state, template, created, changed, rest, brief, data"
_SPEND = "ended, backend, input, cached, output, cost, estimated"  # of runs with usage only
_INSERT = f"INSERT OR REPLACE INTO records ({_COLUMNS}, age, {_SPEND}) VALUES ({'?,' * 19}?)"
_RESTING = (
    "SELECT id, ino, size, mtime_ns, ctime_ns, state, changed, rest FROM records "
    "WHERE rest IS NOT NULL"
)
QUERIES = {  # what `fetch` asks, by name
    "mark": "SELECT value FROM meta WHERE key = 'folder'",
    "newest": "SELECT id, age FROM records ORDER BY age DESC, id DESC LIMIT ?",
    "unstamped": "SELECT id FROM records WHERE created IS NULL",
    "runs": "SELECT id FROM records WHERE template = ?",
    "inodes": "SELECT id, ino FROM records",
    "keys": "SELECT id, ino, size, mtime_ns, ctime_ns FROM records",
    "key": "SELECT id, ino, size, mtime_ns, ctime_ns FROM records WHERE id = ?",
    "texts": "SELECT id, ino, size, mtime_ns, ctime_ns, state, data FROM records ORDER BY age, id",
}
_GROUPS = {
    "template": "coalesce(nullif(r.template, ''), '(one-off jobs)')",
    "backend": "r.backend",
    # 15-minute buckets in UTC: every time zone's offset is a whole number of them
    "day": "substr(r.ended, 1, 14) "
    "|| printf('%02d', cast(substr(r.ended, 15, 2) AS INTEGER) / 15 * 15)",
}
_KEYS = QUERIES["keys"]
_SUMS = (
    "SELECT {group}, count(*), sum(r.input), sum(r.cached), sum(r.output), sum(r.cost), "
    "max(r.estimated) FROM records r WHERE r.ended >= ? AND r.id NOT IN (SELECT id FROM skip) "
    "GROUP BY 1"
)


def _usage_of(numbers: list[Any]) -> dict[str, Any]:
    """A group's sums as a usage with `runs` (keys whose runs all lacked them left out)."""
    runs, *values, estimated = numbers
    out: dict[str, Any] = {"runs": runs}
    out.update((k, v) for k, v in zip(USAGE_NUMBERS, values, strict=True) if v is not None)
    if estimated:
        out["cost_estimated"] = True
    return out


class RecordIndex:
    """The index file of one .repowire/ folder; every failure leaves the caller without it."""

    def __init__(self, base: Path) -> None:
        self.folder = base / "cache"
        self.path = self.folder / "index.sqlite3"
        self._db: sqlite3.Connection | None = None
        self._broken = False
        self._guard = threading.RLock()  # one connection, used by any of the process's threads
        self._users = 0  # sessions open: the connection is closed when the last one ends

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Keep one connection for the calls made inside (closed at the end, so no file stays
        open between a process's listings)."""
        with self._guard:
            self._users += 1
        try:
            yield
        finally:
            with self._guard:
                self._users -= 1
                self._idle()

    def _idle(self) -> None:
        if self._users == 0 and self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None

    def rows(
        self, keys: dict[str, Identity], ids: Iterable[str] | None = None, brief: bool = False
    ) -> tuple[dict[str, Row], list[str]]:
        """The indexed rows whose file identity is still `keys[id]` (all of them, or `ids`),
        and the ids indexed that `keys` does not hold (gone, when keys are the whole folder);
        brief rows hold only the brief, not the whole record."""
        what = _COLUMNS.replace("brief, data", "brief" if brief else "data")
        with self._guard:
            db = self._open()
            if db is None:
                return {}, []
            found: dict[str, Row] = {}
            stale: list[str] = []
            try:
                if ids is None:
                    rows = db.execute(f"SELECT {what} FROM records")
                    self._collect(rows, keys, found, stale, brief)
                else:
                    wanted = list(ids)
                    for at in range(0, len(wanted), CHUNK):
                        part = wanted[at : at + CHUNK]
                        marks = ",".join("?" * len(part))
                        query = f"SELECT {what} FROM records WHERE id IN ({marks})"
                        self._collect(db.execute(query, part), keys, found, stale, brief)
            except Exception as exc:  # noqa: BLE001 - a damaged cache is rebuilt
                self._failed(exc)
                return {}, []
            finally:
                self._idle()
            return found, stale

    def resting(
        self, keys: dict[str, Identity], may_rest: Callable[[str, int, float], bool]
    ) -> dict[str, str]:
        """The state of each indexed record whose file is still `keys[id]` and that may rest
        (see rows.rest_of; `may_rest` is asked with its id, rest and the time it last changed):
        a runner keeps no more of it, so its data is not even read."""
        found: dict[str, str] = {}
        with self._guard:
            db = self._open()
            if db is None:
                return found
            try:
                for job_id, ino, size, mtime_ns, ctime_ns, state, changed, rest in db.execute(
                    _RESTING
                ):
                    if keys.get(job_id) == (ino, size, mtime_ns, ctime_ns) and may_rest(
                        job_id, rest, mtime_ns / 1e9 if changed is None else changed
                    ):
                        found[job_id] = state
            except Exception as exc:  # noqa: BLE001 - a damaged cache is rebuilt
                self._failed(exc)
                return {}
            finally:
                self._idle()
        return found

    def spend(
        self, keys: dict[str, Identity], since: str, by: str
    ) -> tuple[list[tuple[str, dict[str, Any]]], set[str]] | None:
        """Runs, tokens and cost of the indexed runs whose file is unchanged and that ended
        at `since` or later, summed per group of `by` (day: per 15 minutes of UTC); and the
        ids of the files the index does not hold as they are. None without an index."""
        with self._guard:
            db = self._open()
            if db is None:
                return None
            try:
                skip, held = [], set()
                for job_id, ino, size, mtime_ns, ctime_ns in db.execute(_KEYS):
                    if keys.get(job_id) == (ino, size, mtime_ns, ctime_ns):
                        held.add(job_id)
                    else:
                        skip.append((job_id,))  # changed or gone: not summed from the index
                db.execute("CREATE TEMP TABLE IF NOT EXISTS skip (id TEXT PRIMARY KEY)")
                db.execute("DELETE FROM skip")
                db.executemany("INSERT INTO skip VALUES (?)", skip)
                sums = db.execute(_SUMS.format(group=_GROUPS[by]), (since,)).fetchall()
                unknown = set(keys).difference(held)
            except Exception as exc:  # noqa: BLE001 - a damaged cache is rebuilt
                self._failed(exc)
                return None
            finally:
                self._idle()
        return [(str(group), _usage_of(numbers)) for group, *numbers in sums], unknown

    @staticmethod
    def _collect(
        cursor: Any, keys: dict[str, Identity], found: dict[str, Row], stale: list[str], brief: bool
    ) -> None:
        new = Row.__new__
        for (
            job_id,
            ino,
            size,
            mtime_ns,
            ctime_ns,
            state,
            template,
            created,
            changed,
            rest,
            text,
        ) in cursor:
            key = keys.get(job_id)
            if key is None:
                stale.append(job_id)
            elif key == (ino, size, mtime_ns, ctime_ns) and text and isinstance(text, str):
                row = new(Row)  # the fields set here, at the cost of one call per row
                row.id, row.state, row.template, row._r = job_id, state, template, None
                row.created, row.changed, row.mtime = created, changed, mtime_ns / 1e9
                row.rest = rest
                row.text, row._brief = ("", text) if brief else (text, "")
                found[job_id] = row

    def put(self, rows: list[tuple[Row, Identity]], gone: Iterable[str] = ()) -> bool:
        """Record rows parsed now and forget records that are gone; skipped while another
        process writes the index (it is a cache). Whether the index holds them now."""
        gone = list(gone)
        if not rows and not gone:
            return True
        values = [
            (r.id, *key, r.state, r.template, r.created, r.changed, r.rest, r.brief_text())
            + (r.text, r.age[0], *r.spend)
            for r, key in rows
        ]
        with self._guard:
            db = self._open(create=True)
            if db is None:
                return False
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.executemany(_INSERT, values)
                    db.executemany("DELETE FROM records WHERE id = ?", [(g,) for g in gone])
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except Exception as exc:  # noqa: BLE001 - busy: another writer; damaged: rebuilt
                self._failed(exc)
                return False
            finally:
                self._idle()
        return True

    def fetch(self, query: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]] | None:
        """The rows of one query (QUERIES names them), or None without a usable index."""
        with self._guard:
            db = self._open()
            if db is None:
                return None
            try:
                return db.execute(QUERIES[query], tuple(params)).fetchall()
            except Exception as exc:  # noqa: BLE001 - a damaged cache is rebuilt
                self._failed(exc)
                return None
            finally:
                self._idle()

    def mark(self) -> str | None:
        """The jobs/ folder's mark (its inode and mtime) when the index last held every file
        in it as it was; None if unknown."""
        found = self.fetch("mark")
        return str(found[0][0]) if found else None

    def set_mark(self, mark: str) -> None:
        with self._guard:
            db = self._open()
            if db is None:
                return
            try:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('folder', ?)", (mark,))
            except Exception as exc:  # noqa: BLE001 - busy: another writer; damaged: rebuilt
                self._failed(exc)
            finally:
                self._idle()

    def _failed(self, exc: Exception) -> None:
        """Another process holds the index: go without it this time; anything else: the
        index is damaged, and deleted."""
        if "locked" in str(exc) or "busy" in str(exc):
            return
        self._discard()

    def _open(self, create: bool = False) -> sqlite3.Connection | None:
        if self._db is not None or self._broken:
            return self._db
        if not create and not self.path.exists():
            return None
        try:
            self._db = self._connect(create)
        except ImportError:  # a Python built without sqlite3: every record is parsed
            self._broken = True
        except Exception as exc:  # noqa: BLE001 - unreadable, read-only or damaged: without
            self._failed(exc)
        return self._db

    def _connect(self, create: bool) -> sqlite3.Connection:
        import sqlite3

        if create:
            self.folder.mkdir(exist_ok=True)
        if self.folder.is_symlink() or self.path.is_symlink():
            raise OSError("the cache is a symbolic link")  # never written through a link
        db = sqlite3.connect(
            str(self.path), timeout=0.5, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute("PRAGMA synchronous = OFF")  # a cache: the files are the truth
            if db.execute("PRAGMA user_version").fetchone()[0] != INDEX_VERSION:
                db.execute("DROP TABLE IF EXISTS records")
                db.execute("DROP TABLE IF EXISTS meta")
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {INDEX_VERSION}")
            db.execute("PRAGMA journal_mode = WAL")  # readers go on while one process writes
        except Exception:
            db.close()
            raise
        return db

    def _discard(self) -> None:
        """Drop a damaged index: deleted, so the next process builds it again."""
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
        self._db = None
        if self.folder.is_symlink():
            return
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(OSError):
                Path(f"{self.path}{suffix}").unlink()


def folder_mark(folder: Path) -> str | None:
    """A folder's inode and mtime: equal marks mean the same names and inodes in it (given
    the mtime was taken a timestamp tick after its last change; see Whole)."""
    try:
        info = os.stat(folder)
    except FileNotFoundError:
        return None
    return f"{info.st_ino}:{info.st_mtime_ns}"


class Whole:
    """A full listing of jobs/ that, done without a change to the folder while it read, leaves
    its mark in the index: the index then held every file there as it was (newest.py)."""

    def __init__(self, index: RecordIndex, folder: Path, tick_ns: int) -> None:
        self.index, self.folder, self.mark = index, folder, folder_mark(folder)
        self.before = time.time_ns() - tick_ns  # the folder's mtime must be older (see done)

    def done(self) -> None:
        """Call once every file listed is in the index (none unsettled, the writes made)."""
        mark = self.mark
        if mark is None or folder_mark(self.folder) != mark:
            return
        mtime = int(mark.split(":")[1])
        if mtime % 1_000_000_000 == 0:  # whole seconds (HFS+, FAT, some network shares):
            mtime += COARSE_TICK_NS  # a change within its second would leave the same mtime
        if mtime < self.before:  # else a change in the same timestamp tick
            self.index.set_mark(mark)  # would leave the folder's mtime as it is
