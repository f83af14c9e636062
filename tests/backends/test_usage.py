"""Usage, cost and budgets: what each preset's CLI reports is recorded on the job (read from
the output the fake CLIs print as the real ones do), summed by `repowire usage`, shown by
`jobs list` and `jobs show`, and a template's budget pauses it until its next period."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from conftest import FIXTURES, assert_clean_error, rw, wait_for
from runner_helpers import read, run_once, set_config, write_job

from repowire.backends.usage import add_usage, period_bounds, priced, read_usage, spend_of
from repowire.record.job import Job
from repowire.record.states import State
from repowire.record.template import Template
from repowire.templates.budgets import budget_paused, budget_step

UTC = timezone.utc


@pytest.fixture
def agents(monkeypatch):
    monkeypatch.setenv("PATH", f"{FIXTURES / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("FAKE_AGENT_MODE", raising=False)


EXPECTED = {
    "claude": {
        "input_tokens": 1110,
        "cached_input_tokens": 1000,
        "output_tokens": 50,
        "cost_usd": 0.0123,
        "model": "claude-sonnet-4-5",
    },
    "codex": {"input_tokens": 1200, "cached_input_tokens": 200, "output_tokens": 300},
    "gemini": {
        "input_tokens": 2000,
        "cached_input_tokens": 500,
        "output_tokens": 150,
        "model": "gemini-2.5-pro",
    },
    "opencode": {
        "input_tokens": 1000,
        "cached_input_tokens": 700,
        "output_tokens": 50,
        "cost_usd": 0.0042,
    },
}


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_each_preset_records_what_its_cli_reported(root, agents, preset):
    write_job(root, "ask", backend=preset, prompt="Tidy up.")
    run_once(root)
    record = read(root, "ask")
    assert record["state"] == "succeeded", record
    assert record["usage"] == EXPECTED[preset]


@pytest.mark.parametrize("mode", ["nousage", "badusage"])
@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_no_usage_or_a_malformed_one_records_nothing_and_never_fails(
    root, agents, monkeypatch, preset, mode
):
    monkeypatch.setenv("FAKE_AGENT_MODE", mode)
    write_job(root, "ask", backend=preset, prompt="Tidy up.")
    run_once(root)
    record = read(root, "ask")
    assert record["state"] == "succeeded", record
    assert "usage" not in record


def test_prices_make_an_estimate_where_the_cli_gives_tokens_alone(root, agents):
    set_config(
        root,
        "prices:\n  codex: {input: 1.25, cached_input: 0.125, output: 10}\n"
        "  gemini-2.5-pro: {input: 2, output: 12}\n",
    )
    write_job(root, "cx", backend="codex", prompt="a")
    write_job(root, "gm", backend="gemini", prompt="b")
    write_job(root, "cl", backend="claude", prompt="c")
    run_once(root)
    # codex: 1000 fresh input at 1.25, 200 cached at 0.125, 300 output at 10, per million
    assert read(root, "cx")["usage"]["cost_usd"] == pytest.approx(0.004275)
    assert read(root, "cx")["usage"]["cost_estimated"] is True
    # gemini: cached input at the input price when no cached price is given
    assert read(root, "gm")["usage"]["cost_usd"] == pytest.approx((2000 * 2 + 150 * 12) / 1e6)
    assert "cost_estimated" not in read(root, "cl")["usage"]  # claude gives its own cost


def _script(root: Path, name: str, body: str) -> Path:
    path = root / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_a_backend_of_your_own_names_its_usage_keys_and_retries_add_up(root):
    script = _script(
        root,
        "mycli",
        'echo \'{"model": "local-7b", "usage": {"prompt_tokens": 100, "completion_tokens": 20,'
        ' "cost": 0.5}, "text": "hello"}\'\n'
        '[ "$REPOWIRE_ATTEMPT" = 2 ]\n',
    )
    set_config(
        root,
        f"backends:\n  mycli:\n    command: [{script}, '{{prompt}}']\n"
        "    final_message_key: text\n"
        "    usage_keys: {input_tokens: usage.prompt_tokens, output_tokens: "
        "usage.completion_tokens, cost_usd: usage.cost, model: model}\n",
    )
    write_job(root, "own", backend="mycli", prompt="go", retries=1, retry_delay=0)
    run_once(root)
    record = read(root, "own")
    assert record["state"] == "succeeded" and record["attempt"] == 2
    assert record["usage"] == {
        "input_tokens": 200,
        "output_tokens": 40,
        "cost_usd": 1.0,
        "model": "local-7b",
    }


def test_bad_usage_keys_and_prices_are_config_errors(root):
    for text, says in (
        ("backends:\n  x:\n    command: [x]\n    usage_keys: {tokens: a.b}\n", "usage key"),
        ("backends:\n  x:\n    command: [x]\n    usage_keys: {cost_usd: ''}\n", "dotted key"),
        ("prices:\n  m: {input: -1}\n", "number 0 or more"),
        ("prices:\n  m: {inputs: 1}\n", "input, cached_input, output"),
        ("prices: [1]\n", "mapping"),
    ):
        set_config(root, text)
        result = rw("validate", ok=False)
        assert result.exit_code == 1 and says in result.output, (text, result.output)


# --- the sums ---------------------------------------------------------------------------------


def _finished(root: Path, job_id: str, at: str, usage: dict, **keys: object) -> None:
    write_job(
        root,
        job_id,
        command="true",
        state="succeeded",
        attempt=1,
        created_at=at,
        started_at=at,
        finished_at=at,
        usage=usage,
        **keys,
    )


def _recent(hours: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_usage_sums_by_template_backend_and_day(root):
    _finished(
        root,
        "a",
        _recent(1),
        {"input_tokens": 100, "output_tokens": 10, "cost_usd": 0.5},
        backend="claude",
        template="brief",
        scheduled_for=_recent(1),
    )
    _finished(
        root,
        "b",
        _recent(2),
        {"input_tokens": 50, "output_tokens": 5, "cost_usd": 0.25, "cost_estimated": True},
        backend="codex",
    )
    _finished(
        root,
        "c",
        _recent(24 * 10),
        {"input_tokens": 7, "output_tokens": 1},
        backend="gemini",
        template="brief",
        scheduled_for=_recent(240),
    )
    write_job(root, "no-usage", command="true", state="succeeded", finished_at=_recent(1))
    report = json.loads(rw("usage", "--json").stdout)
    rows = {r["template"]: r for r in report["rows"]}
    assert rows["brief"]["runs"] == 2 and rows["brief"]["input_tokens"] == 107
    assert rows["(one-off jobs)"]["cost_usd"] == 0.25 and rows["(one-off jobs)"]["cost_estimated"]
    assert report["total"] == {
        "runs": 3,
        "input_tokens": 157,
        "output_tokens": 16,
        "cost_usd": 0.75,
        "cost_estimated": True,
    }
    week = json.loads(rw("usage", "--since", "7d", "--by", "backend", "--json").stdout)
    assert [r["backend"] for r in week["rows"]] == ["claude", "codex"]
    days = json.loads(rw("usage", "--by", "day", "--json").stdout)["rows"]
    assert sum(r["runs"] for r in days) == 3 and days[0]["day"] > days[-1]["day"]
    text = rw("usage").stdout
    assert "TEMPLATE" in text and "$0.2500*" in text and "total" in text
    assert rw("usage", "--since", "1m").stdout.startswith("No recorded usage since")


def test_usage_summed_by_the_index_matches_the_records(root, monkeypatch):
    """Settled records are summed by the listing index; a hand edit, a removal and a new
    record are not missed, and local days are cut where the zone's midnight falls."""
    from repowire.api.project import Project
    from repowire.backends.usage import report
    from repowire.templates import cron as schedule

    kathmandu = ZoneInfo("Asia/Kathmandu")  # UTC+5:45: a day starts at 18:15 UTC
    monkeypatch.setattr(schedule, "zone", lambda name: kathmandu)
    times = ["2026-11-20T18:10:00Z", "2026-11-20T18:20:00Z", "2026-11-21T03:00:00Z"]
    for n, at in enumerate([*times, "2026-11-21T18:15:00Z"]):
        usage = {"input_tokens": 10 * (n + 1), "output_tokens": n, "cost_usd": 0.125}
        if n == 2:
            usage["cost_estimated"] = True
        keys = {"template": "t"} if n % 2 else {}
        _finished(root, f"u{n}", at, usage, backend=("claude", "codex")[n % 2], **keys)
    write_job(root, "plain", command="true", state="succeeded", finished_at=times[0])
    project = Project(root)

    def both_ways() -> list[dict]:
        found = [project.usage(by=by) for by in ("template", "backend", "day")]
        records = [row.record for row in project.store.list_rows()]
        assert found == [
            report(records, None, by, kathmandu) for by in ("template", "backend", "day")
        ]
        return found

    def all_indexed() -> bool:
        project.usage()  # indexes what has settled
        found = project.store.spend("", "day")
        return found is not None and not found[1]

    wait_for(all_indexed, what="every record settled in the index")
    by_day = {r["day"]: r["runs"] for r in both_ways()[2]["rows"]}
    assert by_day == {"2026-11-20": 1, "2026-11-21": 2, "2026-11-22": 1}
    path = root / ".repowire/jobs/u3.yaml"
    path.write_text(path.read_text().replace("input_tokens: 40", "input_tokens: 41"))
    (root / ".repowire/jobs/u0.yaml").unlink()
    _finished(root, "u9", times[2], {"input_tokens": 1000})
    totals = both_ways()[0]["total"]
    assert totals["runs"] == 4 and totals["input_tokens"] == 20 + 30 + 41 + 1000


