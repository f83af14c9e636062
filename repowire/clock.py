"""The one place time comes from, so tests and the runner can inject it."""

from __future__ import annotations

import time
from datetime import datetime, timezone

__all__ = ["now", "monotonic"]


def now() -> datetime:
    """The current time, timezone-aware in UTC, to the microsecond."""
    return datetime.now(timezone.utc)


def monotonic() -> float:
    """Seconds on a clock that never goes back, for deadlines and timeouts."""
    return time.monotonic()
