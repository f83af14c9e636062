"""Durations and times as job files write them: parsing, checking and formatting, and due times."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from repowire import clock
from repowire.errors import ValidationError, shown

__all__ = [
    "MAX_DURATION",
    "parse_duration",
    "format_duration",
    "parse_time",
    "parse_due",
    "format_time",
]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION = 10 * 365 * 86400.0
_EXPECTED_DURATION = "a duration such as 30, 30s, 10m, 2h or 1d"


def parse_duration(value: object) -> float:
    """Seconds from 30, 2.5, '30s', '10m', '2h', '1d', '1h30m'; positive or zero."""
    if isinstance(value, bool):
        raise ValidationError(f"expected {_EXPECTED_DURATION}, got {shown(value)}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        seconds = _parse_duration_text(value.strip())
    else:
        raise ValidationError(f"expected {_EXPECTED_DURATION}, got {shown(value)}")
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise ValidationError(f"expected {_EXPECTED_DURATION}, got {shown(value)}")
    if seconds > MAX_DURATION:
        raise ValidationError(f"{shown(value)} is longer than ten years")
    return seconds


def _parse_duration_text(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        raise ValidationError(f"expected {_EXPECTED_DURATION}, got {shown(text)}")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """The shortest readable form: 45s, 10m, 1h30m, 2d."""
    if seconds < 60 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    total = int(round(seconds))
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if total >= size:
            out += f"{total // size}{unit}"
            total %= size
    return out + (f"{total}s" if total or not out else "")


EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9000, 1, 1, tzinfo=timezone.utc)


def parse_time(value: object) -> datetime:
    """An aware datetime from an ISO-8601 string or a YAML timestamp; naive means local time.

    Times before 1970 or after the year 9000 are refused: converting one with an offset could
    leave the calendar, and no job is due then."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValidationError(
                f"expected an ISO-8601 time such as 2026-11-26T09:00:00Z, got {shown(value)}"
            ) from None
    else:
        raise ValidationError(f"expected an ISO-8601 time, got {shown(value)}")
    utc: datetime | None
    try:
        local = moment.astimezone() if moment.tzinfo is None else moment  # naive: local, as cron
        utc = local.astimezone(timezone.utc)
    except (OverflowError, ValueError, OSError):
        utc = None  # outside the calendar once converted
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValidationError(f"{shown(value)} is not a time between 1970 and the year 9000")
    return utc


def parse_due(value: str, now: datetime | None = None) -> datetime:
    """A due time: an ISO-8601 time, or a delay from now such as 10m, 2h, 'in 30s'."""
    text = value.strip()
    delay = text[3:].strip() if text.lower().startswith("in ") else text
    if _DURATION_PART.fullmatch(delay.replace(" ", "")) or _DURATION_PART.match(delay):
        try:
            seconds = _parse_duration_text(delay)
        except ValidationError:
            pass
        else:
            parse_duration(seconds)  # at most ten years from now
            return _whole_second_up((now or clock.now()) + timedelta(seconds=seconds))
    try:
        return parse_time(text)
    except ValidationError:
        raise ValidationError(
            "expected a time such as 2026-11-26T09:00:00Z or a delay such as 10m, "
            f"got {shown(value)}"
        ) from None


def _whole_second_up(moment: datetime) -> datetime:
    """The moment, rounded up to a whole second: records keep whole seconds, and a delay
    written down to the second below would let the job start early."""
    if not moment.microsecond:
        return moment
    return moment.replace(microsecond=0) + timedelta(seconds=1)


def format_time(moment: datetime) -> str:
    """UTC, ISO-8601 with a Z, to the second: 2026-11-26T02:15:30Z."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
