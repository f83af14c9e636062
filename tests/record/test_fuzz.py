"""Fuzz: hostile YAML (aliases, odd types, control characters, extreme times) in job files,
templates and state.yaml, fed to validate, the listing and a runner step, within bounded time
and memory; a valid job beside them is still served."""

from __future__ import annotations

import io
import shutil
import time
from datetime import datetime, timezone

import psutil
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runner_helpers import state, write_job

from repowire.api.project import Project
from repowire.api.validate import validate_paths
from repowire.record.parsing import DEFINITION_KEYS, TEMPLATE_KEYS
from repowire.runner.loop import Runner

pytestmark = pytest.mark.slow  # a long reliability suite: ./dev test -m 'not slow' leaves it out

KEYS = [*DEFINITION_KEYS, *TEMPLATE_KEYS, "state", "attempt", "notes", "executor", "bogus"]
EXTREME_TIMES = [
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "1969-12-31T23:59:59Z",
    "2026-13-40T25:61:61Z",
    "2026-11-26T09:00:00",
]
texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12
) | st.sampled_from(["\x00", "\x1b[2J", "\u202e", "\x9b31m", "../../etc/passwd", "*", "~"])
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
    st.sampled_from(EXTREME_TIMES),
    st.datetimes(timezones=st.just(timezone.utc)),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(KEYS) | texts, inner, max_size=3),
    ),
    max_leaves=10,
)
BOMB = "".join(
    f"  - &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


def _document(data: dict[str, object], bomb_key: str | None) -> str:
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    if bomb_key is not None:  # a billion laughs under one key
        text += f"{bomb_key}:\n  - &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n{BOMB}"
    return text


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    job=st.dictionaries(st.sampled_from(KEYS), values, max_size=6),
    template=st.dictionaries(st.sampled_from(KEYS), values, max_size=6),
    runtime=st.dictionaries(
        st.sampled_from(["last_slot", "skipped", "skipped_total", "session_id", "next_fire"]),
        values,
        max_size=4,
    ),
    bomb=st.sampled_from([None, "name", "env", "notes", "bogus"]),
)
def test_hostile_files_never_stop_a_root(root, job, template, runtime, bomb):
    jobs = root / ".repowire/jobs"
    agents = root / ".repowire/agents"
    shutil.rmtree(jobs)
    shutil.rmtree(agents)
    jobs.mkdir()
    (agents / "fuzzed").mkdir(parents=True)
    (jobs / "fuzzed.yaml").write_text(_document(job, bomb))
    (agents / "fuzzed" / "job.yaml").write_text(_document({"cron": "* * * * *", **template}, None))
    (agents / "fuzzed" / "state.yaml").write_text(_document(runtime, None))
    # Executors may run only in sandbox/, where the valid job runs: a fuzzed command (which
    # could be any text) fails without starting, outside the allowed paths.
    (root / "sandbox").mkdir(exist_ok=True)
    (root / ".repowire/config.yaml").write_text("allowed_paths: [sandbox]\n")
    write_job(root, "valid", command="true", path="sandbox")
    memory = psutil.Process().memory_info().rss
    started = time.monotonic()

    validate_paths(root, [])
    listing = Project(root).listing()
    assert {j["id"] for j in listing["jobs"]} >= {"fuzzed", "valid"}
    runner = Runner(root, log=io.StringIO())
    runner.step(datetime.now(timezone.utc))
    assert state(root, "valid") in ("running", "succeeded")
    while runner.supervisor.busy:
        runner.step()
        time.sleep(0.01)

    assert time.monotonic() - started < 20
    assert psutil.Process().memory_info().rss - memory < 300 * 1024 * 1024
