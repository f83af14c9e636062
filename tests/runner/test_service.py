"""Keeping a runner running: the systemd user unit (verified where systemd-analyze exists) and the
launchd agent (its text, parsed as a property list; macOS itself is not tested here)."""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys

import pytest
from conftest import assert_clean_error, rw

from repowire.runner.service import service_for


def test_the_unit_runs_this_roots_runner_and_restarts_it(root):
    text = rw("runner", "install", "--print").stdout
    assert f"ExecStart={sys.executable} -m repowire --root {root} runner" in text
    assert f"WorkingDirectory={root}" in text
    for line in ("Restart=on-failure", "WantedBy=default.target", "KillMode=process"):
        assert line in text.splitlines()
    assert any(line.startswith("Environment=PATH=") for line in text.splitlines())
    assert not (root / ".config").exists()  # --print writes nothing


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not here")
def test_systemd_accepts_the_unit(root, tmp_path):
    unit = tmp_path / "repowire-test.service"
    unit.write_text(rw("runner", "install", "--print").stdout)
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    done = subprocess.run(
        ["systemd-analyze", "verify", "--user", str(unit)],
        capture_output=True,
        text=True,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
    )
    assert done.returncode == 0, done.stderr


def test_install_writes_the_unit_and_uninstall_removes_it(root, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # trust and units go here
    rw("trust")
    installed = rw("runner", "install")
    path = service_for(root).path
    assert path.is_file() and str(path).startswith(str(tmp_path / "config" / "systemd" / "user"))
    assert f"wrote {path}" in installed.stdout
    assert "started" in installed.stdout or "not started" in installed.stderr  # no user bus here
    rw("runner", "uninstall")
    assert not path.exists()
    assert_clean_error(rw("runner", "uninstall", ok=False), says="no service is installed")


def test_a_launchd_agent_on_macos(root):
    service = service_for(root, "darwin")
    plist = plistlib.loads(service.text.encode())
    assert plist["ProgramArguments"] == [
        sys.executable,
        "-m",
        "repowire",
        "--root",
        str(root),
        "runner",
    ]
    assert plist["RunAtLoad"] is True and plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["Label"] == service.name and service.path.name == f"{service.name}.plist"


def test_runner_options_do_not_go_with_install(root):
    assert_clean_error(rw("runner", "--once", "install", ok=False), code=2, says="go with")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a systemd unit: Linux")
def test_an_install_that_cannot_start_the_service_says_how_to(root, tmp_path, monkeypatch):
    """Without a user service manager (here: no systemctl on PATH) the unit is written and the
    warning gives the commands that start it, not just "start it by hand"."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    rw("trust")
    installed = rw("runner", "install")
    unit = service_for(root).path.name
    assert "not started (systemctl is not on PATH)" in installed.stderr
    assert f"systemctl --user enable --now {unit}" in installed.stderr
    assert "runner' by hand" in installed.stderr
    rw("runner", "uninstall", ok=False)  # nothing to stop without systemctl: the file goes
