"""A cheap fingerprint of the records and templates, and the stream of its changes: what
`jobs list --watch` and the dashboard redraw on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from repowire.store.records import Store

__all__ = ["version_of", "changes"]


def version_of(store: Store) -> str:
    """A cheap fingerprint of every record and template: names, sizes and change times."""
    import hashlib  # imported here: most commands never need it

    digest = hashlib.blake2b(digest_size=12)
    try:  # the inbox's seen marks
        seen = os.stat(store.locks_dir / "inbox.seen")
        digest.update(f"seen:{seen.st_mtime_ns}:{seen.st_size};".encode())
    except OSError:
        pass
    for folder in (store.jobs_dir, store.agents_dir):
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except FileNotFoundError:
            continue
        for entry in entries:
            paths = [entry.path]
            if entry.is_dir():
                paths = [os.path.join(entry.path, n) for n in ("job.yaml", "state.yaml")]
            elif not entry.name.endswith(".yaml"):
                continue
            for path in paths:
                try:
                    info = os.stat(path)
                except FileNotFoundError:
                    continue
                digest.update(f"{path}:{info.st_mtime_ns}:{info.st_size};".encode())
    return digest.hexdigest()


def changes(store: Store, every: float) -> Iterator[str]:
    """The fingerprint now, then each time it changes (woken by file events, looked at every
    `every` seconds where none come)."""
    import threading

    from repowire.watch.watcher import Watcher

    woken = threading.Event()
    watcher = Watcher([store.jobs_dir, store.agents_dir], woken)
    watcher.start()
    try:
        seen = version_of(store)
        yield seen
        while True:
            woken.wait(every)
            woken.clear()
            now = version_of(store)
            if now != seen:
                seen = now
                yield seen
    finally:
        watcher.stop()
