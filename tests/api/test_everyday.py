"""The everyday commands: rm, prune, rerun, logs --tail and -f, and their bad input."""

from __future__ import annotations

import json
import os
import time

from conftest import assert_clean_error, rw
from runner_helpers import read, run_once, state, write_job


def _files(root, job_id):
    return sorted(p.name for p in (root / ".repowire/jobs").glob(f"{job_id}.*"))


def test_rm_removes_finished_jobs_whole_and_refuses_the_others(root):
    write_job(root, "done", command="echo out; echo result > $REPOWIRE_RESULT_FILE")
    run_once(root)
    write_job(root, "waiting", command="true", due_at="2099-01-01T00:00:00Z")
    assert _files(root, "done") == ["done.log", "done.result.md", "done.yaml"]
    assert_clean_error(rw("jobs", "rm", "done", "waiting", ok=False), says="only finished jobs")
    assert_clean_error(rw("jobs", "rm", "nope", ok=False), says="no job nope")
    assert _files(root, "done") and state(root, "waiting") == "queued"  # nothing removed
    assert rw("jobs", "rm", "done", "--dry-run").stdout == "would remove done\n"
    assert _files(root, "done")
    rw("jobs", "rm", "done")
    assert _files(root, "done") == []
    rw("jobs", "rm", "waiting", "--force")
    assert _files(root, "waiting") == []


def test_prune_removes_old_finished_jobs_only(root):
    for job_id in ("old-ok", "old-bad", "new-ok"):
        write_job(root, job_id, command="exit 1" if "bad" in job_id else "true")
    run_once(root)
    write_job(root, "queued", command="true", due_at="2099-01-01T00:00:00Z")
    for job_id in ("old-ok", "old-bad"):
        record = (root / f".repowire/jobs/{job_id}.yaml").read_text()
        year_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86400 * 365))
        lines = [
            f"finished_at: '{year_ago}'" if line.startswith("finished_at") else line
            for line in record.splitlines()
        ]
        (root / f".repowire/jobs/{job_id}.yaml").write_text("\n".join(lines) + "\n")
    dry = rw("jobs", "prune", "--older-than", "7d", "--dry-run").stdout
    assert dry.splitlines() == ["would remove old-bad", "would remove old-ok"]
    assert (
        rw("jobs", "prune", "--older-than", "7d", "--state", "failed").stdout == "removed old-bad\n"
    )
    rw("jobs", "prune")
    assert [p.stem for p in (root / ".repowire/jobs").glob("*.yaml")] == ["queued"]
    assert_clean_error(rw("jobs", "prune", "--older-than", "soon", ok=False), code=2)
    assert_clean_error(rw("jobs", "prune", "--state", "queued", ok=False), code=2)


def test_rerun_queues_a_copy_of_any_finished_job(root):
    write_job(root, "once", command="echo again", retries=1)
    run_once(root)
    new_id = rw("jobs", "rerun", "once").stdout.split()[0]
    record = read(root, new_id)
    assert record["state"] == "queued" and record["command"] == "echo again"
    assert (
        record["retries"] == 1 and "rerun of once (which succeeded)" in record["notes"][0]["text"]
    )
    assert_clean_error(rw("jobs", "rerun", new_id, ok=False), says="only finished jobs")
    run_once(root)
    assert state(root, new_id) == "succeeded"


def test_logs_tail_and_follow_say_how_it_ended(root):
    write_job(root, "chatty", command="for i in 1 2 3 4 5; do echo line $i; done; exit 2")
    run_once(root)
    assert rw("jobs", "logs", "chatty", "--tail", "2").stdout == "line 4\nline 5\n"
    assert rw("jobs", "logs", "chatty", "--tail", "0").stdout == ""
    assert "=== repowire" in rw("jobs", "logs", "chatty", "--tail", "100").stdout
    followed = rw("jobs", "logs", "chatty", "-f", "--tail", "1")
    assert followed.stdout == "line 5\n" and "--- chatty failed: exit status 2" in followed.stderr
    assert_clean_error(rw("jobs", "logs", "chatty", "--tail", "-1", ok=False), code=2)


