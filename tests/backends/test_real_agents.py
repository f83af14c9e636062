"""The real agent CLIs, end to end through their presets' exact argv, against one loopback
stand-in model server (fixtures/model_stub.py) that speaks the four wire formats; and the MCP
server with the four real clients, registered as docs/agents-and-mcp.md says. Each test is
skipped where its CLI is not installed (.ci/run installs them from npm into .ci/node).

The presets do not change for the tests: each test sets HOME (where every CLI keeps its config
and sessions) and the variables a user would set to point a CLI at a model server."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import FIXTURES, rw, wait_for
from runner_helpers import read, run_once

pytestmark = pytest.mark.slow  # a long reliability suite: ./dev test -m 'not slow' leaves it out

CLIS = ("claude", "codex", "gemini", "opencode")


def installed(name: str) -> bool:
    return shutil.which(name) is not None


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """The stand-in model server on a free loopback port, and its request log."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path / "requests.jsonl"
    server = subprocess.Popen(
        [sys.executable, str(FIXTURES / "model_stub.py"), str(port), str(log)]
    )

    def up() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    wait_for(up, what="the stand-in model server")
    yield port, log
    server.terminate()
    server.wait(timeout=10)


def _claude(home: Path, port: int, env: Callable[[str, str], None]) -> None:
    env("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{port}")
    env("ANTHROPIC_API_KEY", "sk-stand-in")
    env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
    env("DISABLE_TELEMETRY", "1")


def _codex(home: Path, port: int, env: Callable[[str, str], None]) -> None:
    (home / ".codex").mkdir()
    (home / ".codex" / "config.toml").write_text(
        'model = "stub-model"\nmodel_provider = "stub"\n\n[model_providers.stub]\n'
        f'name = "stub"\nbase_url = "http://127.0.0.1:{port}/v1"\nwire_api = "responses"\n'
        'env_key = "STUB_API_KEY"\n\n[analytics]\nenabled = false\n'
    )
    env("STUB_API_KEY", "stand-in")


def _gemini(home: Path, port: int, env: Callable[[str, str], None]) -> None:
    (home / ".gemini").mkdir()
    settings = {"security": {"auth": {"selectedType": "gemini-api-key"}}}
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
    env("GOOGLE_GEMINI_BASE_URL", f"http://127.0.0.1:{port}")
    env("GEMINI_API_KEY", "stand-in")
    env("GEMINI_MODEL", "gemini-2.5-flash")  # no routing call of the "auto" model


def _opencode(home: Path, port: int, env: Callable[[str, str], None]) -> None:
    provider = {
        "npm": "@ai-sdk/openai-compatible",
        "name": "Stand-in",
        "options": {"baseURL": f"http://127.0.0.1:{port}/v1", "apiKey": "stand-in"},
        "models": {"stub-model": {"name": "Stand-in"}},
    }
    config = {
        "provider": {"stub": provider},
        "model": "stub/stub-model",
        "small_model": "stub/stub-model",
        "autoupdate": False,
        "share": "disabled",
    }
    env("OPENCODE_CONFIG_CONTENT", json.dumps(config))


SETUP = {"claude": _claude, "codex": _codex, "gemini": _gemini, "opencode": _opencode}


@pytest.fixture(params=CLIS)
def cli(request, stub, tmp_path, monkeypatch) -> Iterator[tuple[str, Path]]:
    """One real CLI, set up as a user would to reach the stand-in; its name and request log."""
    name = request.param
    if not installed(name):
        pytest.skip(f"the {name} CLI is not installed (.ci/run installs it from npm)")
    port, log = stub
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for key in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(key, raising=False)
    SETUP[name](home, port, monkeypatch.setenv)
    yield name, log


def _requests(log: Path) -> list[dict]:
    """The model requests of agent turns (not a title or routing call)."""
    found = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return [r for r in found if "title generator" not in json.dumps(r["body"])[:4000]]


def _turns(request: dict) -> int:
    """How many conversation entries a request carries (a resumed session carries more)."""
    body = request["body"]
    return len(body.get("messages") or body.get("input") or body.get("contents") or [])


