"""What the runner's next step must look at: the names file events reported, or every record
when events may have missed something (none on this file system, events lost, the folders
changed without one, or the periodic full look is due)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from repowire.watch.changed_names import ChangedNames

__all__ = ["Lookout", "FULL_RESCAN_SECONDS"]

FULL_RESCAN_SECONDS = 600.0  # with working events, a quiet rescan looks at the folders only


class Lookout:
    """The folders' state at the last look, and the names events reported since."""

    def __init__(self, jobs: Path, agents: Path) -> None:
        self.jobs, self.agents = jobs, agents
        self.changes: ChangedNames | None = None  # names events report (None: no events here)
        self.exit_files: set[str] = set()  # ids with an exit file, at the last full look
        self._stamps: list[int] = []  # jobs/ and agents/ mtimes at the last rescan
        self._last_full = time.monotonic()
        self._full_due = False  # the next step looks at every record, whatever events say

    def folders_changed(self, events_work: bool, rescan: float) -> bool:
        """For a quiet periodic rescan (every `rescan` seconds without events): whether jobs/
        or agents/ changed since the last one.

        Every atomic write renames into jobs/ and so changes its mtime; in-place edits on a
        file system without events are caught by a full rescan every FULL_RESCAN_SECONDS."""
        stamps = self._folder_stamps()
        now = time.monotonic()
        due = now - self._last_full >= (FULL_RESCAN_SECONDS if events_work else rescan)
        if due or not events_work or stamps != self._stamps:
            self._full_due = True  # e.g. another host's write, which sends no event here
        if stamps != self._stamps or due:
            self._stamps, self._last_full = stamps, now
            return True
        return False

    def take_changes(self) -> set[str] | None:
        """The file names events reported in jobs/ since the last look, or None: look at
        every record (no events here, events lost, or the periodic full rescan is due)."""
        changes, full = self.changes, self._full_due
        self._full_due = False
        names = changes.take() if changes is not None else None  # before the files are read:
        if names is None or full:  # a later change is told again
            self._stamps = self._folder_stamps()  # what a full look has seen
            self.exit_files = _exit_ids(self.jobs)
            return None
        return names

    def _folder_stamps(self) -> list[int]:
        stamps = []
        for folder in (self.jobs, self.agents):
            try:
                stamps.append(folder.stat().st_mtime_ns)
            except FileNotFoundError:
                stamps.append(0)
        return stamps


def _exit_ids(jobs: Path) -> set[str]:
    """The ids whose <id>.exit is in jobs/ (one listing of the folder)."""
    try:
        return {name[:-5] for name in os.listdir(jobs) if name.endswith(".exit")}
    except OSError:
        return set()
