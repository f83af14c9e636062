"""A record as the listing index holds it: the columns listings sort and filter by, and its
data as JSON text, decoded only when asked for."""

from __future__ import annotations

import contextlib
import json
import operator
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from repowire.record.fields import USAGE_COUNTS
from repowire.record.states import TERMINAL_NAMES

__all__ = ["Row", "BRIEF_KEYS", "USAGE_NUMBERS", "backend_of", "rest_of"]

BRIEF_KEYS = (
    "id",
    "state",
    "template",
    "backend",
    "command",
    "scheduled_for",
    "executor",
    "created_at",
    "updated_at",
    "finished_at",
    "attempt",
    "continuity",
    "worktree",  # a worktree run's settling and tidying go on after it ends
    "keep_worktree",
    "usage",  # a template's budget and `repowire usage` add up what finished runs spent
    "notify",  # notifications are sent after a job ends
    "notified",
    "quiet",
    "session_id",  # a CLI that reports a session's running total is told the earlier runs'
)
_DECODER = json.JSONDecoder()
_ID = operator.attrgetter("id")
USAGE_NUMBERS = (*USAGE_COUNTS, "cost_usd")


class Row:
    """One record as listings see it: the columns they sort and filter by, and its data as JSON
    text, decoded only when asked for (`record`; `brief` holds only BRIEF_KEYS)."""

    __slots__ = (
        "id",
        "state",
        "template",
        "created",
        "changed",
        "mtime",
        "text",
        "_brief",
        "_r",
        "spend",
        "rest",
    )
    spend: tuple[Any, ...]  # set by Row.of only: the spend columns a new index row gets

    def __init__(self, job_id: str, state: str, template: str | None, text: str) -> None:
        self.id, self.state, self.template, self.text = job_id, state, template, text
        self.created: float | None = None  # created_at as a timestamp, if the record has one
        self.changed: float | None = None  # updated_at, else created_at
        self.mtime = 0.0  # its file's, for a hand-written record without times
        self._brief = ""
        self._r: dict[str, Any] | None = None
        self.rest: int | None = None  # see rest_of

    @classmethod
    def of(cls, record: dict[str, Any], mtime: float) -> Row:
        """The row of a record just parsed (record is kept, not copied)."""
        template = record.get("template")
        row = cls(
            record["id"],
            str(record["state"]),
            template if isinstance(template, str) else None,
            json.dumps(record, ensure_ascii=False, default=str),
        )
        row.created = _stamp(record.get("created_at"))
        row.changed = _stamp(record.get("updated_at")) or row.created
        row.mtime, row._r, row.rest = mtime, record, rest_of(record)
        usage, ended = record.get("usage"), record.get("finished_at")
        if isinstance(usage, dict) and usage and isinstance(ended, str):
            numbers = [usage.get(k) for k in USAGE_NUMBERS]
            row.spend = (
                ended,
                backend_of(record),
                *numbers,
                int(bool(usage.get("cost_estimated"))),
            )
        else:
            row.spend = (None,) * 7
        return row

    @property
    def record(self) -> dict[str, Any]:
        """The whole record as plain data (decoded once; callers do not change it)."""
        if self._r is None:
            if not self.text:
                raise LookupError(f"only the brief of {self.id} was read")
            self._r = _decode(self.text)
        return self._r

    def replace(self, record: dict[str, Any]) -> None:
        """Stand for `record` instead (a listing adds what it works out, e.g. waiting_for)."""
        self._r, self._brief = record, ""
        self.text = json.dumps(record, ensure_ascii=False, default=str)

    @property
    def brief(self) -> dict[str, Any]:
        """Only BRIEF_KEYS of the record: what runners and reports read of every record."""
        if self._r is not None:
            return {k: self._r[k] for k in BRIEF_KEYS if k in self._r}
        if not self._brief:
            return {k: v for k, v in self.record.items() if k in BRIEF_KEYS}
        return _decode(self._brief)

    def brief_text(self) -> str:
        return self._brief or json.dumps(self.brief, ensure_ascii=False, default=str)

    @property
    def age(self) -> tuple[float, str]:
        """Oldest first: its creation time, else its file's, then its id."""
        return (self.mtime if self.created is None else self.created, self.id)

    @staticmethod
    def sort_by_age(rows: list[Row]) -> None:
        """Sort rows oldest first, by `age`: by id, then (a stable sort) by time, which is
        several times faster than sorting by the pair when many rows share a time."""
        rows.sort(key=_ID)
        rows.sort(key=lambda row: row.mtime if row.created is None else row.created)

    @property
    def changed_at(self) -> float:
        return self.mtime if self.changed is None else self.changed


def _decode(text: str) -> dict[str, Any]:
    """JSON this module wrote: one object, no surrounding space to look for."""
    value = _DECODER.raw_decode(text)[0]
    if not isinstance(value, dict):
        raise ValueError("an index row is not a JSON object")
    return value


def rest_of(record: Mapping[str, Any]) -> int | None:
    """Whether a runner may keep only this record's state, not the record: None when it
    may not (a job not finished, a template's run, a notification to send, a worktree to
    settle, an attempt it cannot judge by a process group here); 0 when it may; a process
    group's number when it may once no process of that group lives (else the attempt may
    have outlived its record, and is released)."""
    if record.get("state") not in TERMINAL_NAMES or record.get("template") or record.get("notify"):
        return None
    tree = record.get("worktree")
    if isinstance(tree, dict) and "head" not in tree:
        return None
    handle = record.get("executor")
    if not isinstance(handle, dict):
        return 0  # never started (or only the kind of executor it asks for)
    group = handle.get("pgid") or handle.get("pid")
    if handle.get("kind") != "local" or not isinstance(group, int) or group <= 1:
        return None  # a Slurm job, or a claim whose attempt recovery may still find
    return group


def backend_of(record: Mapping[str, Any]) -> str:
    """What `repowire usage --by backend` groups a run under."""
    return str(record.get("backend") or ("shell" if record.get("command") else "-"))


def _stamp(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return None