def test_usage_refuses_bad_options(root):
    assert_clean_error(rw("usage", "--by", "week", ok=False), code=2)
    assert_clean_error(rw("usage", "--since", "soon", ok=False), code=2)


def test_list_has_a_cost_column_only_when_a_job_has_a_cost(root):
    write_job(root, "plain", command="true")
    assert "COST" not in rw("jobs", "list").stdout
    _finished(root, "paid", _recent(1), {"output_tokens": 3, "cost_usd": 1.5})
    listing = rw("jobs", "list").stdout
    assert "COST" in listing and "$1.50" in listing


def test_show_template_has_spend_today_7_and_30_days(root):
    rw("jobs", "create", "brief", "--cron", "@daily", "--command", "true")
    _finished(
        root,
        "brief-20260101T000000Z",
        _recent(0.1),
        {"cost_usd": 0.5, "input_tokens": 10},
        template="brief",
        scheduled_for=_recent(0.1),
    )
    _finished(
        root,
        "brief-20260102T000000Z",
        _recent(24 * 20),
        {"cost_usd": 2.0},
        template="brief",
        scheduled_for=_recent(480),
    )
    data = json.loads(rw("jobs", "show", "brief", "--json").stdout)
    spend = data["usage"]
    assert spend["last_7_days"]["cost_usd"] == 0.5 and spend["last_30_days"]["cost_usd"] == 2.5
    assert spend["last_30_days"]["runs"] == 2
    shown = rw("jobs", "show", "brief").stdout
    assert "last 30 days  $2.50  (2 runs" in shown


