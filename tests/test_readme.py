"""The README's commands stay true: the two set-up commands are run for real."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"## Two commands.*?```sh\n(.*?)```", text, re.S)
    assert block, "the README's 'Two commands' block is missing"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_gives_two_commands():
    assert _readme_commands() == ["./dev demo", "./dev test"]


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    assert "./dev test" in ci


def test_demo_command_runs_the_example_jobs(tmp_path):
    """`./dev demo`, with the environment the test already has instead of a new .venv."""
    env = {**os.environ, "DEV_NO_INSTALL": "1", "REPOWIRE_VENV": sys.prefix}
    env.pop("REPOWIRE_ROOT", None)
    copy = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO), str(copy)], check=True)
    for name in ("dev", ".repowire"):  # the working tree's version, committed or not
        subprocess.run(["cp", "-R", str(REPO / name), str(copy)], check=True)
    before = _snapshot(copy / ".repowire")
    done = subprocess.run(
        ["./dev", "demo"], cwd=copy, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "succeeded" in done.stdout and "hello" in done.stdout
    assert "queued" not in done.stdout.split("JOBS", 1)[1]
    assert "job records and" in done.stdout  # the result file printed
    assert "Next, in a project of your own" in done.stdout  # and what to try next
    shown = (done.stdout + done.stderr).splitlines()
    alarming = [line for line in shown if re.search(r"\b(failed|error)\b", line, re.I)]
    assert not alarming, alarming  # a newcomer's first run shows nothing gone wrong
    log = copy / ".demo/.repowire/jobs/hello.log"
    assert "notified: hello is succeeded" in log.read_text()  # the offline notification ran
    assert _snapshot(copy / ".repowire") == before  # the checkout's examples stay as they were


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
