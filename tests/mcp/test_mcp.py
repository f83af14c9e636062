"""The MCP server through the official SDK's stdio client against a real `repowire mcp`."""

from __future__ import annotations

import signal

from conftest import REPO, git, rw, wait_for
from mcp_helpers import error_text, payload, run_session
from runner_helpers import (
    RunnerProcess,
    kill_executors,
    read,
    run_once,
    set_config,
)

from repowire.executors.local_processes import group_alive

TOOLS = {
    "job_create",
    "job_list",
    "job_status",
    "job_show",
    "job_update",
    "job_result",
    "job_cancel",
    "job_retry",
    "job_run",
    "job_logs",
    "job_wait",
    "job_resume",
}


def test_tools_are_listed_with_described_parameters(root):
    async def body(session):
        return (await session.list_tools()).tools

    tools = {t.name: t for t in run_session(root, body)}
    assert set(tools) == TOOLS
    said = rw("mcp", "--help").stdout + (REPO / "docs/agents-and-mcp.md").read_text()
    assert all(name in said for name in TOOLS)  # the help and the guide name every tool
    assert "mcp add -s user repowire" in rw("mcp", "--help").stdout  # the scope that works
    for tool in tools.values():
        assert tool.description
        for name, schema in tool.input_schema["properties"].items():
            assert schema.get("description"), (tool.name, name)
    update = tools["job_update"].input_schema["properties"]
    assert set(update) == {"job_id", "state", "note", "result_summary", "session_id", "quiet"}
    states = update["state"]["anyOf"][0]["enum"]
    assert states == ["queued", "running", "succeeded", "failed", "canceled"]


def test_whole_lifecycle(root):
    async def body(session):
        call = session.call_tool
        created = payload(await call("job_create", {"name": "Write docs", "prompt": "Do it."}))
        job_id = created["id"]
        out = {"created": created}
        out["status"] = payload(await call("job_status", {"job_id": job_id}))
        await call("job_update", {"job_id": job_id, "state": "running", "note": "Started"})
        out["done"] = payload(
            await call(
                "job_update",
                {"job_id": job_id, "state": "succeeded", "result_summary": "Docs written"},
            )
        )
        out["result"] = payload(await call("job_result", {"job_id": job_id}))
        out["show"] = payload(await call("job_show", {"job_id": job_id}))
        other = payload(
            await call(
                "job_create",
                {
                    "name": "B",
                    "command": "true",
                    "timeout": "1m",
                    "retries": 1,
                    "workspace": "worktree",
                    "base": "main",
                },
            )
        )
        out["other"] = other
        out["canceled"] = payload(
            await call("job_cancel", {"job_id": other["id"], "reason": "not needed"})
        )
        out["retried"] = payload(await call("job_retry", {"job_id": other["id"]}))
        out["template"] = payload(
            await call(
                "job_create",
                {"name": "Daily brief", "cron": "@daily", "backend": "codex", "prompt": "Brief."},
            )
        )
        out["run"] = payload(await call("job_run", {"name": "daily-brief"}))
        out["list"] = payload(await call("job_list", {}))
        out["paused"] = payload(await call("job_cancel", {"job_id": "daily-brief"}))
        return out

    git(root, "init", "-q", "-b", "main")  # a worktree run's base must be a commit
    git(root, "commit", "-q", "--allow-empty", "-m", "first")
    out = run_session(root, body)
    job_id = out["created"]["id"]
    assert out["created"]["state"] == "queued" and out["status"]["state"] == "queued"
    assert out["done"]["state"] == "succeeded" and out["result"]["result_summary"] == "Docs written"
    assert out["show"]["notes"][0]["text"] == "Started"
    assert out["canceled"]["state"] == "canceled" and out["retried"]["state"] == "queued"
    assert out["other"]["workspace"] == "worktree" and out["other"]["base"] == "main"
    assert out["template"]["kind"] == "template" and len(out["template"]["next_fires"]) == 5
    assert out["run"]["template"] == "daily-brief" and out["run"]["state"] == "queued"
    assert {t["id"] for t in out["list"]["templates"]} == {"daily-brief"}
    assert job_id in {j["id"] for j in out["list"]["jobs"]}
    assert out["paused"]["state"] == "paused"
    assert rw("jobs", "status", job_id).stdout.strip() == "succeeded"  # the same files as the CLI


