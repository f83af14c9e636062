"""The MCP server with the four real agent CLIs, registered as the README tells users: each
reports the server connected (codex through its app-server's tool listing), and inside a real
job run in a worker subfolder, the agent's `job_update` call with only a note lands on its own
job. The stand-in model server asks for the tool call (fixtures/model_stub.py, STUB-CALL)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import rw
from runner_helpers import read, run_once
from test_real_agents import cli, stub  # noqa: F401 (fixtures: the CLIs, the stand-in)

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
    """The README's registration for each CLI, with the project's root."""
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
                '[mcp_servers.repowire]\nrequired = true\ndefault_tools_approval_mode = "approve"\n',
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
