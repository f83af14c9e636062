"""Local executors: spawn in a new session, record identity, check liveness, release the group.

A tiny /bin/sh wrapper runs the command and writes its exit status to <id>.exit (atomically, by
rename), so the status survives even when no runner is alive when the executor ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil

__all__ = [
    "Launch",
    "Executor",
    "LocalExecutor",
    "describe_status",
    "read_exit_file",
    "process_identity",
    "same_process",
    "WRAPPER_NAME",
]

WRAPPER_NAME = "repowire-executor"
# $1 is the exit file; $2 says whether the rest is a shell command string ("sh", run in a
# subshell of the wrapper, which saves starting a second shell) or an argv. The status goes to
# a temp file first, then is renamed into place, so a reader never sees half of it.
_WRAPPER = r"""
exit_file=$1; mode=$2; shift 2
if [ "$mode" = sh ]; then (cmd=$1; shift; eval "$cmd"); else "$@"; fi
rc=$?
set -C  # never write through a file or link planted at the temp name
printf '%s\n' "$rc" > "$exit_file.tmp.$$" && mv -f "$exit_file.tmp.$$" "$exit_file"
exit "$rc"
"""
HOST = socket.gethostname()


@dataclass
class Launch:
    """What to run for one attempt of a job, and where its output and status go."""

    argv: list[str]
    cwd: Path
    env: dict[str, str]
    log: Path
    exit_file: Path
    stdin: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Executor(Protocol):
    """Where an executor runs. The record's `executor` mapping is the handle."""

    def start(self, launch: Launch) -> dict[str, Any]:
        """Start the attempt; return the identity to keep in the record."""

    def alive(self, handle: dict[str, Any]) -> bool:
        """Whether anything of this attempt still runs."""

    def owns(self, handle: dict[str, Any]) -> bool:
        """Whether this executor can judge the handle (same host, same kind)."""

    def signal(self, handle: dict[str, Any], force: bool) -> None:
        """Ask the attempt to stop (SIGTERM), or make it (SIGKILL)."""

    def returncode(self, handle: dict[str, Any]) -> int | None:
        """The attempt's status when this executor saw it end itself; None when it cannot tell."""

    def forget(self, handle: dict[str, Any]) -> None:
        """Drop what this executor keeps about an attempt that is over."""


def process_identity(pid: int) -> float | None:
    """The process start time, which tells a process from a later one that reused its pid."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def same_process(pid: int, start_time: float | None) -> bool:
    """Whether pid is still the process that started at start_time (and is not a zombie)."""
    if pid <= 1 or start_time is None:
        return False
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - start_time) < 0.01 and proc.status() != "zombie"
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def group_alive(pgid: int) -> bool:
    """Whether any process of the group lives; a group is judged whole, not by its leader."""
    if pgid <= 1:
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Something of the group exists; make sure it is more than zombies. The leader is the
    # usual answer; a full scan covers a leader that ended while its children live on.
    with contextlib.suppress(psutil.Error):
        if _in_group(psutil.Process(pgid), pgid):
            return True
    return any(_in_group(p, pgid) for p in psutil.process_iter())


def _in_group(proc: psutil.Process, pgid: int) -> bool:
    try:
        return os.getpgid(proc.pid) == pgid and proc.status() != "zombie"
    except (ProcessLookupError, psutil.Error):
        return False


class LocalExecutor:
    """Executors as local processes, each the leader of its own session and process group."""

    kind = "local"

    def __init__(self) -> None:
        self.children: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, launch: Launch) -> dict[str, Any]:
        if (
            "/" not in launch.argv[0]
            and shutil.which(launch.argv[0], path=launch.env.get("PATH")) is None
        ):
            raise FileNotFoundError(f"{launch.argv[0]}: command not found on PATH")
        with contextlib.suppress(FileNotFoundError):
            launch.exit_file.unlink()  # a stale status must never be read as this attempt's
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        with os.fdopen(os.open(launch.log, flags, 0o644), "ab") as log:
            stdin = open(launch.stdin, "rb") if launch.stdin else subprocess.DEVNULL
            try:
                shell = len(launch.argv) == 3 and launch.argv[:2] == ["/bin/sh", "-c"]
                command = ["sh", launch.argv[2]] if shell else ["argv", *launch.argv]
                proc = subprocess.Popen(
                    ["/bin/sh", "-c", _WRAPPER, WRAPPER_NAME, str(launch.exit_file), *command],
                    cwd=launch.cwd,
                    env=launch.env,
                    stdin=stdin,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                    close_fds=True,
                )
            finally:
                if launch.stdin:
                    stdin.close()  # type: ignore[union-attr]
        self.children[proc.pid] = proc
        return {
            "kind": self.kind,
            "pid": proc.pid,
            "pgid": proc.pid,
            "start_time": process_identity(proc.pid),
            "host": HOST,
        }

    def owns(self, handle: dict[str, Any]) -> bool:
        return handle.get("kind", "local") == self.kind and handle.get("host") == HOST

    def alive(self, handle: dict[str, Any]) -> bool:
        self.reap()
        return group_alive(int(handle.get("pgid") or handle.get("pid") or 0))

    def signal(self, handle: dict[str, Any], force: bool) -> None:
        pgid = int(handle.get("pgid") or 0)
        if pgid > 1:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL if force else signal.SIGTERM)

    def returncode(self, handle: dict[str, Any]) -> int | None:
        """The wrapper's own status when this process spawned it and it has ended."""
        proc = self.children.get(int(handle.get("pid") or 0))
        return None if proc is None else proc.poll()

    def reap(self) -> None:
        """Collect ended children, so none lingers as a zombie."""
        for proc in self.children.values():
            proc.poll()

    def forget(self, handle: dict[str, Any]) -> None:
        self.children.pop(int(handle.get("pid") or 0), None)

    def lost_reason(self, handle: dict[str, Any]) -> str | None:
        return None  # a local process that vanished leaves no account of itself

    def find(self, job_id: str) -> dict[str, Any] | None:
        return None


def read_exit_file(path: Path) -> int | None:
    """The status the wrapper wrote, or None if there is none (yet)."""
    try:
        if path.is_symlink():
            return None
        text = path.read_text().strip()
    except (FileNotFoundError, IsADirectoryError):
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