# --- budgets ----------------------------------------------------------------------------------


def test_a_template_pauses_when_its_budget_is_reached_and_resumes_by_hand(root, agents):
    folder = root / ".repowire" / "agents" / "spender"
    folder.mkdir(parents=True)
    (folder / "job.yaml").write_text(
        "cron: '@yearly'\nbackend: claude\nprompt: go\npath: .\n"
        "budget: {cost_usd: 0.02, per: day}\n"
    )
    first = rw("jobs", "run", "spender").stdout.strip()
    run_once(root)
    assert json.loads(rw("jobs", "show", "spender", "--json").stdout)["state"] == "enabled"
    wait_a_second()
    second = rw("jobs", "run", "spender").stdout.strip()
    log = run_once(root)
    assert read(root, first)["usage"]["cost_usd"] == read(root, second)["usage"]["cost_usd"]
    assert "paused template spender: budget reached: $0.0246 of $0.0200 this day" in log
    data = json.loads(rw("jobs", "show", "spender", "--json").stdout)
    assert data["state"] == "paused" and data["next_fires"] == []
    assert data["paused_reason"].startswith("budget reached")
    assert "resumes" in data["paused_reason"]
    assert data["usage"]["budget"]["spent"]["cost_usd"] == pytest.approx(0.0246)
    assert "paused" in rw("jobs", "list").stdout
    # one state everywhere, and filters that agree (status and agents list said enabled)
    assert rw("jobs", "status", "spender").stdout.strip() == "paused"
    assert "paused" in next(
        line for line in rw("agents", "list").stdout.splitlines() if "spender" in line
    )
    by_state = {
        s: [
            t["id"]
            for t in json.loads(rw("jobs", "list", "--state", s, "--json").stdout)["templates"]
        ]
        for s in ("paused", "enabled")
    }
    assert by_state == {"paused": ["spender"], "enabled": []}
    status = json.loads(rw("status", "--json", ok=False).stdout)
    assert all(f["template"] != "spender" for f in status["next_fires"])  # no fire while paused
    before = (folder / "job.yaml").read_text()
    rw("jobs", "resume", "spender")
    assert (folder / "job.yaml").read_text() == before  # the pause was runtime state only
    data = json.loads(rw("jobs", "show", "spender", "--json").stdout)
    assert data["state"] == "enabled" and data["next_fires"]
    state = yaml.safe_load((folder / "state.yaml").read_text())
    assert "budget_paused_until" not in state and state["budget_waived_until"]
    wait_a_second()
    rw("jobs", "run", "spender")
    assert "paused template" not in run_once(root)  # waived for the rest of the period


