"""Durations and times as job files write them, and due times (never early)."""

from datetime import datetime, timedelta, timezone

import pytest

from repowire.errors import ValidationError
from repowire.times import format_duration, format_time, parse_due, parse_duration, parse_time


@pytest.mark.parametrize(
    "text, seconds",
    [
        (30, 30),
        (2.5, 2.5),
        ("30", 30),
        ("30s", 30),
        ("10m", 600),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("1w", 604800),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "abc", "10x", "-5", "5 minutes", True, None, [], "m10"])
def test_bad_durations(bad):
    with pytest.raises(ValidationError, match="duration"):
        parse_duration(bad)


def test_format_duration():
    assert [format_duration(s) for s in (0, 45, 600, 5400, 90061)] == [
        "0s",
        "45s",
        "10m",
        "1h30m",
        "1d1h1m1s",
    ]


def test_times():
    utc = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
    assert parse_time("2026-11-26T09:00:00Z") == utc
    assert parse_time("2026-11-26T10:00:00+01:00") == utc
    assert parse_time(utc) == utc
    assert parse_time("2026-11-26 09:00").tzinfo is not None  # naive is local time
    with pytest.raises(ValidationError, match="ISO-8601"):
        parse_time("tomorrow")


def test_due_relative_and_absolute():
    now = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
    assert parse_due("10m", now) == now + timedelta(minutes=10)
    assert parse_due("in 2h", now) == now + timedelta(hours=2)
    assert parse_due("2026-11-27T00:00:00Z", now) == datetime(2026, 11, 27, tzinfo=timezone.utc)
    with pytest.raises(ValidationError, match="delay"):
        parse_due("soon", now)


def test_a_relative_due_time_is_rounded_up_to_the_second_never_down():
    now = datetime(2026, 11, 26, 9, 0, 0, 999_000, tzinfo=timezone.utc)
    due = parse_due("3s", now)
    assert due == datetime(2026, 11, 26, 9, 0, 4, tzinfo=timezone.utc)
    assert format_time(due) == "2026-11-26T09:00:04Z"  # as the record keeps it: not early
    whole = datetime(2026, 11, 26, 9, 0, 0, tzinfo=timezone.utc)
    assert parse_due("3s", whole) == whole + timedelta(seconds=3)  # already whole: unchanged
