"""File-system events from watchdog, turned into one thing: a wake-up of the runner's loop."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

__all__ = ["Watcher"]

_INTERESTING = (".yaml", ".exit")
_KINDS = {"created", "modified", "moved", "deleted"}


class _Wake(FileSystemEventHandler):
    def __init__(self, wake: threading.Event) -> None:
        self.wake = wake

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _KINDS:
            return  # opened/closed events come from our own reads
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            path = raw.decode() if isinstance(raw, bytes) else str(raw)
            name = path.rsplit("/", 1)[-1]
            if name == "state.yaml":
                continue  # the runner's own writes
            if name and not name.startswith(".") and name.endswith(_INTERESTING):
                self.wake.set()
                return
            if event.is_directory and event.event_type in ("created", "deleted", "moved"):
                self.wake.set()  # a worker folder appeared or went away
                return


class Watcher:
    """Watches jobs/ and agents/ and sets `wake` on a change; restarts itself if it dies."""

    def __init__(self, folders: list[Path], wake: threading.Event) -> None:
        self.folders = folders
        self.wake = wake
        self.observer: Any = None
        self.error: str | None = None
        self.watched: list[tuple[int, int]] = []  # the folders' (device, inode) when started

    def start(self) -> bool:
        """Start observing; False (and .error) when the platform refuses, e.g. no watches left."""
        observer = Observer()
        handler = _Wake(self.wake)
        try:
            for folder in self.folders:
                folder.mkdir(parents=True, exist_ok=True)
                observer.schedule(handler, str(folder), recursive=folder.name == "agents")
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
        """Whether a running observer watches folders that are gone or were replaced (an
        inotify watch follows the old folder, and would never report the new one)."""
        return self.observer is not None and (
            not self.observer.is_alive() or self._identities() != self.watched
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
