"""What this process last wrote to each record, so that reading it back is not parsing it
again: its text, and its data as job_from_record takes it. Anyone else's edit changes the
bytes, and is parsed."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from .errors import ValidationError
from .files import Identity, dump_yaml
from .model import Job, job_from_record, job_to_dict, with_text_times

__all__ = ["Written", "slim", "record_text"]

KEPT = 512  # records kept (the runner's busiest ones: each write moves a record to the end)
_REBUILT = frozenset({"notes", "executor", "worktree"})  # job_from_record makes new objects
_FINISHED = frozenset({"succeeded", "failed", "canceled"})


class Written:
    """The last text this process wrote to each of the latest KEPT records, and its data."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, tuple[str, dict[str, Any], Identity | None]] = OrderedDict()
        self._guard = threading.Lock()  # the runner's notifier writes from its threads

    def remember(
        self, job_id: str, text: str, dumped: dict[str, Any], identity: Identity | None = None
    ) -> None:
        """`text` was written to the record, dumped from `dumped` (times as datetimes); the
        file had `identity` right after."""
        known = (text, with_text_times(dumped, job_id), identity)
        with self._guard:
            self._items[job_id] = known
            self._items.move_to_end(job_id)
            while len(self._items) > KEPT:
                self._items.popitem(last=False)

    def forget(self, job_id: str) -> None:
        with self._guard:
            self._items.pop(job_id, None)

    def job(self, job_id: str, text: str, brief: bool = False) -> Job | None:
        """A new Job of the record, if `text` is what this process wrote there last (with
        brief, a finished one holds only BRIEF_KEYS)."""
        known = self._items.get(job_id)
        if known is None or known[0] != text:
            return None
        return _job(known[1], brief)

    def at(self, job_id: str, identity: Identity, brief: bool = False) -> Job | None:
        """A new Job of the record, if the file has the identity it had right after this
        process wrote it last. Only for a file changed within a timestamp tick, which its
        reader reads again once that identity can be trusted (table.JobTable)."""
        known = self._items.get(job_id)
        if known is None or known[2] is None or known[2] != identity:
            return None
        return _job(known[1], brief)


def _job(record: dict[str, Any], brief: bool) -> Job:
    if brief and record.get("state") in _FINISHED:
        record = _brief(record)
    return job_from_record(_unshared(record))


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


def slim(job: Job) -> Job:
    """A finished job with only BRIEF_KEYS (all a runner reads of it); others as they are."""
    if not job.is_terminal:
        return job
    return job_from_record(_brief(job_to_dict(job, with_id=True)))


def _brief(record: dict[str, Any]) -> dict[str, Any]:
    from .rows import BRIEF_KEYS  # imported here: rows loads json, which `jobs status` needs not

    brief = {k: record[k] for k in BRIEF_KEYS if k in record}
    brief.setdefault("command", "")  # a finished job's definition is not needed
    return brief


def _unshared(record: dict[str, Any]) -> dict[str, Any]:
    """A copy of a remembered record that job_from_record may hand to a caller who changes
    it: the lists and mappings it does not build anew are copied."""
    import copy  # imported here: `jobs status` reads a record this process never wrote

    return {
        k: v if k in _REBUILT or not isinstance(v, (dict, list)) else copy.deepcopy(v)
        for k, v in record.items()
    }
