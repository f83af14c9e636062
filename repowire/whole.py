"""Every job record as `jobs list --json` prints it, from the listing index in one query, once
the index holds every file of jobs/ as it is now. Each file is still stat'ed and compared with
its row (so an edit by hand is seen), and the few files that changed are read and indexed
first; but the rows are neither made into objects nor sorted in Python: SQLite gives their
JSON text oldest first. What the index cannot answer alone leaves the listing to
views.listing: a file changed within a timestamp tick (its identity cannot be trusted yet), a
queued job that waits for others (its `waiting_for` is worked out per listing), many changed
files, or an index that cannot be read or written."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from .index_db import Whole
from .newest import template_runs
from .store import RACY_NS

if TYPE_CHECKING:
    from .rows import Row
    from .store import Entry, Key, Store

__all__ = ["whole_jobs"]

CHANGED_AT_MOST = 1000  # files read and indexed first; beyond, the whole listing is as quick


def whole_jobs(store: Store, templates: list[str]) -> tuple[list[str], dict[str, list[Row]]] | None:
    """The JSON text of every record, oldest first (as views.listing sorts them), and the runs
    of each of `templates`; None when the index cannot give them (see the module's words)."""
    index = store.index
    with index.session():
        whole = Whole(index, store.jobs_dir, RACY_NS)  # taken before the folder is read
        keys = _keys(store)
        found = None if keys is None else _texts(store, keys)
        if isinstance(found, set):  # rows that differ from their file: index the files
            found = _texts(store, keys) if keys is not None and _index(store, keys, found) else None
        runs = {name: template_runs(store, index, name, {}) for name in templates}
        if not isinstance(found, list) or any(rows is None for rows in runs.values()):
            return None
        whole.done()
    return found, {name: rows or [] for name, rows in runs.items()}


def _keys(store: Store) -> dict[str, Key] | None:
    """Each record file's identity by id, as Store.entries names them; None if one changed
    too recently for its identity to be trusted."""
    settled_before = time.time_ns() - RACY_NS
    keys: dict[str, Key] = {}
    for entry in store.record_entries():
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # gone since the folder was read
        if info.st_ctime_ns >= settled_before:
            return None
        name = entry.name
        job_id = name[:-5] if name[-5:] == ".yaml" else name
        keys[job_id] = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    return keys


def _texts(store: Store, keys: dict[str, Key]) -> list[str] | set[str] | None:
    """Every record's text oldest first, when the index holds each file as it is; else the
    ids whose row differs from their file, is missing, or has no file; None when the index
    cannot say, or a queued job waits for others."""
    rows = store.index.fetch("texts")
    if rows is None:
        return None
    texts: list[str] = []
    add, get, differ = texts.append, keys.get, set()
    for job_id, ino, size, mtime_ns, ctime_ns, state, text in rows:
        if get(job_id) != (ino, size, mtime_ns, ctime_ns):
            differ.add(job_id)
        elif state == "queued" and json.loads(text).get("after"):
            return None  # its waiting_for is worked out by views.listing
        else:
            add(text)
    if len(texts) < len(keys) or differ:
        return differ.union(keys.keys() - {row[0] for row in rows})
    return texts


def _index(store: Store, keys: dict[str, Key], ids: set[str]) -> bool:
    """Read and index the files among `ids`, and forget the rows of the others (their file is
    gone); whether the index now holds them so."""
    changed = sorted(i for i in ids if i in keys)
    if len(changed) > CHANGED_AT_MOST:
        return False
    entries: list[Entry] = [(i, keys[i], keys[i][2] / 1e9, True) for i in changed]  # settled
    if len(store.rows_for(entries, False)) < len(entries):
        return False  # gone while it was read
    if any(store.index.fetch("key", (i,)) != [(i, *keys[i])] for i in changed):
        return False  # not written (another process writes the index), or changed again
    return store.index.put([], sorted(ids.difference(changed)))