def test_logs_follow_stops_quietly_on_ctrl_c(root):
    import signal
    import subprocess
    import sys

    write_job(root, "slow", command="true", due_at="2099-01-01T00:00:00Z")
    (root / ".repowire/jobs/slow.log").write_text("so far\n")
    # A shell without job control starts background commands with SIGINT ignored, and a child
    # inherits that; Ctrl-C as a terminal sends it is what is tested, so the child takes it back.
    start = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv = ['repowire', 'jobs', 'logs', 'slow', '-f']; "
        "runpy.run_module('repowire', run_name='__main__', alter_sys=True)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", start],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Once it has printed the log so far it is following (a Ctrl-C during Python's own start-up
    # can be swallowed by the import machinery, which is not what is tested here).
    assert proc.stdout is not None and proc.stdout.readline() == "so far\n"
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 130 and "Traceback" not in err


def test_list_limit_since_quiet_and_columns(root):
    import json

    for n in range(5):
        write_job(root, f"j{n}", command="true")
    run_once(root)
    later = write_job(root, "later", command="true", due_at="2099-01-01T00:00:00Z")
    os.utime(later, (time.time() + 5, time.time() + 5))  # clearly the newest file
    assert sorted(rw("jobs", "list", "-q").stdout.split()) == [
        "j0",
        "j1",
        "j2",
        "j3",
        "j4",
        "later",
    ]
    limited = json.loads(rw("jobs", "list", "--limit", "2", "--json").stdout)["jobs"]
    assert len(limited) == 2 and limited[-1]["id"] == "later", limited  # the newest two
    assert rw("jobs", "list", "--since", "1h", "-q").stdout.split()[-1] == "later"
    old = root / ".repowire/jobs/j0.yaml"
    text = old.read_text().replace("updated_at: ", "updated_at: 2020-01-01T00:00:00Z\n#", 1)
    old.write_text(text)
    assert "j0" not in rw("jobs", "list", "--since", "1d", "-q").stdout.split()
    table = rw("jobs", "list").stdout
    header = next(line for line in table.splitlines() if line.startswith("ID"))
    assert header.split() == ["ID", "STATE", "NAME", "STARTED", "DURATION", "DUE", "SUMMARY"]
    assert "2099-01-01" in table  # a due time years away is a date, not "in 26000d"
    assert_clean_error(rw("jobs", "list", "--since", "yesterday", ok=False), code=2)
    assert_clean_error(rw("jobs", "list", "--limit", "-1", ok=False), code=2)


def test_times_are_local_unless_utc(root, monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        write_job(root, "a", command="true", due_at="2026-11-26T00:00:00Z")
        assert "2026-11-26 09:00:00+0900" in rw("jobs", "show", "a").stdout
        assert "2026-11-26T00:00:00Z" in rw("jobs", "show", "a", "--utc").stdout
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_cron_in_words_with_its_next_fires(root):
    out = rw("cron", "0 9 * * 1-5", "--timezone", "Europe/Berlin", "-n", "3")
    lines = out.stdout.splitlines()
    assert lines[0] == "0 9 * * 1-5: At 09:00, Monday through Friday (Europe/Berlin)"
    assert len(lines) == 4 and all("T09:00:00+01:00" in line for line in lines[1:])
    quartz = rw("cron", "0 */5 * * * *")
    assert "Quartz-style" in quartz.stderr and "'*/5 * * * * 0'" in quartz.stderr
    assert_clean_error(rw("cron", "61 * * * *", ok=False), says="not a valid cron expression")
    assert_clean_error(rw("cron", "@daily", "--timezone", "Mars/Base", ok=False), says="time zone")


def test_agents_list_shows_templates_and_one_off_folders(root):
    import json

    rw("agents", "create", "brief", "--cron", "@daily", "--command", "true")
    rw("agents", "create", "helper")
    rw("jobs", "run", "brief")
    run_once(root)
    rows = {r["name"]: r for r in json.loads(rw("agents", "list", "--json").stdout)}
    assert rows["brief"]["kind"] == "template" and rows["brief"]["last_state"] == "succeeded"
    assert rows["brief"]["next_fire"] and rows["helper"]["kind"] == "one-off"
    assert "brief" in rw("agents", "list").stdout


def test_validate_json(root):
    import json

    assert json.loads(rw("validate", "--json").stdout)["ok"] is True
    (root / ".repowire/jobs/bad.yaml").write_text("retries: many\n")
    result = rw("validate", "--json", ok=False)
    data = json.loads(result.stdout)
    assert result.exit_code == 1 and data["ok"] is False
    assert {p["file"] for p in data["problems"]} == {".repowire/jobs/bad.yaml"}


def test_shell_completion_offers_job_ids_and_template_names(root):
    import subprocess
    import sys

    rw("jobs", "create", "A", "--command", "true", "--id", "alpha")
    rw("jobs", "create", "Nightly", "--cron", "@daily", "--command", "true")

    def complete(words: str) -> list[str]:
        env = {
            **os.environ,
            "_REPOWIRE_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        }
        done = subprocess.run(
            [sys.executable, "-m", "repowire"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return [line.split(",", 1)[1] for line in done.stdout.splitlines()]

    assert complete("repowire jobs show ") == ["alpha", "nightly"]
    assert complete("repowire jobs run n") == ["nightly"]
    assert "status" in complete("repowire st")
    source = subprocess.run(
        [sys.executable, "-m", "repowire"],
        env={**os.environ, "_REPOWIRE_COMPLETE": "zsh_source"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "compdef" in source.stdout


def test_nothing_said_is_lost(root):
    rw("jobs", "create", "tick", "--cron", "@daily", "--command", "true")
    rw("jobs", "cancel", "tick", "--reason", "holiday")
    shown = json.loads(rw("jobs", "show", "tick", "--json").stdout)
    assert shown["state"] == "paused" and shown["paused_reason"] == "holiday"
    assert "holiday" in rw("jobs", "show", "tick").stdout
    rw("jobs", "resume", "tick")
    assert json.loads(rw("jobs", "show", "tick", "--json").stdout)["paused_reason"] is None
    write_job(root, "bad", command="echo partial; exit 4")
    run_once(root)
    result = rw("jobs", "result", "bad", ok=False)
    assert result.exit_code == 1 and "partial" in result.stdout
    assert "job bad failed: exit status 4" in result.stderr
    job_id = rw("jobs", "create", "manual", "--prompt", "think").stdout.strip()
    rw("jobs", "update", job_id, "--state", "running")
    rw("jobs", "update", job_id, "--state", "failed", "--note", "gave up")
    assert read(root, job_id)["error"] == "gave up"


def test_a_six_field_cron_read_otherwise_than_meant_is_warned_of_at_create(root):
    """`*/10 * * * * *` means every second of every tenth minute (seconds go last), where
    every 10 seconds was meant: `repowire cron`, `jobs create --cron` and `agents create
    --cron` say so, as for `0 */5 * * * *`; a five-field expression gets no warning."""
    assert "'* * * * * */10' may be what you mean" in rw("cron", "*/10 * * * * *").stderr
    made = rw("jobs", "create", "burst", "--cron", "*/10 * * * * *", "--command", "true")
    assert made.exit_code == 0 and "Warning:" in made.stderr and "seconds first" in made.stderr
    made = rw("agents", "create", "other", "--cron", "0 */5 * * * *", "--command", "true")
    assert made.exit_code == 0 and "Quartz-style" in made.stderr
    quiet = rw("jobs", "create", "fine", "--cron", "*/10 * * * *", "--command", "true")
    assert "seconds" not in quiet.stderr and "Quartz" not in quiet.stderr