def wait_a_second() -> None:
    """Runs fired by hand are named for the second; the next needs a new one."""
    start = datetime.now(UTC).replace(microsecond=0)
    while datetime.now(UTC).replace(microsecond=0) == start:
        pass


def _template(**budget: object) -> Template:
    return Template(name="t", cron="@hourly", timezone="Europe/Berlin", budget=dict(budget))


def _run(at: datetime, cost: float = 0.0, tokens: int = 0) -> Job:
    return Job(
        id=f"t-{at:%H%M%S}",
        template="t",
        state=State.SUCCEEDED,
        finished_at=at,
        usage={"cost_usd": cost, "input_tokens": tokens},
    )


def test_budget_pause_holds_until_the_next_period_then_lifts_by_itself():
    template = _template(cost_usd=1.0, per="day")
    now = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)  # 23:00 in Berlin
    runs = [_run(now - timedelta(hours=2), 0.6), _run(now - timedelta(minutes=5), 0.5)]
    state: dict = {}
    told = budget_step(template, lambda: runs, state, now)
    assert told and "$1.10 of $1.00 this day; resumes 2026-03-29 00:00 CET" in told
    assert state["budget_paused_until"] == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert budget_paused(state, now)
    later = datetime(2026, 3, 28, 23, 0, 1, tzinfo=UTC)
    assert budget_step(template, lambda: runs, state, later) == (
        "resumed template t: a new budget period began"
    )
    assert not budget_paused(state, later) and "paused_reason" not in state


