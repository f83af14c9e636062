"""Linux: inotify through watchdog's own low-level reader, with a kernel-side event mask.

The runner only needs to be woken. watchdog's observer asks for every event (so each of the
runner's own reads comes back as open and close events) and pairs each move's two halves,
waiting up to half a second when a read splits them; every later event waits behind that. Here
the kernel reports only what changes a folder (a file written and closed, moved in or out,
created or deleted), and each event wakes the loop as it comes, with no pairing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.observers.inotify_c import CallbackId, InotifyEvent, InotifyFD, Mask, WatchDescriptor
from watchdog.observers.inotify_c import InotifyConstants as K

from .changes import Changes

__all__ = ["KernelWatch"]

_MASK = Mask(
    K.IN_CLOSE_WRITE
    | K.IN_MOVED_TO
    | K.IN_MOVED_FROM
    | K.IN_CREATE
    | K.IN_DELETE
    | K.IN_DELETE_SELF
    | K.IN_MOVE_SELF
    | K.IN_ONLYDIR
)


class KernelWatch:
    """Watches jobs/ and agents/ (and each worker folder in it) and calls `wake` on a change
    that matters; `broken` once a watched top folder is deleted or moved away."""

    def __init__(
        self,
        jobs: Path,
        agents: Path,
        wake: Callable[[], None],
        wanted: Callable[[str, bool], bool],
        changes: Changes,
    ) -> None:
        self.jobs, self.agents = jobs, agents
        self.changes = changes  # the names in jobs/ events report, for an incremental step
        self.wake = wake
        self.wanted = wanted  # (name, is a folder) -> whether it wakes the loop
        self.inotify: InotifyFD | None = None
        self.folders: dict[WatchDescriptor, Path] = {}  # watch descriptor -> folder
        self.broken = False
        self.lock = threading.Lock()

    def start(self) -> None:
        """Add the watches; OSError when the platform refuses (no watches left)."""
        self.inotify = InotifyFD()  # one of its own (as watchdog's observer has), stopped whole
        self.inotify.daemon = True
        self.inotify.start()
        for folder in (self.jobs, self.agents):
            self._watch(folder)
        for entry in os.scandir(self.agents):
            if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                self._watch(Path(entry.path))

    def _watch(self, folder: Path) -> None:
        assert self.inotify is not None
        wd = self.inotify.add_callback(os.fsencode(folder), _MASK, self, CallbackId(id(self)))
        with self.lock:
            self.folders[wd] = folder

    # --- watchdog's WatchCallback --------------------------------------------------------

    def on_event(self, event: InotifyEvent) -> None:
        with self.lock:
            folder = self.folders.get(event.wd)
        if folder is None:
            return
        if event.is_delete_self or event.is_move_self:
            if folder in (self.jobs, self.agents):
                self.broken = True  # the runner restarts its watcher on the new folder
                self.changes.lose()
            self.wake()
            return
        name = os.fsdecode(event.name)
        is_dir = event.is_directory
        if folder == self.jobs:
            self.changes.add(name)
        if is_dir and folder == self.agents and (event.is_create or event.is_moved_to):
            try:
                self._watch(folder / name)  # a new worker folder: its job.yaml is watched too
            except OSError:
                pass
        if self.wanted(name, is_dir):
            self.wake()

    def on_watch_deleted(self, wd: WatchDescriptor) -> None:
        with self.lock:
            folder = self.folders.pop(wd, None)
        if folder in (self.jobs, self.agents):
            self.broken = True
            self.changes.lose()
            self.wake()

    def on_queue_overflow(self) -> None:
        self.changes.lose()
        self.wake()  # events were lost: a step looks at everything

    def alive(self) -> bool:
        return self.inotify is not None and self.inotify.is_alive() and not self.broken

    def stop(self) -> None:
        inotify, self.inotify = self.inotify, None
        if inotify is None:
            return
        with self.lock:
            self.folders = {}
        inotify.stop()  # closes the inotify instance, which ends its reading thread
        if inotify.is_alive():
            inotify.join(timeout=5)
