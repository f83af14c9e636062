"""Recurring templates: firing, skips, overlap, retention, continuity and the commands."""

from __future__ import annotations

import io
import json
import sys
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from conftest import FIXTURES, assert_clean_error, rw, wait_for
from runner_helpers import (
    RunnerProcess,
    in_process_runner,
    kill_executors,
    read,
    run_once,
    set_config,
    state,
)

from repowire.runner.loop import Runner
from repowire.runner.scheduling import Scheduler
from repowire.runner.table import JobTable
from repowire.store.records import Store
from repowire.templates.storage import read_state

T0 = datetime(2099, 11, 26, 10, 0, 30, tzinfo=timezone.utc)


def make_template(root, name, **keys):
    folder = root / ".repowire" / "agents" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.yaml").write_text(yaml.safe_dump(keys, sort_keys=False))
    return folder


def scheduler_step(root, now):
    store = Store(root)
    jobs = JobTable(store).jobs()
    return Scheduler(store, lambda line: None).step(jobs, now)


def runs(root, name):
    return sorted(p.stem for p in (root / ".repowire" / "jobs").glob(f"{name}-*.yaml"))


def test_a_new_template_first_fires_at_its_first_slot(root):
    make_template(root, "every-minute", cron="* * * * *", command="true")
    wait, fired = scheduler_step(root, T0)
    assert not fired and runs(root, "every-minute") == [] and 0 < wait <= 60
    assert not scheduler_step(root, T0 + timedelta(seconds=20))[1]
    assert scheduler_step(root, T0 + timedelta(seconds=31))[1]
    assert runs(root, "every-minute") == ["every-minute-20991126T100100Z"]
    run = read(root, "every-minute-20991126T100100Z")
    assert run["template"] == "every-minute" and run["scheduled_for"] == T0.replace(
        minute=1, second=0
    )
    assert run["path"] == ".repowire/agents/every-minute" and run["state"] == "queued"
    assert run["continuity"] == "resume"


def test_two_runners_never_fire_a_slot_twice(root):
    make_template(root, "m", cron="* * * * *", command="true")
    scheduler_step(root, T0)
    later = T0 + timedelta(seconds=45)
    assert scheduler_step(root, later)[1]
    assert not scheduler_step(root, later)[1]  # a second runner, or the same one after a crash
    store = Store(root)
    state_file = root / ".repowire/agents/m/state.yaml"
    state_file.write_text(
        state_file.read_text().replace("2099-11-26T10:01:00Z", "2099-11-26T10:00:30Z")
    )
    assert not Scheduler(store, print).step(JobTable(store).jobs(), later)[1]
    assert runs(root, "m") == ["m-20991126T100100Z"]


def test_outage_catchup_latest_records_every_skipped_slot(root):
    make_template(root, "h", cron="0 * * * *", command="true")
    scheduler_step(root, T0)
    scheduler_step(root, T0 + timedelta(hours=5))
    assert runs(root, "h") == ["h-20991126T150000Z"]
    st = read_state(Store(root), "h")
    assert st["skipped_total"] == 4
    assert st["skipped"][0]["count"] == 4 and "catchup: latest" in st["skipped"][0]["reason"]
    shown = json.loads(rw("jobs", "show", "h", "--json").stdout)
    assert shown["skipped_total"] == 4 and shown["last_run"] == "h-20991126T150000Z"


def test_catchup_all_is_capped_and_deadline_respected(root):
    make_template(root, "a", cron="0 * * * *", command="true", catchup="all", overlap="queue")
    make_template(root, "d", cron="0 * * * *", command="true", starting_deadline="10m")
    scheduler_step(root, T0)
    scheduler_step(root, T0 + timedelta(hours=30, minutes=30))
    assert len(runs(root, "a")) == 10
    assert runs(root, "d") == []  # the newest slot is 30 minutes old: past its deadline
    reasons = [s["reason"] for s in read_state(Store(root), "d")["skipped"]]
    assert any("starting deadline of 10m" in r for r in reasons)


