"""The inbox: finished runs nobody has looked at yet.

Seen marks are runtime state, in `.repowire/locks/inbox.seen` (git-ignored with the rest of
locks/): one line per run seen, `<id> <attempt>`, appended under a lock, and `all <time>` for
"everything that ended before this time has been seen". A run seen again after a retry is new.
A quiet run (nothing to report) never enters it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from repowire.files import atomic_write
from repowire.record.states import TERMINAL_NAMES
from repowire.store.records import Store
from repowire.times import format_time

__all__ = ["unread", "unread_records", "mark_seen", "mark_all_seen"]


def _path(store: Store) -> Path:
    return store.locks_dir / "inbox.seen"


def _marks(store: Store) -> tuple[str, set[tuple[str, int]]]:
    """Everything before this time (text) is seen, and these runs (id, attempt) are."""
    try:
        text = _path(store).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "", set()
    before, seen = "", set()
    for line in text.splitlines():
        first, _, rest = line.partition(" ")
        if first == "all":
            before = max(before, rest.strip())
        elif rest.strip().isdigit():
            seen.add((first, int(rest)))
    return before, seen


def unread(store: Store, records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Finished runs not seen yet, newest first (quiet ones never)."""
    before, seen = _marks(store)
    found = [
        r
        for r in records
        if r.get("state") in TERMINAL_NAMES
        and not r.get("quiet")
        and str(r.get("finished_at") or r.get("updated_at") or "") > before
        and (r["id"], int(r.get("attempt") or 0)) not in seen
    ]
    return sorted(found, key=lambda r: str(r.get("finished_at") or ""), reverse=True)


def unread_records(store: Store) -> list[dict[str, Any]]:
    """The whole records of the runs unread() finds among every record (read from the
    listing index: only their briefs are decoded)."""
    found = unread(store, [row.brief for row in store.list_rows(brief=True)])
    whole = {row.id: row.record for row in store.rows_of([str(r["id"]) for r in found])}
    return [dict(whole[r["id"]]) for r in found if r["id"] in whole]


def mark_seen(store: Store, runs: Iterable[tuple[str, int]]) -> None:
    """Mark runs (id, attempt) seen: lines appended under the inbox's lock."""
    lines = "".join(f"{job_id} {attempt}\n" for job_id, attempt in runs)
    if not lines:
        return
    store.locks_dir.mkdir(parents=True, exist_ok=True)
    with store.lock("inbox"):
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        with os.fdopen(os.open(_path(store), flags, 0o644), "a", encoding="utf-8") as handle:
            handle.write(lines)


def mark_all_seen(store: Store, now: datetime) -> None:
    """Everything that ended until now is seen: the file becomes that one line."""
    store.locks_dir.mkdir(parents=True, exist_ok=True)
    with store.lock("inbox"):
        atomic_write(_path(store), f"all {format_time(now)}\n")
