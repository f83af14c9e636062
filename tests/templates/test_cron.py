"""Scheduling decisions are pure functions of injected times: no sleeping."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from conftest import assert_clean_error, rw

from repowire.errors import ValidationError
from repowire.templates.cron import next_fires, plan_catchup, slots_between, validate_cron, zone

UTC = timezone.utc


def t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def hhmm(slots):
    return [s.strftime("%m-%d %H:%M") for s in slots]


@pytest.mark.parametrize(
    "expr",
    [
        "* * * * *",
        "*/5 * * * * *",
        "0 9 * * 1-5",
        "@hourly",
        "@daily",
        "@weekly",
        "@monthly",
        "@yearly",
    ],
)
def test_valid_expressions(expr):
    assert validate_cron(expr) == expr


@pytest.mark.parametrize(
    "expr", ["", "bad", "61 * * * *", "* * *", "@reboot", "@often", "* * * * * * * *"]
)
def test_invalid_expressions(expr):
    with pytest.raises(ValidationError, match="not a valid cron expression"):
        validate_cron(expr)


def test_seconds_are_the_sixth_field():
    after = t("2026-11-26T10:00:00Z")
    assert next_fires("* * * * * */20", UTC, after, 3) == [
        t("2026-11-26T10:00:20Z"),
        t("2026-11-26T10:00:40Z"),
        t("2026-11-26T10:01:00Z"),
    ]


def test_never_matching_expression():
    with pytest.raises(ValidationError, match="matches no date"):
        next_fires("0 0 30 2 *", UTC, t("2026-01-01T00:00:00Z"))


def test_timezone_is_applied_and_times_are_utc():
    berlin = zone("Europe/Berlin")
    assert next_fires("0 9 * * *", berlin, t("2026-11-26T00:00:00Z"), 1) == [
        t("2026-11-26T08:00:00Z")
    ]
    assert next_fires("0 9 * * *", berlin, t("2026-07-01T00:00:00Z"), 1) == [
        t("2026-07-01T07:00:00Z")
    ]
    with pytest.raises(ValidationError, match="time zone"):
        zone("Mars/Olympus")


def test_spring_forward_daily_slot_in_the_gap_fires_once_after_it():
    # Berlin skips 02:00-03:00 local on 2026-03-29 (01:00 UTC).
    fires = next_fires("30 2 * * *", zone("Europe/Berlin"), t("2026-03-27T12:00:00Z"), 4)
    assert hhmm(fires) == ["03-28 01:30", "03-29 01:00", "03-30 00:30", "03-31 00:30"]


def test_fall_back_daily_slot_in_the_repeated_hour_fires_once():
    # Berlin shows 02:00-03:00 local twice on 2026-10-25.
    fires = next_fires("30 2 * * *", zone("Europe/Berlin"), t("2026-10-23T12:00:00Z"), 4)
    assert hhmm(fires) == ["10-24 00:30", "10-25 00:30", "10-26 01:30", "10-27 01:30"]


def test_fall_back_hourly_fires_every_real_hour():
    fires = next_fires("0 * * * *", zone("Europe/Berlin"), t("2026-10-24T23:30:00Z"), 4)
    assert hhmm(fires) == ["10-25 00:00", "10-25 01:00", "10-25 02:00", "10-25 03:00"]


def test_dst_days_in_new_york_fire_nothing_twice_and_lose_nothing():
    ny = zone("America/New_York")
    for day in ("2026-03-07T12:00:00Z", "2026-10-31T12:00:00Z"):
        fires = next_fires("15 1 * * *", ny, t(day), 3)
        assert len(set(fires)) == 3
        assert all(
            timedelta(hours=22) <= b - a <= timedelta(hours=26)
            for a, b in zip(fires, fires[1:], strict=False)
        )


def test_slots_between_keeps_the_newest_and_says_when_cut():
    slots, cut = slots_between(
        "* * * * *", UTC, t("2026-11-26T10:00:00Z"), t("2026-11-26T10:10:00Z"), 3
    )
    assert hhmm(slots) == ["11-26 10:08", "11-26 10:09", "11-26 10:10"] and cut
    slots, cut = slots_between(
        "* * * * *", UTC, t("2026-11-26T10:00:00Z"), t("2026-11-26T10:02:30Z"), 10
    )
    assert hhmm(slots) == ["11-26 10:01", "11-26 10:02"] and not cut


HOURLY = [t(f"2026-11-26T{h:02}:00:00Z") for h in range(0, 10)]
NOW = t("2026-11-26T09:00:05Z")


def test_catchup_latest_fires_the_newest_and_records_the_rest():
    plan = plan_catchup(HOURLY, NOW, "latest", None)
    assert plan.fire == [HOURLY[-1]]
    assert [s for s, _ in plan.skip] == HOURLY[:-1]
    assert all("catchup: latest" in reason for _, reason in plan.skip)


def test_catchup_all_is_capped():
    plan = plan_catchup(HOURLY, NOW, "all", None, cap=3)
    assert plan.fire == HOURLY[-3:]
    assert len(plan.skip) == 7 and "cap of 3" in plan.skip[0][1]


def test_catchup_none_fires_only_an_on_time_slot():
    plan = plan_catchup(HOURLY, NOW, "none", None)
    assert plan.fire == [HOURLY[-1]] and len(plan.skip) == 9
    late = plan_catchup(HOURLY, NOW + timedelta(minutes=30), "none", None)
    assert late.fire == [] and len(late.skip) == 10


def test_starting_deadline_skips_old_slots_whatever_the_catchup():
    plan = plan_catchup(HOURLY, NOW, "all", 2 * 3600 + 10)
    assert plan.fire == HOURLY[-3:]
    assert sum("starting deadline" in r for _, r in plan.skip) == 7
    none_left = plan_catchup(HOURLY[:2], NOW, "latest", 60)
    assert none_left.fire == [] and len(none_left.skip) == 2


def test_every_slot_is_either_fired_or_skipped():
    for catchup in ("latest", "none", "all"):
        plan = plan_catchup(HOURLY, NOW, catchup, 5 * 3600)
        assert sorted(plan.fire + [s for s, _ in plan.skip]) == HOURLY


def test_a_never_matching_cron_is_refused_at_create(root):
    assert_clean_error(
        rw("jobs", "create", "feb", "--cron", "0 0 30 2 *", "--command", "true", ok=False),
        says="matches no date",
    )
    assert not (root / ".repowire/agents/feb").exists()