def _template(root: Path, name: str, backend: str, continuity: str) -> None:
    rw(
        "jobs",
        "create",
        name,
        "--path",
        ".",
        "--backend",
        backend,
        "--cron",
        "@yearly",
        "--continuity",
        continuity,
        "--prompt",
        f"Prepare the {name} brief.",
    )


def _fire(root: Path, name: str) -> str:
    wait_for(
        lambda: rw("jobs", "run", name, ok=False).exit_code == 0, what="a fire in a new second"
    )
    run_id = sorted(p.stem for p in (root / ".repowire/jobs").glob(f"{name}-*.yaml"))[-1]
    run_once(root)
    return run_id


def _log(root: Path, run_id: str) -> str:
    return (root / f".repowire/jobs/{run_id}.log").read_text()


def test_a_preset_runs_reports_and_resumes_with_its_real_cli(root, cli):
    backend, log = cli
    _template(root, "steady", backend, "resume")
    first = _fire(root, "steady")
    one = read(root, first)
    assert one["state"] == "succeeded", _log(root, first)
    asked = _requests(log)
    assert any("Prepare the steady brief." in json.dumps(r["body"]) for r in asked)
    assert one["result_summary"].startswith("Stand-in reply"), one
    assert rw("jobs", "result", first).stdout.startswith("Stand-in reply")
    assert one["session_id"], one
    usage = one["usage"]  # read from the real CLI's own report of the stand-in's counts
    assert usage["input_tokens"] >= 120 and usage["output_tokens"] >= 12, usage
    turns = _turns(asked[-1])
    second = _fire(root, "steady")
    two = read(root, second)
    assert two["state"] == "succeeded", _log(root, second)
    assert two["session_id"] == one["session_id"]
    assert any("resuming session" in n["text"] for n in two["notes"])
    assert _turns(_requests(log)[-1]) > turns  # the first conversation came along
    # each run's own usage (codex reports a resumed thread's running total: the first run's
    # part is taken off)
    assert two["usage"]["output_tokens"] == one["usage"]["output_tokens"], (one, two)


def test_continuity_fresh_starts_a_new_session(root, cli):
    backend, log = cli
    _template(root, "each", backend, "fresh")
    one = read(root, _fire(root, "each"))
    turns = _turns(_requests(log)[-1])
    two = read(root, _fire(root, "each"))
    assert one["state"] == two["state"] == "succeeded"
    assert two["session_id"] != one["session_id"]
    assert not any("resuming session" in n["text"] for n in two["notes"])
    assert _turns(_requests(log)[-1]) == turns


# What each CLI says when the stand-in sends an error event in a 200 stream. gemini is left
# out: it retries such a stream and then ends either with "Model stream ended without a finish
# reason" or, exit status 0, with an empty answer (a succeeded job noting that the agent ended
# without a final message); it also retries an HTTP 500 for minutes (a job's timeout or
# stall_timeout bounds that). A refused request (HTTP 400) fails it at once.
ERROR_EVENT_WORDS = {
    "claude": "API Error",
    "codex": "failed mid-answer",
    "opencode": "failed mid-answer",
}


@pytest.mark.parametrize("ask", ["STUB-FAIL", "STUB-ERROR-EVENT"])
def test_a_failing_model_reply_fails_the_job_with_the_clis_own_words(root, cli, ask):
    backend, _ = cli
    rw(
        "jobs",
        "create",
        "Refused",
        "--id",
        "refused",
        "--backend",
        backend,
        "--prompt",
        f"{ask}: this request is refused",
    )
    run_once(root)
    record = read(root, "refused")
    if ask == "STUB-ERROR-EVENT" and backend not in ERROR_EVENT_WORDS:  # gemini: either way
        notes = [n["text"] for n in record["notes"]]
        assert "without a finish reason" in (record.get("error") or "") or (
            record["state"] == "succeeded" and "the agent ended without a final message" in notes
        ), (record, _log(root, "refused"))
        return
    assert record["state"] == "failed", _log(root, "refused")
    words = "refuses this request" if ask == "STUB-FAIL" else ERROR_EVENT_WORDS[backend]
    assert words in record["error"], record["error"]


