"""The real Claude Code CLI, end to end through the claude preset, against a loopback stand-in
of its model API (fixtures/anthropic_stub.py). Skipped where `claude` is not installed."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, rw, wait_for
from runner_helpers import read, run_once

CLAUDE = shutil.which("claude")
pytestmark = pytest.mark.skipif(
    CLAUDE is None, reason="the claude CLI is not installed (npm install @anthropic-ai/claude-code)"
)


@pytest.fixture
def model_api(tmp_path, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path / "requests.jsonl"
    server = subprocess.Popen(
        [sys.executable, str(FIXTURES / "anthropic_stub.py"), str(port), str(log)]
    )
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # the CLI keeps its sessions here
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-stand-in")
    monkeypatch.setenv("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
    monkeypatch.setenv("DISABLE_TELEMETRY", "1")

    def up() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    wait_for(up, what="the stand-in model API")
    yield log
    server.terminate()
    server.wait(timeout=10)


def _requests(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_claude_preset_runs_resumes_and_reports(root, model_api):
    rw(
        "jobs",
        "create",
        "Daily brief",
        "--path",
        ".repowire/agents/daily-brief",
        "--backend",
        "claude",
        "--cron",
        "@daily",
        "--prompt",
        "Prepare the brief.",
    )
    first = rw("jobs", "run", "daily-brief").stdout.strip()
    run_once(root)
    one = read(root, first)
    assert one["state"] == "succeeded", (one, (root / f".repowire/jobs/{first}.log").read_text())
    assert one["result_summary"].startswith("Stand-in reply") and one["session_id"]
    assert "the brief is ready" in rw("jobs", "result", first).stdout
    usage = one["usage"]  # read from the real CLI's JSON: the stand-in's token counts
    assert usage["input_tokens"] >= 10 and usage["output_tokens"] >= 8, usage
    assert "cost_usd" in usage and usage["model"], usage
    fresh_messages = _requests(model_api)[-1]["messages"]
    wait_for(lambda: rw("jobs", "run", "daily-brief", ok=False).exit_code == 0, what="a new second")
    second = sorted(p.stem for p in (root / ".repowire/jobs").glob("daily-brief-*.yaml"))[-1]
    run_once(root)
    two = read(root, second)
    assert two["state"] == "succeeded" and two["session_id"] == one["session_id"]
    assert any("resuming session" in n["text"] for n in two["notes"])
    # the resumed request carries the first conversation: the session really continued
    assert _requests(model_api)[-1]["messages"] > fresh_messages
    assert os.environ["ANTHROPIC_BASE_URL"].startswith("http://127.0.0.1:")
