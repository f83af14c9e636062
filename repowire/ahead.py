"""Files made ahead of need, on a thread of their own, so the runner's loop only opens them.

Creating a file allocates an inode and changes its folder. While a runner rewrites records,
each new file took 0.2-1.5 ms here (ext4 without a journal looks past every inode freed in the
last minute; a journaled one may wait for the commit an fsync began), against 10 us to open
one that exists, and a job needs four: two temp files (its claim and its outcome), its lock
file and its log. This thread makes them beforehand: a few spare temp files, and the lock
files and logs of the jobs next in line. A job that was not in line (one just dropped into an
idle runner) has its lock and log named from spares (a link: files.name_temp). Spares taken
are made again when the runner's step is over (refill), not while it starts a job: made at
once, they took the CPU from the start they were taken for (dispatch p50 6.5 -> 5.3 ms with
the naming, which alone gained nothing).

Spares wait in cache/spares/, not in jobs/: people listing jobs/ see no files that are not
theirs, and an open file in jobs/ would keep the kernel from reporting the folder's removal to
the watcher. A record's temp file may lie in another folder of the same file system: the
rename into jobs/ is as atomic, and jobs/ is made durable after it as ever. A spare left by a
killed runner is removed as any crashed writer's temp file is; a spare removed under us, or
on another file system, is never used (files.atomic_write then makes a fresh temp file).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from .files import open_temp

__all__ = ["Ahead", "spares_dir"]

SPARES = 8  # temp files kept ready: a step writes a few records at once
REMEMBERED = 4096  # paths already made, not made again

_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)


def spares_dir(base: Path) -> Path:
    """Where a runner of the .repowire/ folder `base` keeps its spare temp files."""
    return base / "cache" / "spares"


class Ahead:
    """Spare temp files for writes into one folder, and named files made before they are
    needed."""

    def __init__(self, target: Path, spares_dir: Path, keep: int = SPARES) -> None:
        self.target = target  # where the spares are renamed to
        self.folder = spares_dir
        self.keep = keep
        self._spares: deque[tuple[int, str]] = deque()
        self._wanted: deque[Path] = deque()
        self._made: dict[Path, None] = {}  # ordered: the oldest are forgotten first
        self._cond = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            apart = self.folder.stat().st_dev != self.target.stat().st_dev
        except OSError:
            apart = True  # a cache folder that cannot be made: every write makes its own
        if apart:  # a rename from another file system fails: no spares
            self.keep = 0
        self._closing = False
        self._thread = threading.Thread(target=self._work, name="repowire-ahead", daemon=True)
        self._thread.start()

    def take(self, folder: Path) -> tuple[int, str] | None:
        """A spare temp file in folder (its descriptor, open for writing, and its path), or
        None: the caller makes its own."""
        if folder != self.target:
            return None
        with self._cond:
            if not self._spares:
                return None
            return self._spares.popleft()

    def refill(self) -> None:
        """Make spares again for those taken; called when the runner's step is over, and a
        start's command has had the CPU (runner.SETTLE_SECONDS), so their making does not
        compete with it."""
        with self._cond:
            if len(self._spares) < self.keep:
                self._cond.notify()

    def prepare(self, paths: Iterable[Path]) -> None:
        """Make these files (empty) if they do not exist yet, soon. A file that cannot be made
        is left alone: whoever opens it later meets the error."""
        with self._cond:
            fresh = [p for p in paths if p not in self._made]
            for path in fresh:
                self._made[path] = None
            while len(self._made) > REMEMBERED:
                del self._made[next(iter(self._made))]
            self._wanted.extend(fresh)
            if fresh:
                self._cond.notify()

    def close(self) -> None:
        """Stop the thread; the spares not taken are removed."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for fd, path in self._spares:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
        self._spares.clear()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._closing and not self._wanted and len(self._spares) >= self.keep:
                    self._cond.wait()
                if self._closing:
                    return
                wanted = self._wanted.popleft() if self._wanted else None
            if wanted is not None:
                _make(wanted)
                continue
            spare = _spare(self.folder)
            if spare is None:
                with self._cond:  # e.g. a full disk or a folder gone: not again until asked
                    self.keep = len(self._spares)
                continue
            with self._cond:
                self._spares.append(spare)


def _make(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.close(os.open(path, _OPEN_FLAGS, 0o644))


def _spare(folder: Path) -> tuple[int, str] | None:
    try:
        return open_temp(folder)
    except OSError:
        return None
