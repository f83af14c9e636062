"""Parsing and formatting of the small values in job files: ids, durations, times."""

from __future__ import annotations

import re
import reprlib
from datetime import datetime, timedelta, timezone

from . import clock
from .errors import InvalidId, ValidationError

__all__ = [
    "shown",
    "ID_PATTERN",
    "validate_id",
    "new_job_id",
    "slugify",
    "TEMPLATE_NAME_MAX",
    "validate_template_name",
    "parse_duration",
    "format_duration",
    "parse_time",
    "parse_due",
    "format_time",
    "format_money",
]

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION = 10 * 365 * 86400.0
_EXPECTED_DURATION = "a duration such as 30, 30s, 10m, 2h or 1d"


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 2, 60, 60
_SHORT.maxlist = _SHORT.maxdict = _SHORT.maxtuple = _SHORT.maxset = 4


def shown(value: object) -> str:
    """A short repr of any value for an error message, however large or deeply nested it is
    (a YAML alias bomb expands to gigabytes when printed whole)."""
    return _SHORT.repr(value)


def validate_id(value: object, what: str = "job id") -> str:
    """Return value if it is a safe id (a file stem: letters, digits, . _ -), else InvalidId."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value) or value in (".", ".."):
        raise InvalidId(
            f"{shown(value)} is not a valid {what}: use 1 to 128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def new_job_id(at: datetime | None = None) -> str:
    """A fresh id like job-20261126-021530-a1b2, sortable by its UTC creation time."""
    at = (at or clock.now()).astimezone(timezone.utc)
    import secrets  # imported here: commands that make no id start faster

    return f"job-{at:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def slugify(text: str, limit: int = 128) -> str:
    """A valid id made from a display name ("Daily brief" -> "daily-brief", "Ünïcode" ->
    "unicode"), at most `limit` characters."""
    import unicodedata  # imported here: only a name made into an id needs it

    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9._-]+", "-", ascii_text.strip().lower()).strip("-._")
    return validate_id(slug[:limit].rstrip("-._") or "job", "name")


TEMPLATE_NAME_MAX = 100  # so "<name>-<YYYYMMDDTHHMMSSZ>-<n>" and "state.<name>" stay valid ids


def validate_template_name(value: object, what: str = "template name") -> str:
    """A template (worker folder) name: a valid id of at most TEMPLATE_NAME_MAX characters."""
    name = validate_id(value, what)
    if len(name) > TEMPLATE_NAME_MAX:
        raise InvalidId(
            f"{what} {shown(name[:20] + '...')} has {len(name)} characters; at most "
            f"{TEMPLATE_NAME_MAX} are allowed, so the ids of its runs stay valid"
        )
    return name


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


def format_money(amount: float) -> str:
    """$1.25, $0.0042: cents above a dollar, four places below it."""
    return f"${amount:,.2f}" if amount >= 1 or amount == 0 else f"${amount:.4f}"
