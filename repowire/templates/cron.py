"""Cron expressions and time zones: validation and next fire times, over croniter. Pure."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

from repowire.errors import ValidationError, shown

__all__ = [
    "ALIASES",
    "CATCHUP_CAP",
    "Plan",
    "validate_cron",
    "zone",
    "iter_slots",
    "next_fires",
    "slots_between",
    "plan_catchup",
    "describe",
]

ALIASES = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight")
MAX_YEARS_BETWEEN_MATCHES = 5
CATCHUP_CAP = 10  # catchup: all runs at most this many missed slots, so an outage cannot burst
ON_TIME_SECONDS = 60.0  # a slot this recent is on time, not missed (catchup: none)


def validate_cron(expr: str) -> str:
    """The expression if croniter reads it (5 fields, 6 with seconds last, or an alias)."""
    text = expr.strip()
    fields = text.split()
    ok = text.lower() in ALIASES if text.startswith("@") else len(fields) in (5, 6)
    if not ok or not croniter.is_valid(text):
        raise ValidationError(
            f"{shown(expr)} is not a valid cron expression: use 5 fields (minute hour day month "
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
                f"{shown(name)} is not a known IANA time zone (such as Europe/Berlin or UTC)"
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


def _hour_is_wildcard(expr: str) -> bool:
    fields = expr.split()
    if expr.startswith("@"):
        return expr.lower() == "@hourly"
    return len(fields) >= 2 and fields[1] == "*"


def iter_slots(expr: str, tz: tzinfo, after: datetime) -> Iterator[datetime]:
    """Slots strictly after `after`, in UTC, read in zone tz, with defined DST behaviour.

    Spring forward: a wall time inside the gap fires once, at the first moment after it.
    Fall back: a wall time that happens twice fires once (at its first occurrence), unless the
    hour field is `*`, in which case every real hour fires, as in cron.
    """
    try:
        it = croniter(
            validate_cron(expr),
            after.astimezone(tz),
            max_years_between_matches=MAX_YEARS_BETWEEN_MATCHES,
        )
        every_hour = _hour_is_wildcard(expr.strip())
        previous: datetime | None = None
        while True:
            slot = it.get_next(datetime).astimezone(timezone.utc)
            if previous is not None and slot <= previous:
                continue  # croniter may repeat a slot around a DST change
            if not every_hour and _second_occurrence(slot, tz):
                continue
            previous = slot
            yield slot
    except CroniterBadDateError:
        raise ValidationError(
            f"cron expression {shown(expr)} matches no date "
            f"within {MAX_YEARS_BETWEEN_MATCHES} years"
        ) from None
    except CroniterError as exc:
        raise ValidationError(f"cron expression {shown(expr)}: {exc}") from None


def _second_occurrence(slot: datetime, tz: tzinfo) -> bool:
    """Whether slot is the repeat of a wall time that the fall-back hour shows twice."""
    local = slot.astimezone(tz)
    first = local.replace(fold=0).astimezone(timezone.utc)
    return first != slot


def check_schedule(expr: str, timezone: str | None, now: datetime) -> None:
    """An expression that parses and matches some date, read in a known zone."""
    next_fires(expr, zone(timezone), now, 1)  # also refuses 0 0 30 2 * (February 30th)


def check_jitter(expr: str, tz: tzinfo, jitter: float, now: datetime) -> None:
    """A jitter shorter than the shortest interval between the expression's next fires."""
    fires = next_fires(expr, tz, now, 6)
    gaps = [(b - a).total_seconds() for a, b in zip(fires, fires[1:], strict=False)]
    if gaps and jitter >= min(gaps):
        raise ValidationError(
            f"jitter: {jitter:g}s is not shorter than the interval between fires "
            f"({min(gaps):g}s); fires would run into each other"
        )


def next_fires(expr: str, tz: tzinfo, after: datetime, count: int = 5) -> list[datetime]:
    """The next `count` slots strictly after `after`, as aware datetimes in UTC."""
    return list(itertools.islice(iter_slots(expr, tz, after), count))


def slots_between(
    expr: str, tz: tzinfo, after: datetime, until: datetime, limit: int
) -> tuple[list[datetime], bool]:
    """Slots in (after, until], at most `limit` of the newest; True when older ones were cut.

    The newest slots are found by walking back from `until` (at most limit + 1 steps), so a
    long outage of a per-second template costs no more than a short one."""
    start, cut = _window_start(expr, tz, after, until, limit)
    window: deque[datetime] = deque(maxlen=limit)
    for slot in iter_slots(expr, tz, start):
        if slot > until:
            break
        window.append(slot)
    return list(window), cut


def _window_start(
    expr: str, tz: tzinfo, after: datetime, until: datetime, limit: int
) -> tuple[datetime, bool]:
    """Where the forward walk over the newest `limit` slots starts, and whether older slots
    exist in (after, start]."""
    try:
        back = croniter(validate_cron(expr), (until + timedelta(seconds=1)).astimezone(tz))
        for _ in range(limit + 1):
            slot = back.get_prev(datetime).astimezone(timezone.utc)
            if slot <= after:
                return after, False
        return slot, True
    except CroniterError:  # the forward walk gives the words for a bad expression
        return after, False


@dataclass
class Plan:
    """What to do with the slots that came due: fire some, skip the rest with a reason."""

    fire: list[datetime] = field(default_factory=list)
    skip: list[tuple[datetime, str]] = field(default_factory=list)


def plan_catchup(
    slots: list[datetime],
    now: datetime,
    catchup: str,
    starting_deadline: float | None,
    cap: int = CATCHUP_CAP,
) -> Plan:
    """Decide which due slots run: `latest` the newest, `none` only one that is on time,
    `all` every one up to the cap (the newest kept); older than starting_deadline never."""
    plan = Plan()
    fresh = []
    for slot in slots:
        late = (now - slot).total_seconds()
        if starting_deadline is not None and late > starting_deadline:
            plan.skip.append((slot, f"missed its starting deadline of {_secs(starting_deadline)}"))
        else:
            fresh.append(slot)
    if catchup == "all":
        keep = fresh[-cap:]
        plan.skip += [(s, f"beyond the catch-up cap of {cap} (catchup: all)") for s in fresh[:-cap]]
    elif catchup == "none":
        newest = fresh[-1:]
        keep = [s for s in newest if (now - s).total_seconds() <= ON_TIME_SECONDS]
        missed = [s for s in fresh if s not in keep]
        plan.skip += [(s, "missed while no runner was up (catchup: none)") for s in missed]
    else:
        keep = fresh[-1:]
        plan.skip += [
            (s, f"superseded by {keep[0]:%Y-%m-%dT%H:%M:%SZ} (catchup: latest)") for s in fresh[:-1]
        ]
    plan.fire = keep
    plan.skip.sort()
    return plan


_ALIAS_FIELDS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


def describe(expr: str) -> str:
    """The expression in words ("At 09:00, Monday through Friday"), via cron-descriptor."""
    from cron_descriptor import Options, get_description

    text = _ALIAS_FIELDS.get(expr.strip().lower(), expr.strip())
    fields = text.split()
    if len(fields) == 6:  # croniter puts seconds last; cron-descriptor wants them first
        text = " ".join([fields[5], *fields[:5]])
    options = Options()
    options.use_24hour_time_format = True
    try:
        return str(get_description(text, options))
    except Exception:  # noqa: BLE001 - a description is a nicety; the expression stands alone
        return expr


def _secs(seconds: float) -> str:
    from repowire.times import format_duration

    return format_duration(seconds)