# --- the MCP server with the real clients ---------------------------------------------------

REPOWIRE = str(Path(sys.executable).parent / "repowire")  # `repowire` as installed


def _run(*argv: str, cwd: Path, extra: dict[str, str] | None = None) -> str:
    env = {**os.environ, **(extra or {})}
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)


def _register(name: str, root: Path) -> None:
    """The registration docs/agents-and-mcp.md gives for each CLI, with the project's root."""
    home = Path.home()
    if name == "claude":
        _run(
            "claude",
            "mcp",
            "add",
            "-s",
            "user",
            "repowire",
            "--",
            REPOWIRE,
            "--root",
            str(root),
            "mcp",
            cwd=root,
        )
        (home / ".claude").mkdir(exist_ok=True)
        (home / ".claude" / "settings.json").write_text(
            json.dumps({"permissions": {"allow": ["mcp__repowire"]}})
        )
    elif name == "gemini":
        _run(
            "gemini",
            "mcp",
            "add",
            "-s",
            "user",
            "--trust",
            "repowire",
            REPOWIRE,
            "--root",
            str(root),
            "mcp",
            cwd=root,
        )
    elif name == "codex":
        _run(
            "codex", "mcp", "add", "repowire", "--", REPOWIRE, "--root", str(root), "mcp", cwd=root
        )
        config = home / ".codex" / "config.toml"
        text = config.read_text()
        assert "[mcp_servers.repowire]\n" in text, text
        config.write_text(
            text.replace(
                "[mcp_servers.repowire]\n",
                "[mcp_servers.repowire]\nrequired = true\n"
                'default_tools_approval_mode = "approve"\n',
            )
        )
    else:
        block = {
            "type": "local",
            "command": [REPOWIRE, "--root", str(root), "mcp"],
            "enabled": True,
        }
        (root / "opencode.json").write_text(json.dumps({"mcp": {"repowire": block}}))


def _codex_tools(folder: Path) -> list[str]:
    """The tools codex's app-server lists for the repowire server (JSON-RPC on stdio)."""
    proc = subprocess.Popen(
        ["codex", "app-server"],
        cwd=folder,
        env=os.environ,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        requests = [
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {"clientInfo": {"name": "test", "version": "1"}},
            },
            {"jsonrpc": "2.0", "method": "initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "mcpServerStatus/list", "params": {}},
        ]
        for request in requests:
            proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        for line in proc.stdout:
            message = json.loads(line)
            if message.get("id") == 2:
                servers = {s["name"]: s for s in message["result"]["data"]}
                return sorted(servers["repowire"]["tools"])
        return []
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdin.close()
        proc.stdout.close()


def test_the_readme_registration_connects_and_a_job_reports_on_itself(root, cli):
    backend, requests = cli
    worker = root / "workers" / "tidy"
    worker.mkdir(parents=True)
    _register(backend, root)
    if backend == "codex":
        assert "job_update" in _codex_tools(worker)
    else:
        extra = {"GEMINI_CLI_TRUST_WORKSPACE": "true"} if backend == "gemini" else {}
        listed = _run(backend, "mcp", "list", cwd=worker, extra=extra)
        assert re.search(r"repowire.*connected", listed, re.IGNORECASE), listed
    rw(
        "jobs",
        "create",
        "Self report",
        "--id",
        "self-report",
        "--backend",
        backend,
        "--path",
        "workers/tidy",
        "--prompt",
        "STUB-CALL job_update",
    )
    run_once(root)
    record = read(root, "self-report")
    log = (root / ".repowire/jobs/self-report.log").read_text()
    assert record["state"] == "succeeded", log
    offered = [
        json.dumps(json.loads(line)["body"].get("tools"))[:3000]
        for line in requests.read_text().splitlines()
    ]
    assert any(n["text"] == "called by the stand-in" for n in record["notes"]), (log, offered)
