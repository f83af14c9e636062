"""Agent backends: presets run the fake CLIs in fixtures/bin; prompts never meet a shell."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from conftest import FIXTURES, assert_clean_error, rw, wait_for
from runner_helpers import read, run_once, set_config

from repowire.backends.presets import PRESETS, build_argv, final_message, find_session_id
from repowire.record.job import Job

PRESET_NAMES = ["codex", "claude", "gemini", "opencode"]


@pytest.fixture
def agents_on_path(root, monkeypatch, tmp_path):
    """The fake agent CLIs first on PATH, each run recorded in a log."""
    monkeypatch.setenv("PATH", f"{FIXTURES / 'bin'}{os.pathsep}{os.environ['PATH']}")
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("FAKE_AGENT_LOG", str(calls))
    set_config(root, "kill_grace: 1s\n")
    return calls


def _calls(path):
    return [line.split(" ", 2) for line in path.read_text().splitlines()] if path.exists() else []


def _next_run(name):
    wait_for(lambda: rw("jobs", "run", name, ok=False).exit_code == 0, what="a new second")
    jobs = json.loads(rw("jobs", "list", "--template", name, "--json").stdout)["jobs"]
    return sorted(j["id"] for j in jobs)[-1]


@pytest.mark.parametrize("backend", PRESET_NAMES)
def test_preset_fresh_then_resumed_with_result(root, agents_on_path, backend):
    rw(
        "jobs",
        "create",
        "Daily brief",
        "--path",
        ".repowire/agents/daily-brief",
        "--backend",
        backend,
        "--cron",
        "@daily",
        "--prompt",
        "Prepare the brief.",
    )
    first = rw("jobs", "run", "daily-brief").stdout.strip()
    run_once(root)
    one = read(root, first)
    assert one["state"] == "succeeded", one
    assert one["result_summary"] == "Done: Prepare the brief."
    assert "Done: Prepare the brief." in rw("jobs", "result", first).stdout
    assert (
        root / f".repowire/jobs/{first}.result.md"
    ).read_text().strip() == "Done: Prepare the brief."
    session = one["session_id"]
    assert session and _calls(agents_on_path) == [[backend, session, "Prepare the brief."]]
    second = _next_run("daily-brief")
    run_once(root)
    two = read(root, second)
    assert two["state"] == "succeeded" and two["session_id"] == session
    assert any(f"resuming session {session}" in n["text"] for n in two["notes"])
    assert _calls(agents_on_path)[-1] == [backend, session, "Prepare the brief."]


@pytest.mark.parametrize("backend", PRESET_NAMES)
def test_rejected_resume_fails_with_the_cli_message_then_starts_fresh(
    root, agents_on_path, backend
):
    rw("agents", "create", "w", "--cron", "@daily", "--backend", backend, "--prompt", "go")
    (root / ".repowire/agents/w/state.yaml").write_text("session_id: expired\n")
    first = rw("jobs", "run", "w").stdout.strip()
    run_once(root)
    failed = read(root, first)
    assert failed["state"] == "failed" and failed["error"].startswith("exit status 1: ")
    assert "expired" in failed["error"]
    second = _next_run("w")
    run_once(root)
    fresh = read(root, second)
    assert fresh["state"] == "succeeded" and fresh["session_id"] != "expired"
    assert any("starting fresh" in n["text"] for n in fresh["notes"])


@pytest.mark.parametrize("backend", PRESET_NAMES)
def test_agent_without_session_or_final_message(root, agents_on_path, monkeypatch, backend):
    monkeypatch.setenv("FAKE_AGENT_MODE", "silent")
    job_id = rw("jobs", "create", "quiet", "--backend", backend, "--prompt", "x").stdout.strip()
    run_once(root)
    record = read(root, job_id)
    assert record["state"] == "succeeded" and "result_summary" not in record
    assert any("without a final message" in n["text"] for n in record["notes"])
    monkeypatch.setenv("FAKE_AGENT_MODE", "nosession")
    other = rw("jobs", "create", "anon", "--backend", backend, "--prompt", "y").stdout.strip()
    run_once(root)
    assert read(root, other)["state"] == "succeeded"


def test_prompt_never_reaches_a_shell(root, agents_on_path):
    hostile = "$(touch pwned) ; rm -rf x `touch pwned2` && echo 'quoted' \"too\" -- --help"
    (root / "x").mkdir()
    job_id = rw(
        "jobs", "create", "hostile", "--backend", "codex", "--prompt", hostile
    ).stdout.strip()
    run_once(root)
    assert read(root, job_id)["state"] == "succeeded"
    assert _calls(agents_on_path)[0][2] == hostile
    assert not (root / "pwned").exists() and not (root / "pwned2").exists()
    assert (root / "x").is_dir()


def test_configured_backend_with_stdin_and_placeholders(root, agents_on_path, tmp_path):
    script = tmp_path / "mycli.sh"
    script.write_text('#!/bin/sh\necho "job=$1 file=$2"\necho "session: s-42"\ncat\n')
    script.chmod(0o755)
    set_config(
        root,
        yaml.safe_dump(
            {
                "backends": {
                    "mine": {
                        "command": [str(script), "{job_id}", "{prompt_file}"],
                        "stdin": True,
                        "session_id_pattern": r"session: (\S+)",
                    }
                }
            }
        ),
    )
    (root / "w").mkdir()
    (root / "w/ask.md").write_text("the ask\non two lines")
    rw(
        "jobs",
        "create",
        "m",
        "--backend",
        "mine",
        "--path",
        "w",
        "--prompt-file",
        "ask.md",
        "--id",
        "m",
    )
    run_once(root)
    record = read(root, "m")
    assert record["state"] == "succeeded" and record["session_id"] == "s-42"
    log = (root / ".repowire/jobs/m.log").read_text()
    assert f"job=m file={root / 'w/ask.md'}" in log and "the ask\non two lines" in log
    assert record["result_summary"] == "on two lines"
    assert not list((root / ".repowire/locks").glob(".prompt-*"))


def test_prompt_file_outside_the_worker_folder_is_refused(root, agents_on_path):
    (root / "w").mkdir()
    (root / "secret.txt").write_text("secret")
    args = ["jobs", "create", "m", "--backend", "codex", "--path", "w", "--prompt-file"]
    assert_clean_error(rw(*args, "../secret.txt", ok=False), says="must stay inside")
    (root / "w" / "link.txt").symlink_to(root / "secret.txt")  # leaves only when followed
    rw(*args, "link.txt", "--id", "m")
    run_once(root)
    record = read(root, "m")
    assert record["state"] == "failed" and "outside the worker folder" in record["error"]
    assert _calls(agents_on_path) == []


def test_missing_program_fails_at_once(root, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    rw("jobs", "create", "c", "--backend", "codex", "--prompt", "x", "--id", "c")
    run_once(root)
    assert read(root, "c")["error"] == "codex: command not found on PATH"


def test_unknown_backend_lists_the_known_ones(root):
    assert_clean_error(
        rw("jobs", "create", "x", "--backend", "codx", "--prompt", "p", ok=False),
        says="known backends: shell, codex, claude, gemini, opencode",
    )


def test_backends_command_lists_presets_and_config(root, agents_on_path):
    set_config(
        root,
        "backends:\n  codex:\n    command: [codex, exec, '{prompt}']\n"
        "  mine:\n    command: [not-installed-xyz, '{prompt}']\n",
    )
    rows = {r["name"]: r for r in json.loads(rw("backends", "--json").stdout)}
    assert set(rows) == {"shell", "codex", "claude", "gemini", "opencode", "mine"}
    assert rows["codex"]["command"] == ["codex", "exec", "{prompt}"]
    assert rows["codex"]["source"] == "preset, overridden in config.yaml"
    assert rows["codex"]["resume_command"][:3] == ["codex", "exec", "resume"]
    assert rows["claude"]["session_id"] == "chosen up front" and rows["claude"]["installed"]
    assert not rows["mine"]["installed"]
    assert "NOT on PATH" in rw("backends").stdout


def test_pure_pieces():
    job = Job(id="j", backend="claude", prompt="p")
    argv = build_argv(
        job,
        PRESETS["claude"],
        {"prompt": "-rf /", "session_id": "u", "job_id": "j", "result_file": "r"},
        resume=False,
    )
    assert argv[-2:] == ["--", "-rf /"] and "--session-id" in argv
    out = '{"type":"thread.started","thread_id":"t1"}\n'
    assert find_session_id(PRESETS["codex"], out) == "t1"
    assert final_message(PRESETS["gemini"], 'noise\n{\n "response": "hi"\n}\n') == "hi"
    assert final_message(PRESETS["claude"], "no json here") is None
