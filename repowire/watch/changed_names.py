"""The names in jobs/ that file events reported, for the runner's incremental step."""

from __future__ import annotations

import threading

__all__ = ["ChangedNames"]


class ChangedNames:
    """The names in jobs/ that events reported since the last take; None (look at every
    file) at first, and whenever events may have been lost."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.names: set[str] | None = None

    def add(self, name: str) -> None:
        with self.lock:
            if self.names is not None:
                self.names.add(name)

    def lose(self) -> None:
        with self.lock:
            self.names = None

    def take(self) -> set[str] | None:
        with self.lock:
            names, self.names = self.names, set()
        return names