@pytest.mark.parametrize("overlap", ["skip", "allow", "replace", "queue"])
def test_overlap_policies(root, overlap):
    make_template(root, "o", cron="* * * * *", command="sleep 60", overlap=overlap)
    scheduler_step(root, T0)
    scheduler_step(root, T0 + timedelta(seconds=31))
    first = "o-20991126T100100Z"
    rw("jobs", "update", first, "--state", "running")  # the previous run is still active
    scheduler_step(root, T0 + timedelta(seconds=91))
    second = "o-20991126T100200Z"
    if overlap == "skip":
        assert runs(root, "o") == [first]
        skipped = read_state(Store(root), "o")["skipped"]
        assert (
            "previous run o-20991126T100100Z is still running (overlap: skip)"
            in skipped[-1]["reason"]
        )
        return
    assert runs(root, "o") == [first, second]
    if overlap == "replace":
        assert state(root, first) == "canceled" and "replaced by" in read(root, first)["error"]
    else:
        assert state(root, first) == "running"
    runner = Runner(root, log=io.StringIO())
    runner.scheduler.step(JobTable(Store(root)).jobs(), T0 + timedelta(seconds=92))
    table = JobTable(Store(root))
    due = runner.chooser.due(table.jobs(), table.live, datetime.now(timezone.utc), [])
    assert [j.id for j in due] == ([] if overlap == "queue" else [second])


def test_paused_template_does_not_fire_but_jobs_run_does(root):
    now = datetime.now(timezone.utc)
    make_template(root, "p", cron="0 * * * *", command="echo by hand")
    scheduler_step(root, now)
    rw("jobs", "cancel", "p")
    assert not scheduler_step(root, now + timedelta(hours=5))[1]
    assert runs(root, "p") == []
    run_id = rw("jobs", "run", "p").stdout.strip()
    assert run_id.startswith("p-") and state(root, run_id) == "queued"
    run_once(root)
    assert state(root, run_id) == "succeeded"
    assert "fired by hand" in read(root, run_id)["notes"][0]["text"]
    rw("jobs", "resume", "p")
    assert rw("jobs", "status", "p").stdout.strip() == "enabled"
    assert not scheduler_step(root, now + timedelta(hours=5, seconds=1))[1]  # no catch-up


def test_retention_keeps_the_newest_runs(root):
    make_template(root, "r", cron="* * * * *", command="echo hi", keep_runs=2)
    scheduler_step(root, T0)
    for minute in range(1, 5):
        scheduler_step(root, T0 + timedelta(minutes=minute))
        run_once(root)
    kept = runs(root, "r")
    assert kept == ["r-20991126T100300Z", "r-20991126T100400Z"]
    assert not (root / ".repowire/jobs/r-20991126T100100Z.log").exists()


def test_real_runner_fires_a_per_second_template(root):
    set_config(root, "kill_grace: 1s\n")
    make_template(root, "tick", cron="* * * * * *", command="echo tick")
    make_template(root, "broken", cron="61 * * * *", command="true")
    (root / ".repowire/agents/not an id").mkdir()
    proc = RunnerProcess(root)
    try:
        wait_for(
            lambda: len([r for r in runs(root, "tick") if state(root, r) == "succeeded"]) >= 3,
            what="three fired runs",
        )
    finally:
        proc.stop()
        kill_executors(root)
    out = proc.output()
    assert "skipped template broken" in out and "not a valid cron expression" in out
    slots = [read(root, r)["scheduled_for"] for r in runs(root, "tick")]
    assert len(slots) == len(set(slots))
    listing = json.loads(rw("jobs", "list", "--json").stdout)
    states = {t["id"]: t["state"] for t in listing["templates"]}
    assert states["broken"] == "invalid" and states["not an id"] == "invalid"
    assert states["tick"] == "enabled"


def _fake_backend(root):
    agent = [sys.executable, str(FIXTURES / "fake_agent.py")]
    config = {
        "kill_grace": "1s",
        "backends": {
            "fake": {
                "command": [*agent, "{prompt}"],
                "resume_command": [*agent, "--resume", "{session_id}", "{prompt}"],
                "session_id_pattern": r"session: (\S+)",
            }
        },
    }
    set_config(root, yaml.safe_dump(config))


