"""The job locks: an exclusive flock(2) on a file of locks/, taken with filelock.

filelock opens the lock file without following a link planted at its name and leaves it in
place on release (deleting it would let two writers hold "the" lock on different files)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from repowire.errors import LockTimeout, RepowireError

if TYPE_CHECKING:
    from filelock import BaseFileLock as FileLock

__all__ = ["file_lock", "hold"]

# How often a waiting writer tries again. A transition holds a lock for about a millisecond,
# so a waiter that polls at filelock's default (50 ms) would lose most of a burst's time.
POLL_SECONDS = 0.002


def file_lock(path: Path) -> FileLock:
    """A lock object for path, kept by the caller and reused for every hold."""
    from filelock import FileLock  # imported here: commands that only read start faster

    return FileLock(path, mode=0o644, poll_interval=POLL_SECONDS)


@contextlib.contextmanager
def hold(lock: FileLock, timeout: float, name: str, path: Path) -> Iterator[None]:
    """Hold lock, waiting up to `timeout` seconds: LockTimeout when another writer keeps it,
    RepowireError when the file cannot be locked at all."""
    from filelock import Timeout

    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise LockTimeout(f"{name} is locked by another writer; try again") from None
    except OSError as exc:  # e.g. a planted link, or a folder that cannot be written
        raise RepowireError(f"cannot lock {path}: {exc.strerror or exc}; remove it") from None
    try:
        yield
    finally:
        lock.release()
