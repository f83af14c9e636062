"""Which runners serve a root: each serving runner announces itself in a runtime file.

`.repowire/locks/runners/<host>-<pid>.yaml` holds pid, host, start time, version and a heartbeat
refreshed while it runs; it lives among the runtime files git ignores. A runner on this host is
alive while its pid is the same process (pid and start time); one on another host while its
heartbeat is fresh.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from repowire import clock
from repowire.errors import ValidationError
from repowire.files import atomic_write, dump_yaml, load_yaml
from repowire.times import format_time, parse_time

__all__ = ["Presence", "RunnerInfo", "serving", "HEARTBEAT_SECONDS"]

HEARTBEAT_SECONDS = 30.0  # an idle runner wakes at least this often (its periodic rescan)
STALE_AFTER = timedelta(seconds=3 * HEARTBEAT_SECONDS)


@dataclass(frozen=True)
class RunnerInfo:
    """One runner that announced itself, and whether it still serves."""

    pid: int
    host: str
    started_at: datetime
    heartbeat: datetime
    version: str
    alive: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "host": self.host,
            "started_at": format_time(self.started_at),
            "heartbeat": format_time(self.heartbeat),
            "version": self.version,
        }


def _folder(root: Path) -> Path:
    return root / ".repowire" / "locks" / "runners"


class Presence:
    """A runner's own presence file: written at start, refreshed, removed at a clean stop."""

    def __init__(self, root: Path, pid: int, host: str, start_time: float | None) -> None:
        self.path = _folder(root) / f"{host}-{pid}.yaml"
        self.record = {
            "pid": pid,
            "host": host,
            "start_time": start_time,
            "started_at": clock.now(),
            "version": _version(),
        }
        self.last_beat: datetime | None = None

    def beat(self, now: datetime) -> None:
        """Write the file (atomically) when the last heartbeat is older than the interval."""
        if self.last_beat is not None and now - self.last_beat < timedelta(
            seconds=HEARTBEAT_SECONDS
        ):
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, dump_yaml({**self.record, "heartbeat": now}))
        self.last_beat = now

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()

    def remove_dead(self, root: Path, host: str) -> list[str]:
        """Delete the files of this host's runners that died without removing their own."""
        removed = []
        for info in serving(root, host):
            if info.host == host and not info.alive:
                with contextlib.suppress(OSError):
                    (_folder(root) / f"{info.host}-{info.pid}.yaml").unlink()
                    removed.append(f"{info.host}-{info.pid}")
        return removed


def serving(root: Path, host: str, now: datetime | None = None) -> list[RunnerInfo]:
    """Every runner that announced itself for this root, with whether it is alive."""
    now = now or clock.now()
    try:
        names = sorted(os.listdir(_folder(root)))
    except OSError:
        return []
    found = []
    for name in names:
        if name.endswith(".yaml") and not name.startswith("."):
            info = _read(_folder(root) / name, host, now)
            if info is not None:
                found.append(info)
    return found


def _read(path: Path, host: str, now: datetime) -> RunnerInfo | None:
    try:
        data = load_yaml(path)
        pid, where = int(data["pid"]), str(data["host"])
        started, beat = parse_time(data["started_at"]), parse_time(data["heartbeat"])
    except (OSError, ValidationError, KeyError, TypeError, ValueError):
        return None  # half-written by hand, or not a presence file: not a runner
    if where == host:
        from repowire.executors.local_processes import same_process

        start_time = data.get("start_time")
        alive = isinstance(start_time, (int, float)) and same_process(pid, float(start_time))
    else:
        alive = now - beat < STALE_AFTER
    return RunnerInfo(pid, where, started, beat, str(data.get("version", "")), alive)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("repowire")
    except PackageNotFoundError:
        return "unknown"