def test_resume_continuity_carries_the_session_to_the_next_run(root, monkeypatch):
    _fake_backend(root)
    calls = root / "calls.txt"
    monkeypatch.setenv("FAKE_AGENT_LOG", str(calls))
    rw(
        "agents",
        "create",
        "brief",
        "--cron",
        "@daily",
        "--backend",
        "fake",
        "--prompt",
        "Prepare the brief.",
    )
    first = rw("jobs", "run", "brief").stdout.strip()
    run_once(root)
    one = read(root, first)
    assert one["state"] == "succeeded" and one["result_summary"] == "Done: Prepare the brief."
    assert any("no session id captured yet; starting fresh" in n["text"] for n in one["notes"])
    session = one["session_id"]
    assert read_state(Store(root), "brief")["session_id"] == session
    wait_for(lambda: rw("jobs", "run", "brief", ok=False).exit_code == 0, what="a new second")
    second = sorted(runs(root, "brief"))[-1]
    run_once(root)
    two = read(root, second)
    assert two["state"] == "succeeded" and two["session_id"] == session
    assert any(f"resuming session {session}" in n["text"] for n in two["notes"])
    assert [line.split()[0] for line in calls.read_text().splitlines()] == [session, session]
    assert "REPOWIRE_SESSION_ID" not in one.get("env", {})


def test_a_refused_resume_fails_and_the_next_run_starts_fresh(root):
    _fake_backend(root)
    rw("agents", "create", "brief", "--cron", "@daily", "--backend", "fake", "--prompt", "go")
    state_file = root / ".repowire/agents/brief/state.yaml"
    state_file.write_text("session_id: expired\n")
    first = rw("jobs", "run", "brief").stdout.strip()
    run_once(root)
    assert read(root, first)["state"] == "failed" and read(root, first)["exit_code"] == 1
    assert "session_id" not in read_state(Store(root), "brief")
    wait_for(lambda: rw("jobs", "run", "brief", ok=False).exit_code == 0, what="a new second")
    second = sorted(runs(root, "brief"))[-1]
    run_once(root)
    notes = [n["text"] for n in read(root, second)["notes"]]
    assert read(root, second)["state"] == "succeeded"
    assert any("resuming session expired failed" in n and "starting fresh" in n for n in notes)


def test_shell_template_gets_the_session_in_its_environment(root):
    make_template(root, "sh", cron="@daily", command='echo "session=$REPOWIRE_SESSION_ID"')
    (root / ".repowire/agents/sh/state.yaml").write_text("session_id: s-1\n")
    run_id = rw("jobs", "run", "sh").stdout.strip()
    run_once(root)
    assert read(root, run_id)["result_summary"] == "session=s-1"


def test_agents_create_scaffolds_a_worker(root):
    out = rw("agents", "create", "nightly", "--cron", "0 3 * * *", "--command", "./report.sh")
    assert out.stdout.strip() == "created .repowire/agents/nightly"
    folder = root / ".repowire/agents/nightly"
    assert "repowire jobs update" in (folder / "AGENTS.md").read_text()
    job = yaml.safe_load((folder / "job.yaml").read_text())
    assert job == {"name": "nightly", "command": "./report.sh", "cron": "0 3 * * *"} or job == {
        "command": "./report.sh",
        "cron": "0 3 * * *",
    }
    rw("agents", "create", "plain")
    assert (root / ".repowire/agents/plain/AGENTS.md").exists()
    agent = rw("agents", "create", "thinker", "--cron", "@daily", "--backend", "codex")
    assert agent.exit_code == 0
    assert (
        yaml.safe_load((root / ".repowire/agents/thinker/job.yaml").read_text())["prompt_file"]
        == "AGENTS.md"
    )


@pytest.mark.parametrize(
    "args, says",
    [
        (["nightly", "--cron", "bad"], "not a valid cron expression"),
        (["../up", "--cron", "@daily", "--command", "x"], "not a valid worker name"),
        (["nightly", "--cron", "@daily"], "needs --command"),
        (["nightly", "--cron", "@daily", "--command", "x", "--timezone", "Nowhere/X"], "time zone"),
        (["nightly", "--cron", "@daily", "--backend", "nope"], "unknown backend"),
    ],
)
def test_agents_create_bad_input_leaves_nothing(root, args, says):
    assert_clean_error(rw("agents", "create", *args, ok=False), says=says)
    assert list((root / ".repowire/agents").iterdir()) == []


