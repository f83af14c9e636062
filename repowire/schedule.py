"""Cron expressions and time zones: validation and next fire times, over croniter. Pure."""

from __future__ import annotations

import contextlib
import os
from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

from .errors import ValidationError

__all__ = ["ALIASES", "validate_cron", "zone", "next_fires"]

ALIASES = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight")
MAX_YEARS_BETWEEN_MATCHES = 5


def validate_cron(expr: str) -> str:
    """The expression if croniter reads it (5 fields, 6 with seconds last, or an alias)."""
    text = expr.strip()
    fields = text.split()
    ok = text.lower() in ALIASES if text.startswith("@") else len(fields) in (5, 6)
    if not ok or not croniter.is_valid(text):
        raise ValidationError(
            f"{expr!r} is not a valid cron expression: use 5 fields (minute hour day month "
            "weekday), 6 with seconds last, or @hourly, @daily, @weekly, @monthly, @yearly"
        )
    return text


def zone(name: str | None) -> tzinfo:
    """The IANA zone named, or the host's local zone (TZ, else /etc/localtime, else UTC)."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(
                f"{name!r} is not a known IANA time zone (such as Europe/Berlin or UTC)"
            ) from None
    env = os.environ.get("TZ", "").lstrip(":")
    if env:
        try:
            return ZoneInfo(env)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    target = os.path.realpath("/etc/localtime")
    if "zoneinfo/" in target:  # a link into the zone database names the zone
        with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
            return ZoneInfo(target.split("zoneinfo/", 1)[1])
    try:
        with open("/etc/localtime", "rb") as handle:
            return ZoneInfo.from_file(handle, key="localtime")
    except (OSError, ValueError):
        return timezone.utc


def next_fires(expr: str, tz: tzinfo, after: datetime, count: int = 5) -> list[datetime]:
    """The next `count` slots strictly after `after`, as aware datetimes in UTC."""
    try:
        it = croniter(
            validate_cron(expr),
            after.astimezone(tz),
            max_years_between_matches=MAX_YEARS_BETWEEN_MATCHES,
        )
        return [it.get_next(datetime).astimezone(timezone.utc) for _ in range(count)]
    except CroniterBadDateError:
        raise ValidationError(
            f"cron expression {expr!r} matches no date within {MAX_YEARS_BETWEEN_MATCHES} years"
        ) from None
    except CroniterError as exc:
        raise ValidationError(f"cron expression {expr!r}: {exc}") from None
