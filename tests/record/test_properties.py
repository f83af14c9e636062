"""Property-based tests (hypothesis): parsing never crashes, transitions keep their invariants."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repowire.errors import TransitionRefused, ValidationError
from repowire.record.job import Job, job_to_dict
from repowire.record.parsing import DEFINITION_KEYS, parse_job
from repowire.record.states import TERMINAL, TRANSITIONS, State, check_transition
from repowire.templates.cron import next_fires, validate_cron
from repowire.times import format_duration, parse_duration

pytestmark = pytest.mark.slow  # a long reliability suite: ./dev test -m 'not slow' leaves it out

KEYS = [*DEFINITION_KEYS, "state", "attempt", "notes", "executor", "exit_code", "bogus", "id"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.datetimes(timezones=st.just(timezone.utc)),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=8))
def test_any_mapping_parses_or_fails_cleanly(data):
    try:
        job = parse_job("j", data)
    except ValidationError as exc:
        assert str(exc).startswith("j.yaml")
        return
    assert isinstance(job, Job) and job.state in State
    again = parse_job("j", job_to_dict(job, times_as_text=False))  # the written form reads back
    assert job_to_dict(again) == job_to_dict(job)


@given(st.one_of(st.text(max_size=12), st.integers(), st.floats(), st.none(), st.booleans()))
def test_durations_parse_or_fail_cleanly(value):
    try:
        seconds = parse_duration(value)
    except ValidationError:
        return
    assert seconds >= 0
    assert abs(parse_duration(format_duration(seconds)) - round(seconds)) <= 1 or seconds < 60


@given(st.integers(0, 10**7))
def test_whole_seconds_round_trip(seconds):
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.text(max_size=30))
def test_cron_validation_never_crashes(expr):
    try:
        validate_cron(expr)
    except ValidationError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["* * * * *", "0 9 * * 1-5", "@daily", "*/7 * * * * */13", "30 2 * * *"]),
    st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]),
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
)
def test_next_fires_strictly_increase_after_the_start(expr, zone_name, start):
    from repowire.templates.cron import zone

    start = start.replace(tzinfo=timezone.utc)
    fires = next_fires(expr, zone(zone_name), start, 6)
    assert fires[0] > start
    assert all(a < b for a, b in zip(fires, fires[1:], strict=False))


def test_terminal_states_leave_only_through_retry():
    for old in TERMINAL:
        for new in State:
            if new == old:
                continue
            for actor in ("any", "runner"):
                try:
                    check_transition("j", old, new, actor)
                except TransitionRefused:
                    continue
                raise AssertionError(f"{old} -> {new} allowed for {actor}")


@given(st.lists(st.sampled_from(list(State)), max_size=12))
def test_every_path_from_queued_can_end_terminal(steps):
    """Walking any allowed moves from queued, a terminal state is always reachable."""
    current = State.QUEUED
    for new in steps:
        if (current, new) in TRANSITIONS and TRANSITIONS[(current, new)] == "any":
            current = new
    reachable = {current}
    frontier = [current]
    while frontier:
        here = frontier.pop()
        for (old, new), _who in TRANSITIONS.items():
            if old == here and new not in reachable:
                reachable.add(new)
                frontier.append(new)
    assert reachable & TERMINAL or current in TERMINAL
