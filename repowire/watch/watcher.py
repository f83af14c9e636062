"""File-system events from watchdog, turned into one thing: a wake-up of the runner's loop.

watchdog's public observer on every platform (inotify on Linux, FSEvents on macOS). The runner
asks it only for the events that change a folder (created, moved, deleted, a file closed after
writing): on Linux watchdog builds the kernel's inotify mask from that list, so the runner's own
reads of records raise no events at all."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from watchdog import events
from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from repowire.watch.changed_names import ChangedNames

__all__ = ["Watcher", "wanted"]

_INTERESTING = (".yaml", ".exit")
# watchdog 7.1 reports an inotify queue overflow; with 6.0 (the newest for Python 3.10) the
# runner's periodic full look is what finds what the lost events would have said.
_LOST: type[FileSystemEvent] | None = getattr(events, "EventsLostEvent", None)
# The events asked for. No opened, closed-without-writing or modified events: a read raises
# none, and a file written in place is reported once, when it is closed.
_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    DirCreatedEvent,
    FileMovedEvent,
    DirMovedEvent,
    FileDeletedEvent,
    DirDeletedEvent,
    FileClosedEvent,
    *([_LOST] if _LOST else []),
]


def wanted(name: str, is_dir: bool) -> bool:
    """Whether a change to this name wakes the runner: a record, a template, an exit status,
    a worker folder coming or going; never a dot-file, a temp file or a state.yaml (the
    runner's own writes)."""
    if not name or name.startswith(".") or name == "state.yaml":
        return False
    return is_dir or name.endswith(_INTERESTING)


class _Wake(FileSystemEventHandler):
    """Notes the names in jobs/ that an event reports and wakes the loop for those wanted."""

    def __init__(self, wake: threading.Event, changes: ChangedNames, jobs: Path) -> None:
        self.wake, self.changes, self.jobs = wake, changes, str(jobs)

    def on_any_event(self, event: FileSystemEvent) -> None:
        if _LOST is not None and isinstance(event, _LOST):
            self.changes.lose()  # the kernel dropped events: the next step looks at everything
            self.wake.set()
            return
        woken = False
        for raw in (event.src_path, event.dest_path):
            path = raw.decode() if isinstance(raw, bytes) else str(raw)
            if not path:
                continue
            parent, _, name = path.rpartition("/")
            if parent == self.jobs:
                self.changes.add(name)
            woken = woken or wanted(name, event.is_directory)
        if woken:
            self.wake.set()


class Watcher:
    """Watches jobs/ and agents/ and sets `wake` on a change; restarts itself if it dies."""

    def __init__(self, folders: list[Path], wake: threading.Event) -> None:
        self.folders = folders
        self.wake = wake
        self.observer: Any = None
        self.error: str | None = None
        self.watched: list[tuple[int, int]] = []  # the folders' (device, inode) when started
        self.changes = ChangedNames()  # names in jobs/, where the platform's events give them

    def start(self) -> bool:
        """Start observing; False (and .error) when the platform refuses, e.g. no watches left."""
        observer = Observer()
        handler = _Wake(self.wake, self.changes, self.folders[0])
        try:
            for folder in self.folders:
                folder.mkdir(parents=True, exist_ok=True)
                recursive = folder.name == "agents"  # a worker folder's job.yaml too
                observer.schedule(handler, str(folder), recursive=recursive, event_filter=_EVENTS)
            observer.daemon = True
            observer.start()
            self.watched = self._identities()
        except OSError as exc:
            self.error = f"file events unavailable ({exc}); falling back to periodic rescans"
            self._stop(observer)
            return False
        self.observer = observer
        return True

    def healthy(self) -> bool:
        return self.observer is not None and self.observer.is_alive()

    def stale(self) -> bool:
        """Whether a running watcher watches folders that are gone or were replaced (an
        inotify watch follows the old folder, and would never report the new one)."""
        return self.observer is not None and (
            not self.healthy() or self._identities() != self.watched
        )

    def _identities(self) -> list[tuple[int, int]]:
        out = []
        for folder in self.folders:
            try:
                info = folder.stat()
            except OSError:
                out.append((0, 0))
                continue
            out.append((info.st_dev, info.st_ino))
        return out

    def restart(self) -> bool:
        self.stop()
        return self.start()

    def stop(self) -> None:
        self.changes.lose()  # what changes while nothing watches is found by a full look
        self._stop(self.observer)
        self.observer = None

    @staticmethod
    def _stop(observer: Any) -> None:
        if observer is None:
            return
        try:
            observer.stop()
            if observer.is_alive():
                observer.join(timeout=5)
        except RuntimeError:
            pass
