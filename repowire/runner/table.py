"""The runner's listing of the records, kept between its steps: after a first look at every
file, a step looks again only at the files that file events named since the last step, and
at those that changed too recently for their identity to be trusted."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable

from repowire.record.job import Invalid, Job, job_from_record
from repowire.record.states import TERMINAL_NAMES, State
from repowire.store.listing_row import Row
from repowire.store.records import Entry, Store

__all__ = ["JobTable"]

_STATES = {s.value: s for s in State}
_pack = struct.Struct("<Qqqq").pack  # a file's identity: inode, size, mtime and ctime in ns
_NONE: tuple[bytes, None] = (b"", None)
FEW = 64  # changed records a step reads itself; more are read through the listing index
CHUNK = 500  # records read (or parsed and indexed) at once


class JobTable:
    """Each record file's entry and object, in id order.

    A runner's table may keep only the state of a finished record it has nothing more to do
    for (one-off jobs that ended, most of a long history): `may_rest` says which rows read
    through the index need not be decoded at all, and `rest` lets go of objects once the
    runner is done with them. Such records are left out of jobs(); `state_of` still tells
    their state (a job may wait for one), and any change to the file brings the object back."""

    def __init__(
        self, store: Store, may_rest: Callable[[str, int, float], bool] | None = None
    ) -> None:
        self.store = store
        self.may_rest = may_rest
        # each file's identity (packed: a long history is held in little memory) and object
        self.objects: dict[str, tuple[bytes, Job | Invalid | State]] = {}
        self.listed: set[str] | None = None  # the files' ids; None until the first full look
        self.unsettled: set[str] = set()  # looked at again whatever events say
        self.resort = True  # an id came or went: the view is put in order again
        self.view: dict[str, Job | Invalid] = {}  # the objects in id order, as jobs() gives
        # What a runner's step goes through instead of every record: the jobs that are queued,
        # running or have a worktree to settle; the broken files; and the ids whose object
        # changed (or that went) since take_fresh.
        self.live: set[str] = set()
        self.broken: set[str] = set()
        self._fresh: set[str] = set()

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
        else:
            entries = self._restat({_id_of(name) for name in changed} | self.unsettled | touched)
        misses = self._misses(entries)
        found = self._read(misses, slim_terminal)
        for job_id, key, _mtime, settled in misses:
            if job_id not in found:  # gone while it was read
                self._forget(job_id)
                continue
            self._place(job_id, _pack(*key), found[job_id])
            if not settled:
                self.unsettled.add(job_id)
        if self.resort:
            self.objects = {i: self.objects[i] for i in sorted(self.listed) if i in self.objects}
            self.view = {
                job_id: item
                for job_id, (_key, item) in self.objects.items()
                if not isinstance(item, State)
            }
            self.resort = False
        return dict(self.view)  # a copy: a step may add and drop entries of its own

    def _misses(self, entries: list[Entry]) -> list[Entry]:
        """The files to read: new, changed, or read while their identity could not yet be
        trusted and now can be (a second write in the same clock tick may have left the same
        identity). Until then such a file is kept as read, unless its identity changes."""
        unsettled, objects = self.unsettled, self.objects
        self.unsettled = {e[0] for e in entries if e[0] in unsettled and not e[3]}
        return [
            e
            for e in entries
            if (known := objects.get(e[0])) is None
            or known[0] != _pack(*e[1])
            or (e[0] in unsettled and e[3])
        ]

    def take_fresh(self) -> set[str]:
        """The ids whose object changed (or that went) since the last take."""
        fresh, self._fresh = self._fresh, set()
        return fresh

    def state_of(self, job_id: str) -> str | None:
        """A record's state, resting or not; None for a broken or missing one."""
        known = self.objects.get(job_id)
        item = None if known is None else known[1]
        if isinstance(item, Job):
            return item.state.value
        return item.value if isinstance(item, State) else None

    def rest(self, job_ids: Iterable[str]) -> None:
        """Keep only the state of these records, those that are finished one-off jobs."""
        for job_id in job_ids:
            key, item = self.objects.get(job_id, _NONE)
            if isinstance(item, Job) and item.is_terminal and not item.template:
                if not _live(item):
                    self._place(job_id, key, item.state)

    def wake_resting(self) -> None:
        """Read every resting record again at the next call (what is owed to it changed)."""
        self.unsettled.update(i for i, known in self.objects.items() if isinstance(known[1], State))

    def _place(self, job_id: str, key: bytes, item: Job | Invalid | State) -> None:
        self.objects[job_id] = (key, item)
        if isinstance(item, State):
            self.view.pop(job_id, None)
            self.live.discard(job_id)
            self.broken.discard(job_id)
            return
        self.view[job_id] = item  # in its place (a new id re-sorts in jobs())
        self._fresh.add(job_id)
        _mark(self.broken, job_id, isinstance(item, Invalid))
        _mark(self.live, job_id, isinstance(item, Job) and _live(item))

    def _read(self, misses: list[Entry], slim_terminal: bool) -> dict[str, Job | Invalid | State]:
        """The objects of these files now: a few read directly (mostly the runner's own
        writes, from memory), many through the index a chunk at a time (only one chunk's rows
        are held at once)."""
        if len(misses) <= FEW:  # one changed within a tick is read again once it settles,
            return {  # so its identity may say it is what this process just wrote
                e[0]: self.store.item(e[0]) for e in misses if _exists(self.store, e[0])
            }
        found: dict[str, Job | Invalid | State] = {}
        if slim_terminal and self.may_rest is not None:  # resting rows are not even decoded
            resting = self.store.resting(misses, self.may_rest)
            found.update((i, _STATES[state]) for i, state in resting.items())
            misses = [e for e in misses if e[0] not in resting]
        for at in range(0, len(misses), CHUNK):  # the others (e.g. not indexed yet: parsed now)
            rows = self.store.rows_for(misses[at : at + CHUNK], False, slim_terminal)
            found.update((i, self._item_of(row, slim_terminal)) for i, row in rows.items())
        return found

    def _item_of(self, row: Row, slim_terminal: bool) -> Job | Invalid | State:
        """What the table keeps of a row: a runner's, its state only when it may rest."""
        if slim_terminal and row.rest is not None and self.may_rest is not None:
            if self.may_rest(row.id, row.rest, row.changed_at):
                return _STATES[row.state]
        return _job_of(row, slim_terminal)

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


def _job_of(row: Row, slim_terminal: bool) -> Job | Invalid:
    """The Job (or Invalid) a row stands for."""
    if row.state == "invalid":
        record = row.record
        return Invalid(row.id, str(record.get("path", "")), str(record.get("error", "")))
    if slim_terminal and row.state in TERMINAL_NAMES:
        record = row.brief
        record.setdefault("command", "")  # a finished job's definition is not needed here
        return job_from_record(record)
    return job_from_record(row.record)
