"""The real agent CLIs, end to end through their presets' exact argv, against one loopback
stand-in model server (fixtures/model_stub.py) that speaks the four wire formats. Each test is
skipped where its CLI is not installed (.ci/run installs them from npm into .ci/node).

The presets do not change for the tests: each test sets HOME (where every CLI keeps its config
and sessions) and the variables a user would set to point a CLI at a model server."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import FIXTURES, rw, wait_for
from runner_helpers import read, run_once

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


def test_a_failing_model_reply_fails_the_job_with_the_clis_own_words(root, cli):
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
        "STUB-FAIL: this request is refused",
    )
    run_once(root)
    record = read(root, "refused")
    assert record["state"] == "failed", _log(root, "refused")
    assert "refuses this request" in record["error"], record["error"]