def test_agents_create_refuses_an_existing_folder(root):
    rw("agents", "create", "w")
    before = (root / ".repowire/agents/w/AGENTS.md").read_text()
    assert_clean_error(rw("agents", "create", "w", ok=False), says="already exists")
    assert (root / ".repowire/agents/w/AGENTS.md").read_text() == before


def test_jobs_run_bad_input(root):
    assert_clean_error(rw("jobs", "run", "nope", ok=False), says="no job or template")
    make_template(root, "broken", cron="61 * * * *", command="x")
    assert_clean_error(rw("jobs", "run", "broken", ok=False), says="not a valid cron")
    assert_clean_error(rw("jobs", "run", "../x", ok=False), says="not a valid")
    assert list((root / ".repowire/jobs").iterdir()) == []


def test_a_worker_folder_without_a_schedule_is_not_a_template(root):
    rw("agents", "create", "helper")
    (root / "helper-work").mkdir()
    listing = json.loads(rw("jobs", "list", "--json").stdout)
    assert listing["templates"] == []
    assert "ok" in rw("validate").stdout
    job_id = rw(
        "jobs", "create", "One-off", "--command", "true", "--path", ".repowire/agents/helper"
    ).stdout.strip()
    run_once(root)
    assert state(root, job_id) == "succeeded"


def test_a_long_template_name_is_cut_and_a_longer_folder_reported_once(root):
    name = "n" * 150
    folder = rw("jobs", "create", name, "--cron", "@daily", "--command", "true").stdout.strip()
    assert len(folder) == 100
    run_id = rw("jobs", "run", folder).stdout.strip()
    run_once(root)
    assert state(root, run_id) == "succeeded"
    long_folder = root / ".repowire/agents" / ("x" * 110)
    long_folder.mkdir()
    (long_folder / "job.yaml").write_text("cron: '@daily'\ncommand: 'true'\n")
    listing = json.loads(rw("jobs", "list", "--json").stdout)
    broken = [t for t in listing["templates"] if t["state"] == "invalid"]
    assert len(broken) == 1 and "at most 100" in broken[0]["error"]
    assert "at most 100" in rw("validate", ok=False).stderr
    runner, out = in_process_runner(root)
    runner.step()
    runner.step()
    assert out.getvalue().count("at most 100") == 1


def test_manual_runs_in_one_second_each_get_an_id(root):
    rw("jobs", "create", "tick", "--cron", "@daily", "--command", "sleep 0.2")
    first = rw("jobs", "run", "tick").stdout.strip()
    second = rw("jobs", "run", "tick").stdout.strip()
    third = rw("jobs", "run", "tick").stdout.strip()
    assert len({first, second, third}) == 3
    run_once(root)
    assert {state(root, r) for r in (first, second, third)} == {"succeeded"}


def test_skipped_slots_in_a_run_show_their_range_and_count(root):
    """A catch-up that skipped two slots showed one line under `skipped_total 2`: a run of
    skips is shown as its first and last slot and how many."""
    rw("jobs", "create", "tick", "--cron", "@hourly", "--command", "true")
    (root / ".repowire/agents/tick/state.yaml").write_text(
        "skipped:\n"
        "- {slot: 2026-11-26T07:00:00Z, until: 2026-11-26T08:00:00Z, count: 2,\n"
        "   reason: 'missed while no runner ran (catchup: latest)', at: 2026-11-26T09:00:05Z}\n"
        "skipped_total: 2\n"
    )
    shown = rw("jobs", "show", "tick", "--utc").stdout
    assert "2026-11-26T07:00:00Z to 2026-11-26T08:00:00Z (2 slots)  missed" in shown


def test_a_name_of_only_punctuation_makes_no_template_called_job(root):
    """`jobs create '!!!' --cron ...` made a template named `job`; now one sentence, exit 1,
    and no folder."""
    for args, says in (
        (["jobs", "create", "!!!"], "has no letter or digit"),
        (["agents", "create", "?!"], "is not a valid worker name"),
    ):
        done = rw(*args, "--cron", "@daily", "--command", "true", ok=False)
        assert_clean_error(done, says=says)
    assert not (root / ".repowire/agents/job").exists()
