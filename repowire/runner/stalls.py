"""Stalled runs: an attempt whose log has not grown for its `stall_timeout` is failed, so a run
waiting on a question nobody will answer does not sit in `running` forever."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from repowire.times import format_duration

__all__ = ["Progress"]


class Progress:
    """When each watched attempt's log last grew (as seen by this runner)."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[int, datetime]] = {}

    def quiet_for(self, job_id: str, log: Path, now: datetime) -> float:
        """Seconds since the log last grew; 0 the first time it is looked at."""
        try:
            size = os.stat(log).st_size
        except OSError:
            size = -1
        last = self.seen.get(job_id)
        if last is None or last[0] != size:
            self.seen[job_id] = (size, now)
            return 0.0
        return (now - last[1]).total_seconds()

    def stalled(self, job_id: str, log: Path, limit: float | None, now: datetime) -> str | None:
        """ "stalled: no output for <limit>" when the log has not grown for `limit` seconds."""
        if not limit or self.quiet_for(job_id, log, now) < limit:
            return None
        return f"stalled: no output for {format_duration(limit)}"

    def forget(self, job_id: str) -> None:
        self.seen.pop(job_id, None)
