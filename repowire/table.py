"""The runner's listing of the records, kept between its steps: after a first look at every
file, a step looks again only at the files that file events named since the last step, and
at those that changed too recently for their identity to be trusted."""

from __future__ import annotations

import os
from collections.abc import Iterable

from .index_db import BRIEF_KEYS, Key, Row
from .model import TERMINAL, Invalid, Job, job_from_record, job_to_dict
from .store import Entry, Store

__all__ = ["JobTable"]

_TERMINAL = frozenset(s.value for s in TERMINAL)
FEW = 64  # changed records a step reads itself; more are read through the listing index
CHUNK = 2000  # records read through the index at once


class JobTable:
    """Each record file's entry and object, in id order."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.objects: dict[str, tuple[Key, Job | Invalid]] = {}
        self.listed: set[str] | None = None  # the files' ids; None until the first full look
        self.unsettled: set[str] = set()  # looked at again whatever events say
        self.resort = True  # an id came or went: the view is put in order again
        self.view: dict[str, Job | Invalid] = {}  # the objects in id order, as jobs() gives
        # What a runner's step goes through instead of every record: the jobs that are queued,
        # running or have a worktree to settle; the broken files; and the ids whose object
        # changed since take_fresh (None: a full look, so every id counts as changed).
        self.live: set[str] = set()
        self.broken: set[str] = set()
        self._fresh: set[str] | None = None

    def jobs(
        self, slim_terminal: bool = False, changed: Iterable[str] | None = None
    ) -> dict[str, Job | Invalid]:
        """Every record by id, broken ones as Invalid. Objects of files unchanged since the
        last call are kept; the others come from the index, or are parsed. With `changed`
        (the file names events reported since the last call), only those files and the
        unsettled ones are looked at again; without, every file is. slim_terminal keeps only
        what a runner needs of finished jobs (BRIEF_KEYS), so it holds little per record."""
        touched = self.store.take_touched()  # its own writes are known now, events come later
        if changed is None or self.listed is None:
            entries = self.store.entries()
            self.listed = {e[0] for e in entries}
            self.resort = True
            self._fresh = None
        else:
            entries = self._restat({_id_of(name) for name in changed} | self.unsettled | touched)
        misses = [e for e in entries if e[0] in self.unsettled or self._key(e[0]) != e[1]]
        found = self._read(misses, slim_terminal)
        self.unsettled = set()
        for job_id, key, _mtime, settled in misses:
            if job_id not in found:  # gone while it was read
                self._forget(job_id)
                continue
            self._place(job_id, key, found[job_id])
            if not settled:
                self.unsettled.add(job_id)
        if self.resort:
            self.objects = {i: self.objects[i] for i in sorted(self.listed) if i in self.objects}
            self.view = {job_id: known[1] for job_id, known in self.objects.items()}
            self.resort = False
        return dict(self.view)  # a copy: a step may add and drop entries of its own

    def take_fresh(self) -> set[str] | None:
        """The ids whose object changed (or that went) since the last take; None when a full
        look came between, after which anything may have changed."""
        fresh, self._fresh = self._fresh, set()
        return fresh

    def _place(self, job_id: str, key: Key, item: Job | Invalid) -> None:
        self.objects[job_id] = (key, item)
        self.view[job_id] = item  # in its place (a new id re-sorts in jobs())
        if self._fresh is not None:
            self._fresh.add(job_id)
        _mark(self.broken, job_id, isinstance(item, Invalid))
        _mark(self.live, job_id, isinstance(item, Job) and _live(item))

    def _read(self, misses: list[Entry], slim_terminal: bool) -> dict[str, Job | Invalid]:
        """The objects of these files now: a few read directly (mostly the runner's own
        writes, from memory), many through the index a chunk at a time (only one chunk's rows
        are held at once)."""
        if len(misses) <= FEW:
            return {
                e[0]: _slim(self.store.item(e[0]), slim_terminal)
                for e in misses
                if _exists(self.store, e[0])
            }
        found: dict[str, Job | Invalid] = {}
        for at in range(0, len(misses), CHUNK):
            rows = self.store.rows_for(misses[at : at + CHUNK], False, slim_terminal)
            found.update((i, _job_of(row, slim_terminal)) for i, row in rows.items())
        return found

    def _key(self, job_id: str) -> Key | None:
        known = self.objects.get(job_id)
        return None if known is None else known[0]

    def _restat(self, job_ids: set[str]) -> list[Entry]:
        """The entries of these ids now (each that exists), noted in the listing."""
        assert self.listed is not None
        entries, store = [], self.store
        for job_id in job_ids:
            if not job_id or job_id[0] == "." or "/" in job_id:
                continue  # dot-files and temp files are never records
            name = job_id if job_id.endswith(".yml") else f"{job_id}.yaml"
            try:
                entry = store.entry(job_id, (store.jobs_dir / name).lstat())
            except (OSError, ValueError):
                self._forget(job_id)
                continue
            if job_id not in self.listed:
                self.listed.add(job_id)
                self.resort = True
            entries.append(entry)
        return entries

    def _forget(self, job_id: str) -> None:
        if self.listed is not None and job_id in self.listed:
            self.listed.discard(job_id)
            self.resort = True
        self.objects.pop(job_id, None)
        self.view.pop(job_id, None)
        self.live.discard(job_id)
        self.broken.discard(job_id)
        if self._fresh is not None:
            self._fresh.add(job_id)


def _live(job: Job) -> bool:
    """Queued, running, or with a worktree still to settle: what a step has work for."""
    return not job.is_terminal or (job.worktree is not None and job.worktree.pending)


def _mark(members: set[str], job_id: str, member: bool) -> None:
    if member:
        members.add(job_id)
    else:
        members.discard(job_id)


def _exists(store: Store, job_id: str) -> bool:
    name = job_id if job_id.endswith(".yml") else f"{job_id}.yaml"
    return os.path.lexists(store.jobs_dir / name)


def _id_of(name: str) -> str:
    """The record id of a file name in jobs/ (<id>.yaml, <id>.exit, <id>.log; a .yml file is
    listed under its own name)."""
    for suffix in (".yaml", ".exit", ".log", ".result.md"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _slim(item: Job | Invalid, slim_terminal: bool) -> Job | Invalid:
    """A finished job as _job_of makes it from a brief row (the same keys kept)."""
    if not slim_terminal or not isinstance(item, Job) or not item.is_terminal:
        return item
    record = job_to_dict(item, with_id=True)
    brief = {k: record[k] for k in BRIEF_KEYS if k in record}
    brief.setdefault("command", "")
    return job_from_record(brief)


def _job_of(row: Row, slim_terminal: bool) -> Job | Invalid:
    """The Job (or Invalid) a row stands for."""
    if row.state == "invalid":
        record = row.record
        return Invalid(row.id, str(record.get("path", "")), str(record.get("error", "")))
    if slim_terminal and row.state in _TERMINAL:
        record = row.brief
        record.setdefault("command", "")  # a finished job's definition is not needed here
        return job_from_record(record)
    return job_from_record(row.record)
