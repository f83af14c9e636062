"""The executor interface: what every place that runs attempts (local, Slurm) must do.

An attempt is started from a Launch and named by a Handle (handles.py) kept in the record. Its
exit status is written by the attempt itself to <id>.exit, so it survives even when no runner is
alive when the attempt ends.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from repowire.errors import ValidationError
from repowire.files import open_file
from repowire.record.handle import Handle, RootRef

__all__ = [
    "HOST",
    "Launch",
    "Executor",
    "base_environment",
    "describe_status",
    "read_exit_file",
]

HOST = socket.gethostname()


@dataclass
class Launch:
    """What to run for one attempt of a job, and where its output and status go."""

    job_id: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    log: Path
    exit_file: Path
    stdin: Path | None = None  # a file whose bytes become the attempt's standard input
    session_id: str | None = None  # a session id chosen up front for a fresh agent session
    slurm: dict[str, Any] = field(default_factory=dict)  # sbatch options, for executor: slurm


def base_environment() -> dict[str, str]:
    """What every executor's environment starts from: ours, with our interpreter's folder on
    PATH (so `repowire` works inside the executor)."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = os.pathsep.join(filter(None, [bin_dir, env.get("PATH")]))
    return env


class Executor(Protocol):
    """Starts attempts of one kind, and judges, stops and finds them afterwards."""

    kind: str

    def start(self, launch: Launch, claim: Handle) -> Handle:
        """Start the attempt; return the claim with what was started filled in."""

    def owns(self, handle: Handle) -> bool:
        """Whether this executor can judge the handle from here (its kind; local: this host)."""

    def is_same(self, handle: Handle) -> bool:
        """Whether the attempt the handle names still runs (not a later process reusing a pid)."""

    def alive(self, handle: Handle) -> bool:
        """Whether anything of the attempt still runs; a release lasts until this is False."""

    def release(self, handle: Handle, force: bool) -> None:
        """Ask the attempt to stop (SIGTERM to all of it), or make it (SIGKILL)."""

    def exit_status(self, handle: Handle) -> int | None:
        """The status when this executor saw the attempt end itself; None when it cannot tell."""

    def lost_reason(self, handle: Handle) -> str | None:
        """Why an attempt that left no exit status ended, where the executor knows."""

    def find(self, job_id: str, exit_file: Path, root: RootRef) -> Handle | None:
        """An attempt started for this job of this root whose handle was never recorded."""

    def forget(self, handle: Handle) -> None:
        """Drop what this executor keeps about an attempt that is over."""


def read_exit_file(path: Path) -> int | None:
    """The status the attempt wrote, or None if there is none (yet) or it is not a number."""
    try:
        with open_file(path) as handle:
            text = handle.read(64).decode("ascii", errors="replace").strip()
    except FileNotFoundError:
        return None
    except (ValidationError, OSError):  # a link, a folder or a FIFO at the name: no status
        return None
    try:
        return int(text)
    except ValueError:
        return None


def describe_status(code: int) -> str:
    """'exit status 3', 'killed by signal 9' (a shell reports a signal N as 128+N)."""
    if code < 0:
        return f"killed by signal {-code} ({_signal_name(-code)})"
    if code > 128 and code - 128 < 65:
        return f"killed by signal {code - 128} ({_signal_name(code - 128)})"
    if code == 127:
        return "exit status 127 (command not found)"
    if code == 126:
        return "exit status 126 (command not executable)"
    return f"exit status {code}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"
