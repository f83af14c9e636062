"""Keeping a runner running: a systemd user unit on Linux, a launchd agent on macOS.

The service runs `repowire runner` for one root, restarts it when it fails, and starts it at
login. `install` writes the file and asks the service manager to start it; `uninstall` stops it
and removes the file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from repowire.errors import RepowireError
from repowire.files import atomic_write
from repowire.ids import slugify

__all__ = ["Service", "service_for"]


@dataclass(frozen=True)
class Service:
    """The service file of one root: where it goes, what it says, and how to start it."""

    name: str
    path: Path
    text: str
    start: list[list[str]]  # commands that load and start it
    stop: list[list[str]]  # commands that stop and unload it


def _name(root: Path) -> str:
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:8]
    return f"repowire-{slugify(root.name, 40)}-{digest}"


def _environment() -> dict[str, str]:
    """What the runner needs from this shell: PATH (agent CLIs), and where trust is kept."""
    keep = ("PATH", "XDG_CONFIG_HOME", "HOME")
    return {k: os.environ[k] for k in keep if os.environ.get(k)}


def _quoted(word: str) -> str:
    """A word for a systemd command line: double quotes around what has spaces or quotes."""
    if word and not any(c in word for c in " \"\\'$%;"):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


def systemd_unit(root: Path, argv: list[str]) -> str:
    env = "".join(f"Environment={_quoted(f'{k}={v}')}\n" for k, v in sorted(_environment().items()))
    return (
        "[Unit]\n"
        f"Description=repowire runner for {root}\n"
        "After=default.target\n\n"
        "[Service]\n"
        "Type=simple\n"
        f"WorkingDirectory={_quoted(str(root))}\n"
        f"ExecStart={' '.join(_quoted(a) for a in argv)}\n"
        f"{env}"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        "KillMode=process\n"  # executors outlive a restart; the next runner adopts them
        "\n[Install]\n"
        "WantedBy=default.target\n"
    )


def launchd_plist(name: str, root: Path, argv: list[str], log: Path) -> str:
    args = "".join(f"    <string>{escape(a)}</string>\n" for a in argv)
    env = "".join(
        f"    <key>{escape(k)}</key><string>{escape(v)}</string>\n"
        for k, v in sorted(_environment().items())
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
        '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
        '<plist version="1.0">\n<dict>\n'
        f"  <key>Label</key><string>{escape(name)}</string>\n"
        f"  <key>ProgramArguments</key>\n  <array>\n{args}  </array>\n"
        f"  <key>WorkingDirectory</key><string>{escape(str(root))}</string>\n"
        f"  <key>EnvironmentVariables</key>\n  <dict>\n{env}  </dict>\n"
        "  <key>RunAtLoad</key><true/>\n"
        "  <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>\n"
        f"  <key>StandardErrorPath</key><string>{escape(str(log))}</string>\n"
        "</dict>\n</plist>\n"
    )


def service_for(root: Path, platform: str | None = None) -> Service:
    """The service for this root on this platform (linux: systemd; darwin: launchd)."""
    platform = platform or sys.platform
    name = _name(root)
    argv = [sys.executable, "-m", "repowire", "--root", str(root), "runner"]
    if platform.startswith("darwin"):
        path = Path.home() / "Library" / "LaunchAgents" / f"{name}.plist"
        log = root / ".repowire" / "locks" / "runner.log"
        text = launchd_plist(name, root, argv, log)
        return Service(
            name,
            path,
            text,
            [["launchctl", "load", "-w", str(path)]],
            [["launchctl", "unload", "-w", str(path)]],
        )
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    path = base / "systemd" / "user" / f"{name}.service"
    unit = f"{name}.service"
    user = ["systemctl", "--user"]
    return Service(
        name,
        path,
        systemd_unit(root, argv),
        [[*user, "daemon-reload"], [*user, "enable", "--now", unit]],
        [[*user, "disable", "--now", unit]],
    )


def run_all(commands: list[list[str]]) -> str | None:
    """Run the service manager's commands; None when they worked, else why not, in words."""
    for command in commands:
        if shutil.which(command[0]) is None:
            return f"{command[0]} is not on PATH"
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            words = (done.stderr or done.stdout).strip().splitlines()
            return f"'{' '.join(command)}' failed: {words[-1] if words else done.returncode}"
    return None


def install(service: Service) -> str | None:
    """Write the service file and start it; None, or why the service manager did not."""
    try:
        service.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(service.path, service.text)
    except OSError as exc:
        raise RepowireError(f"cannot write {service.path}: {exc.strerror or exc}") from None
    return run_all(service.start)


def uninstall(service: Service) -> str | None:
    """Stop the service and remove its file; None, or why the service manager did not stop it."""
    if not service.path.exists():
        raise RepowireError(f"no service is installed for this root ({service.path})")
    problem = run_all(service.stop)
    service.path.unlink()
    return problem