def test_bad_calls_are_tool_errors_with_the_cli_sentence_and_the_server_keeps_serving(root):
    job_id = rw("jobs", "create", "A", "--command", "true").stdout.strip()
    cli_refusal = rw("jobs", "update", job_id, "--state", "succeeded", ok=False).stderr
    cli_refusal = cli_refusal.strip().removeprefix("Error: ")
    before = (root / f".repowire/jobs/{job_id}.yaml").read_bytes()

    async def body(session):
        call = session.call_tool
        errors = {
            "unknown": await call("job_status", {"job_id": "job-nope"}),
            "unsafe": await call("job_show", {"job_id": "../etc"}),
            "refused": await call("job_update", {"job_id": job_id, "state": "succeeded"}),
            "retry": await call("job_retry", {"job_id": job_id}),
            "missing": await call("job_run", {}),
            "mistyped": await call("job_create", {"name": "x", "command": "y", "retries": "many"}),
            "bad_state": await call("job_update", {"job_id": job_id, "state": "done"}),
            "bad_cron": await call("job_create", {"name": "x", "command": "y", "cron": "nope"}),
            "nothing": await call("job_update", {"job_id": job_id}),
            "no_own_job": await call("job_status", {}),
        }
        alive = payload(await call("job_status", {"job_id": job_id}))
        return errors, alive

    errors, alive = run_session(root, body)
    texts = {k: error_text(v) for k, v in errors.items()}
    assert "no job" in texts["unknown"] and "not a valid job id" in texts["unsafe"]
    assert cli_refusal in texts["refused"]
    assert "only failed or canceled" in texts["retry"]
    assert "name" in texts["missing"] and "retries" in texts["mistyped"]
    assert "state" in texts["bad_state"] and "not a valid cron expression" in texts["bad_cron"]
    assert "at least one" in texts["nothing"] and "REPOWIRE_JOB_ID" in texts["no_own_job"]
    assert alive["state"] == "queued"
    assert (root / f".repowire/jobs/{job_id}.yaml").read_bytes() == before


def test_job_id_defaults_to_the_executor_own_job(root):
    job_id = rw("jobs", "create", "Mine", "--command", "true").stdout.strip()

    async def body(session):
        await session.call_tool("job_update", {"note": "reporting on myself"})
        await session.call_tool("job_update", {"quiet": True})
        return payload(await session.call_tool("job_show", {}))

    shown = run_session(root, body, env={"REPOWIRE_JOB_ID": job_id})
    assert shown["id"] == job_id and shown["notes"][-1]["text"] == "reporting on myself"
    assert shown["quiet"] is True  # nothing to report: it will stay out of the inbox


def test_finishing_through_mcp_releases_the_executor(root):
    set_config(root, "kill_grace: 1s\n")
    runner = RunnerProcess(root)
    try:
        job_id = rw(
            "jobs",
            "create",
            "long",
            "--command",
            "trap '' TERM; (trap '' TERM; sleep 60) & sleep 60",
        ).stdout.strip()
        wait_for(lambda: (read(root, job_id).get("executor") or {}).get("pgid"), what="start")
        pgid = read(root, job_id)["executor"]["pgid"]

        async def body(session):
            return payload(
                await session.call_tool(
                    "job_update",
                    {"job_id": job_id, "state": "succeeded", "result_summary": "done by the agent"},
                )
            )

        assert run_session(root, body)["state"] == "succeeded"
        wait_for(lambda: not group_alive(pgid), timeout=20, what="release after MCP update")
        assert read(root, job_id)["result_summary"] == "done by the agent"
    finally:
        runner.stop(signal.SIGTERM)
        kill_executors(root)


def test_job_id_is_found_in_the_executor_above_a_trimmed_environment(root):
    """Agent CLIs start MCP servers with few variables; the server looks up its ancestors."""
    import os
    import subprocess
    import sys

    job_id = rw("jobs", "create", "Mine", "--command", "true").stdout.strip()
    here, where = str(REPO / "tests"), str(root)  # where mcp_helpers is
    script = (
        f"import sys; sys.path.insert(0, {here!r})\n"
        "from pathlib import Path\n"
        "from mcp_helpers import run_session, payload\n"
        "async def body(s):\n"
        "    return payload(await s.call_tool('job_status', {}))\n"
        f"print(run_session(Path({where!r}), body)['id'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "REPOWIRE_JOB_ID": job_id},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == job_id


def test_logs_wait_and_resume(root):
    rw("jobs", "create", "tick", "--cron", "@daily", "--command", "true")
    rw("jobs", "cancel", "tick")
    job_id = rw("jobs", "create", "A", "--command", "echo hello", "--id", "a").stdout.strip()

    run_once(root)

    async def body(session):
        logs = payload(await session.call_tool("job_logs", {"job_id": job_id}))
        waited = payload(await session.call_tool("job_wait", {"job_ids": [job_id], "timeout": 5}))
        resumed = payload(await session.call_tool("job_resume", {"name": "tick"}))
        bad = await session.call_tool("job_wait", {"job_ids": [job_id], "timeout": 999})
        return logs, waited, resumed, error_text(bad)

    logs, waited, resumed, bad = run_session(root, body)
    assert "hello" in logs["text"] and logs["offset"] > 0
    assert waited == {"done": True, "states": {"a": "succeeded"}}
    assert resumed["state"] == "enabled"
    assert "timeout" in bad and "\n" not in bad.strip()


def test_a_mistyped_argument_is_one_sentence(root):
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
