"""File-system events from watchdog, turned into one thing: a wake-up of the runner's loop.

On Linux, watchdog's low-level inotify reader with a kernel-side mask (kernel_watch.py); on
other platforms (macOS: FSEvents), watchdog's observer for the platform."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from .changes import Changes

if TYPE_CHECKING:
    from .kernel_watch import KernelWatch

__all__ = ["Watcher"]

_INTERESTING = (".yaml", ".exit")
_KINDS = {"created", "modified", "moved", "deleted"}
KERNEL_MASKED = sys.platform.startswith("linux")  # tests turn it off to try the observer


def wanted(name: str, is_dir: bool) -> bool:
    """Whether a change to this name wakes the runner: a record, a template, an exit status,
    a worker folder coming or going; never a dot-file, a temp file or a state.yaml (the
    runner's own writes)."""
    if not name or name.startswith(".") or name == "state.yaml":
        return False
    return is_dir or name.endswith(_INTERESTING)


class _Wake(FileSystemEventHandler):
    def __init__(self, wake: threading.Event, changes: Changes, jobs: Path) -> None:
        self.wake, self.changes, self.jobs = wake, changes, str(jobs)

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _KINDS:
            return  # opened/closed events come from our own reads
        woken = False
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            path = raw.decode() if isinstance(raw, bytes) else str(raw)
            parent, _, name = path.rpartition("/")
            if parent == self.jobs:
                self.changes.add(name)
            folder = event.is_directory and event.event_type != "modified"
            woken = woken or wanted(name, folder)
        if woken:
            self.wake.set()


class Watcher:
    """Watches jobs/ and agents/ and sets `wake` on a change; restarts itself if it dies."""

    def __init__(self, folders: list[Path], wake: threading.Event) -> None:
        self.folders = folders
        self.wake = wake
        self.observer: Any = None
        self.kernel: KernelWatch | None = None  # on Linux
        self.error: str | None = None
        self.watched: list[tuple[int, int]] = []  # the folders' (device, inode) when started
        self.changes = Changes()  # names in jobs/, where the platform's events give them

    def start(self) -> bool:
        """Start observing; False (and .error) when the platform refuses, e.g. no watches left."""
        if KERNEL_MASKED:
            return self._start_kernel()
        observer = Observer()
        handler = _Wake(self.wake, self.changes, self.folders[0])
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

    def _start_kernel(self) -> bool:
        from .kernel_watch import KernelWatch  # imports inotify: Linux only

        jobs, agents = self.folders
        kernel = KernelWatch(jobs, agents, self.wake.set, wanted, self.changes)
        try:
            for folder in self.folders:
                folder.mkdir(parents=True, exist_ok=True)
            kernel.start()
            self.watched = self._identities()
        except OSError as exc:
            self.error = f"file events unavailable ({exc}); falling back to periodic rescans"
            kernel.stop()
            return False
        self.kernel = kernel
        return True

    def _running(self) -> bool:
        if self.kernel is not None:
            return self.kernel.alive()
        return self.observer is not None and self.observer.is_alive()

    def healthy(self) -> bool:
        return self._running()

    def stale(self) -> bool:
        """Whether a running watcher watches folders that are gone or were replaced (an
        inotify watch follows the old folder, and would never report the new one)."""
        started = self.kernel is not None or self.observer is not None
        return started and (not self._running() or self._identities() != self.watched)

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
        if self.kernel is not None:
            self.kernel.stop()
            self.kernel = None
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
