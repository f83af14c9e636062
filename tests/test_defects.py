"""The defects found by trying the project as a new user would, each reproduced and held."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import assert_clean_error, on_a_terminal, rw, rw_process, wait_for
from runner_helpers import read, run_once, set_config, state, write_job

from repowire.runner.loop import Runner


def _runner(root: Path) -> tuple[Runner, io.StringIO]:
    out = io.StringIO()
    return Runner(root, log=out), out


def test_01_long_template_names(root):
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
    runner, out = _runner(root)
    runner.step()
    runner.step()
    assert out.getvalue().count("at most 100") == 1


def test_02_a_live_runner_rereads_config(root):
    runner, out = _runner(root)
    runner.step()
    set_config(root, "max_concurrency: 2\nbackends:\n  mine:\n    command: [echo, '{prompt}']\n")
    write_job(root, "custom", backend="mine", prompt="from my backend")
    wait_for(lambda: runner.step() is not None and state(root, "custom") == "succeeded")
    assert (
        runner.max_concurrency == 2 and read(root, "custom")["result_summary"] == "from my backend"
    )
    set_config(root, "max_concurrency: zero\n")
    runner.step()
    runner.step()
    assert out.getvalue().count("keeping the last good settings") == 1
    assert runner.max_concurrency == 2


def test_03_a_revoke_stops_a_live_runner_starting_jobs(root):
    runner, out = _runner(root)
    runner.step()
    rw("trust", "--revoke")
    write_job(root, "after", command="true")
    runner.step()
    assert state(root, "after") == "queued" and "no longer trusted" in out.getvalue()
    rw("trust")
    wait_for(lambda: runner.step() is not None and state(root, "after") == "succeeded")


def test_04_retry_keeps_the_jobs_own_due_time(root):
    write_job(
        root,
        "later",
        command="exit 3",
        due_at="2099-01-01T00:00:00Z",
        state="failed",
        attempt=1,
        retry_at="2026-01-01T00:00:00Z",
    )
    rw("jobs", "retry", "later")
    record = read(root, "later")
    assert record["state"] == "queued" and str(record["due_at"]).startswith("2099")
    assert "retry_at" not in record
    write_job(root, "flaky", command="exit 1", retries=1, retry_delay="1h")
    runner, _ = _runner(root)
    wait_for(lambda: runner.step() is not None and read(root, "flaky").get("retry_at"))
    record = read(root, "flaky")
    assert record["state"] == "queued" and "due_at" not in record


def test_05_broken_pipes_end_quietly(root):
    for n in range(60):
        rw("jobs", "create", f"j{n}", "--command", "true", "--id", f"j{n}")
    for args in ("jobs list", "jobs show j0 --json"):
        done = subprocess.run(
            f"{sys.executable} -m repowire {args} | head -1",
            shell=True,
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.stderr == "", done.stderr


def test_06_manual_runs_in_one_second_each_get_an_id(root):
    rw("jobs", "create", "tick", "--cron", "@daily", "--command", "sleep 0.2")
    first = rw("jobs", "run", "tick").stdout.strip()
    second = rw("jobs", "run", "tick").stdout.strip()
    third = rw("jobs", "run", "tick").stdout.strip()
    assert len({first, second, third}) == 3
    run_once(root)
    assert {state(root, r) for r in (first, second, third)} == {"succeeded"}


def test_07_a_never_matching_cron_is_refused_at_create(root):
    assert_clean_error(
        rw("jobs", "create", "feb", "--cron", "0 0 30 2 *", "--command", "true", ok=False),
        says="matches no date",
    )
    assert not (root / ".repowire/agents/feb").exists()


def test_08_each_state_keeps_its_colour_and_no_color_is_honoured(root):
    write_job(root, "bad", command="exit 1")
    write_job(root, "good", command="true")
    run_once(root)
    write_job(root, "waiting", command="true", due_at="2099-01-01T00:00:00Z")
    _, text = on_a_terminal("jobs", "list", cwd=root)
    assert "\x1b[31mfailed" in text and "\x1b[32msucceeded" in text and "\x1b[34mqueued" in text
    _, plain = on_a_terminal("jobs", "list", cwd=root, env={"NO_COLOR": "1"})
    assert "\x1b[" not in plain and "failed" in plain


def test_09_the_problem_is_shown_with_paths_relative_to_the_root(root):
    (root / ".repowire/jobs/broken.yaml").write_text("retries: many\ncommand: 'true'\n")
    (root / ".repowire/agents/bad").mkdir()
    (root / ".repowire/agents/bad/job.yaml").write_text("cron: nope\ncommand: 'true'\n")
    listing = rw("jobs", "list").stdout
    assert "retries: expected a whole number" in listing and "not a valid cron" in listing
    assert str(root) not in listing
    problems = rw("validate", ok=False).stderr
    assert ".repowire/jobs/broken.yaml: retries:" in problems and str(root) not in problems
    runner, out = _runner(root)
    runner.step()
    assert "skipped .repowire/jobs/broken.yaml: retries:" in out.getvalue()


def test_10_filters_apply_to_both_tables(root):
    rw("jobs", "create", "nightly", "--cron", "@daily", "--command", "true")
    write_job(root, "bad", command="exit 1")
    run_once(root)
    failed = json.loads(rw("jobs", "list", "--state", "failed", "--json").stdout)
    assert failed["templates"] == [] and [j["id"] for j in failed["jobs"]] == ["bad"]
    enabled = json.loads(rw("jobs", "list", "--state", "enabled", "--json").stdout)
    assert [t["id"] for t in enabled["templates"]] == ["nightly"] and enabled["jobs"] == []
    assert_clean_error(rw("jobs", "list", "--template", "nosuch", ok=False), says="no template")


def test_12_yml_files_are_listed_with_what_to_do(root):
    (root / ".repowire/jobs/typo.yml").write_text("command: 'true'\n")
    listing = json.loads(rw("jobs", "list", "--json").stdout)
    entry = next(j for j in listing["jobs"] if j["id"] == "typo.yml")
    assert entry["state"] == "invalid" and "rename it to typo.yaml" in entry["error"]
    assert "rename it to typo.yaml" in rw("validate", ok=False).stderr


def test_13_not_found_says_what_the_name_is(root):
    rw("jobs", "create", "tick", "--cron", "@daily", "--command", "true")
    job_id = rw("jobs", "create", "one", "--command", "true").stdout.strip()
    for verb in ("run", "resume"):
        assert_clean_error(rw("jobs", verb, job_id, ok=False), says="is a job, not a template")
    for args in (
        ["logs", "tick"],
        ["result", "tick"],
        ["retry", "tick"],
        ["update", "tick", "--note", "x"],
    ):
        assert_clean_error(rw("jobs", *args, ok=False), says="tick is a template, not a job")


def test_14_the_root_is_named_in_the_allowed_paths_error(root):
    (root / "sub").mkdir()
    set_config(root, "allowed_paths: [sub]\n")
    write_job(root, "top", command="true")
    run_once(root)
    assert "path (the root) is outside the allowed paths" in read(root, "top")["error"]
    assert "None" not in read(root, "top")["error"]


def test_15_a_busy_port_is_one_sentence(root):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = rw_process("dashboard", "--port", str(port), cwd=root, timeout=30)
    assert done.returncode == 1 and done.stdout == ""
    assert (
        done.stderr.startswith("Error: cannot listen on 127.0.0.1:")
        and "Traceback" not in done.stderr
    )


def test_16_every_problem_duplicate_keys_and_prompt_files(root):
    (root / ".repowire/jobs/two.yaml").write_text("retries: many\ntimeout: soon\ncommand: 'true'\n")
    (root / ".repowire/jobs/dup.yaml").write_text("command: 'true'\ncommand: 'rm -rf x'\n")
    (root / ".repowire/jobs/escape.yaml").write_text(
        "backend: claude\nprompt_file: ../../../etc/passwd\n"
    )
    problems = rw("validate", ok=False).stderr.splitlines()
    assert any("two.yaml: retries:" in p for p in problems)
    assert any("two.yaml: timeout:" in p for p in problems)
    assert any("dup.yaml" in p and "given twice" in p for p in problems)
    assert any("escape.yaml" in p and "must stay inside" in p for p in problems)


def test_18_hand_written_jobs_are_ordered_by_file_time(root):
    rw("jobs", "create", "made", "--command", "true", "--id", "made")
    old = write_job(root, "old", command="true")
    past = time.time() - 3600
    os.utime(old, (past, past))
    write_job(root, "new", command="true")
    order = [j["id"] for j in json.loads(rw("jobs", "list", "--json").stdout)["jobs"]]
    assert order.index("old") < order.index("made") < order.index("new")


def test_20_a_mistyped_mcp_argument_is_one_sentence(root):
    from mcp_helpers import error_text, run_session

    async def body(session):  # type: ignore[no-untyped-def]
        bad = await session.call_tool(
            "job_create", {"name": "x", "command": "true", "retries": "many"}
        )
        tools = await session.list_tools()
        return error_text(bad), {t.name: t.annotations for t in tools.tools}

    text, annotations = run_session(root, body)
    assert "\n" not in text.strip() and "retries" in text and "'many'" in text
    assert "pydantic" not in text and "For further information" not in text
    assert annotations["job_list"].read_only_hint and annotations["job_show"].read_only_hint
    cancel = annotations["job_cancel"]
    assert cancel.destructive_hint and not cancel.read_only_hint
    assert annotations["job_create"].destructive_hint is False


def test_21_nothing_said_is_lost(root):
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


def test_22_cosmetics(root):
    rw("jobs", "create", "tick", "--cron", "@daily", "--command", "no-such-program-xyz")
    run_id = rw("jobs", "run", "tick").stdout.strip()
    log = run_once(root)
    assert "SIGTERM" not in log  # it ended by itself
    assert "sh: 1: eval: no-such-program-xyz: not found" in rw("jobs", "logs", run_id).stdout
    assert "repowire-executor" not in rw("jobs", "logs", run_id).stdout
    rw("jobs", "cancel", "tick")
    shown = rw("jobs", "show", "tick").stdout
    assert "False" not in shown and "enabled  " not in shown
    assert all(line == line.rstrip() for line in shown.splitlines())
    job = rw("jobs", "show", run_id).stdout
    assert "executor" in job and "{" not in job.split("executor", 1)[1].splitlines()[0]
    ok_id = rw("jobs", "create", "ok", "--command", "true").stdout.strip()
    run_once(root)
    assert_clean_error(rw("jobs", "cancel", ok_id, ok=False), says="already succeeded")
    assert (
        rw("jobs", "create", "Ünïcode näme", "--cron", "@daily", "--command", "true").stdout.strip()
        == "unicode-name"
    )
    assert "e.g." not in rw("mcp", "--help").stdout
    assert "resume: continue" in rw("jobs", "create", "--help").stdout
    assert "Port to listen on" in rw("dashboard", "--help").stdout
    assert "..." not in "".join(rw("--help").stdout.splitlines()[1:])
    assert "..." not in "".join(rw("jobs", "--help").stdout.splitlines()[1:])


def test_24_daemon_is_the_runners_other_name(root):
    write_job(root, "a", command="true")
    done = rw_process("daemon", "--once", cwd=root)
    assert done.returncode == 0 and state(root, "a") == "succeeded"


@pytest.mark.parametrize("args", [["jobs", "create", "x", "--command", "true", "--due-at", "soon"]])
def test_bad_input_changes_nothing(root, args):
    before = sorted(p.name for p in (root / ".repowire/jobs").iterdir())
    assert_clean_error(rw(*args, ok=False))
    assert sorted(p.name for p in (root / ".repowire/jobs").iterdir()) == before
