"""The newest records at the cost of what is shown (`jobs list --limit N`), from the listing
index, once a look at jobs/ shows that no file was added, removed or replaced there since the
index last held them all: the folder's own stat (its mtime moves at every create, delete and
rename), else its names and inode numbers (a directory listing gives them without a stat of
each file). The records shown, and those placed by their file's time, are stat'ed as ever,
so each shows as its file is now. What such a look cannot see is a file rewritten in place
(same inode) whose created_at moved forward: it takes its new place once a listing without
--limit (which stats every file) has indexed it again."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from repowire.store.index import folder_mark

if TYPE_CHECKING:
    from repowire.store.index import RecordIndex
    from repowire.store.listing_row import Row
    from repowire.store.records import Store

__all__ = ["newest", "template_runs"]

CHANGES_AT_MOST = 1000  # files replaced since the index was whole: beyond, all are listed
SHOWN_AT_MOST = 1000  # rows asked for: beyond, all are listed


def newest(
    store: Store, count: int, templates: list[str]
) -> tuple[list[Row], dict[str, list[Row]]] | None:
    """The `count` newest records (oldest first, as a listing sorts them) and the runs of
    each of `templates`; None when the index cannot tell (the caller then reads all)."""
    if count > SHOWN_AT_MOST:
        return None  # a whole listing is as quick
    index = store.index
    with index.session():
        mark = folder_mark(store.jobs_dir)
        if mark is None or index.mark() != mark:
            changed = _replaced(store, index)
        else:
            changed = {}
        found, unstamped = index.fetch("newest", (count,)), index.fetch("unstamped")
        if changed is None or found is None or unstamped is None:
            return None
        ages: dict[str, float] = dict(found)
        wanted = set(ages).union(i for (i,) in unstamped).union(changed)
        rows = {row.id: row for row in store.rows_of(sorted(wanted))}
        if any(i not in rows or rows[i].age[0] < age for i, age in ages.items()):
            return None  # gone, or placed earlier by a hand edit: another may take its place
        runs = {name: template_runs(store, index, name, changed) for name in templates}
    whole_runs = {name: found_runs for name, found_runs in runs.items() if found_runs is not None}
    if len(whole_runs) < len(runs):
        return None
    shown = sorted(rows.values(), key=lambda row: row.age)
    return shown[-count:] if count else [], whole_runs


def _replaced(store: Store, index: RecordIndex) -> dict[str, Row] | None:
    """The rows of the files added or replaced since they were indexed (indexed now); files
    gone are forgotten. None when the index is missing, or too much changed."""
    indexed = index.fetch("inodes")
    if indexed is None:
        return None
    inodes: dict[str, int] = dict(indexed)
    changed, seen = [], set()
    for entry in store.record_entries():
        name = entry.name
        job_id = name[:-5] if name[-5:] == ".yaml" else name
        seen.add(job_id)
        known = inodes.get(job_id)
        if known != entry.inode():
            if known is not None and _same_inode(entry, known):
                return None  # this file system's listing numbers files otherwise than stat
            changed.append(job_id)
    if len(changed) > CHANGES_AT_MOST:
        return None
    index.put([], [i for i in inodes if i not in seen])
    return {row.id: row for row in store.rows_of(changed)}


def _same_inode(entry: os.DirEntry[str], inode: int) -> bool:
    """Whether stat gives the file the inode the index holds (though its listing did not:
    overlay file systems may number a directory's entries apart from their files)."""
    try:
        return entry.stat(follow_symlinks=False).st_ino == inode
    except OSError:
        return False


def template_runs(
    store: Store, index: RecordIndex, name: str, changed: dict[str, Row]
) -> list[Row] | None:
    """A template's runs: those the index names, and those just read."""
    found = index.fetch("runs", (name,))
    if found is None:
        return None
    ids = {i for (i,) in found}
    ids.update(i for i, row in changed.items() if row.template == name)
    return store.rows_of(sorted(ids))