def test_a_token_budget_and_runs_from_earlier_periods():
    template = _template(tokens=1000, per="week")
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # a Thursday
    old = _run(datetime(2026, 11, 22, 12, 0, tzinfo=UTC), tokens=5000)  # last Sunday
    state: dict = {}
    assert budget_step(template, lambda: [old], state, now) is None
    fresh = _run(datetime(2026, 11, 23, 0, 30, tzinfo=UTC), tokens=1000)  # Monday, Berlin
    assert "1,000 of 1,000 tokens this week" in (
        budget_step(template, lambda: [old, fresh], state, now) or ""
    )


def test_budget_periods_follow_the_zone_across_dst():
    berlin = ZoneInfo("Europe/Berlin")
    spring = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
    start, end = period_bounds(spring, "day", berlin)
    assert (end - start) == timedelta(hours=23)
    assert start == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    autumn = datetime(2026, 10, 25, 12, 0, tzinfo=UTC)
    start, end = period_bounds(autumn, "day", berlin)
    assert (end - start) == timedelta(hours=25)
    start, end = period_bounds(spring, "week", berlin)
    assert start == datetime(2026, 3, 22, 23, 0, tzinfo=UTC)  # Monday 00:00 CET
    assert end == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)  # Monday 00:00 CEST
    start, end = period_bounds(spring, "month", berlin)
    assert start == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    assert end == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)
    start, end = period_bounds(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "month", berlin)
    assert start.astimezone(berlin).date().isoformat() == "2027-01-01"
    # Santiago skips midnight when clocks go forward (2026-09-06): the day starts at 01:00
    santiago = ZoneInfo("America/Santiago")
    start, _ = period_bounds(datetime(2026, 9, 6, 15, 0, tzinfo=UTC), "day", santiago)
    assert start.astimezone(santiago).hour == 1 and start.astimezone(santiago).day == 6


def test_spend_counts_runs_by_when_they_ended():
    since, until = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    runs = [
        ("2025-12-31T23:59:59Z", {"cost_usd": 1.0}),
        ("2026-01-01T00:00:00Z", {"cost_usd": 0.25, "input_tokens": 3, "output_tokens": 4}),
        ("2026-01-01T23:59:59Z", {"cost_usd": 0.5}),
        ("2026-01-02T00:00:00Z", {"cost_usd": 2.0}),
        (None, {"cost_usd": 9.0}),
        ("2026-01-01T10:00:00Z", None),
    ]
    assert spend_of(runs, since, until) == {"runs": 2, "cost_usd": 0.75, "tokens": 7}


def test_usage_readers_and_sums_never_raise_on_odd_output():
    for text in ("", "not json", '{"type": "result", "usage": "x"}', "[1, 2]", '{"stats": 3}'):
        for preset in ("claude", "codex", "gemini", "opencode", "other"):
            assert read_usage(preset, None, text) is None
    assert read_usage(None, {"cost_usd": "a.b"}, '{"a": {"b": "free"}}') is None
    assert add_usage(None, {"output_tokens": 1}) == {"output_tokens": 1}
    assert add_usage({"cost_usd": 0.1, "model": "a"}, {"cost_usd": 0.2, "model": "b"}) == {
        "cost_usd": 0.3,
        "model": "b",
    }
    assert priced({"output_tokens": 10}, {}, "codex") == {"output_tokens": 10}


def test_bad_budgets_make_the_template_invalid(root):
    folder = root / ".repowire" / "agents" / "b"
    folder.mkdir(parents=True)
    for budget, says in (
        ("{per: day}", "give cost_usd, tokens, or both"),
        ("{cost_usd: -1}", "number 0 or more"),
        ("{cost_usd: 1, per: year}", "per"),
        ("{tokens: 0}", "tokens"),
        ("{cost: 1}", "unknown key"),
        ("5", "mapping"),
    ):
        (folder / "job.yaml").write_text(f"cron: '@daily'\ncommand: 'true'\nbudget: {budget}\n")
        result = rw("validate", ok=False)
        assert result.exit_code == 1 and says in result.output, (budget, result.output)
