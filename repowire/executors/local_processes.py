"""Local executors: each attempt a process group of its own, judged by pid and start time.

A tiny /bin/sh wrapper runs the command and writes its exit status to <id>.exit, so the status
survives even when no runner is alive when the attempt ends. It is one write of a few bytes
into a new file, with the shell's own printf (an external `mv` cost each job a process, about
1.4 ms of CPU here): a reader sees no file, an empty one (no status yet), or the whole status.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

import psutil

from repowire.executors.contract import HOST, Launch
from repowire.record.handle import Handle, RootRef

__all__ = [
    "LocalExecutor",
    "Gate",
    "WRAPPER_NAME",
    "process_identity",
    "same_process",
    "group_alive",
]

WRAPPER_NAME = "repowire-executor"
# $0 is "sh", so a shell command's errors read as a shell's own ("sh: 1: x: not found"); $1 marks
# the wrapper for `find`; $2 is the exit file; $3, when set, says the wrapper is gated: it waits
# on stdin for the runner's word that its claim (naming this pid) is written, and if the runner
# stops before saying it, runs the command only if the record $3 names it as running (else it
# ends itself and its subshell, writing no status). $4 says whether the rest is a shell command
# string ("sh", evaluated in the subshell, which saves starting a second shell) or an argv.
# The subshell is made before the word, so the word starts the command with no fork between.
# The status is written last, into a file the runner removed before the start (_prepare).
# The wrapper's own variables are named __repowire_* and unset before the command runs, so a
# job's `env` (or a shell command's own variables) never meets a value of the wrapper's.
_WRAPPER = r"""
__repowire_exit=$2 __repowire_record=$3 __repowire_mode=$4
shift 4
(
  if [ -n "$__repowire_record" ]; then
    if ! IFS= read -r __repowire_word; then
      sync
      grep -qxF 'state: running' "$__repowire_record" &&
        grep -qE "^[[:space:]]+pid: $$\$" "$__repowire_record" || kill -KILL 0
    fi
    exec </dev/null
  fi
  if [ "$__repowire_mode" = sh ]; then
    __repowire_cmd=$1
    shift
    unset __repowire_exit __repowire_record __repowire_mode __repowire_word
    eval "unset __repowire_cmd; $__repowire_cmd"
  else
    unset __repowire_exit __repowire_record __repowire_mode __repowire_word
    exec "$@"
  fi
)
__repowire_rc=$?
set -C  # a new file only: never through a link (the runner removed any earlier status)
printf '%s\n' "$__repowire_rc" > "$__repowire_exit"
exit "$__repowire_rc"
"""


_LOG_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)


class Gate:
    """The runner's end of a started wrapper's gate: `open` lets the command run (said once
    the claim naming the wrapper's pid is durable); `close` without opening leaves it to the
    record (the wrapper runs the command only if the record names it as running)."""

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd

    def open(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):  # the wrapper was killed meanwhile
                os.write(self.fd, b"go\n")
            self.close()

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)


def process_identity(pid: int) -> float | None:
    """The process start time, which tells a process from a later one that reused its pid."""
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


class SpawnClock:
    """The start time of a child spawned between two readings of `now()`, as process_identity
    gives it, without reading /proc while the child execs (a read of /proc/<pid>/stat then
    waits for the exec to end). Linux counts a start time in clock ticks since boot, which
    psutil adds to the boot time; when no tick began between the two readings, the child's
    tick is theirs (the boot time is read each time, as psutil does: it moves when the clock is
    set). Checked against process_identity at the first spawn; elsewhere, when a tick began
    between the readings, or when the check failed, /proc is read."""

    def __init__(self) -> None:
        self.ticks = os.sysconf("SC_CLK_TCK") if hasattr(time, "CLOCK_BOOTTIME") else 0
        self.agrees: bool | None = None  # whether this system counts as above

    def now(self) -> int:
        return time.clock_gettime_ns(time.CLOCK_BOOTTIME) if self.ticks else 0

    def identity(self, pid: int, before: int, after: int) -> float | None:
        if not self.ticks or self.agrees is False:
            return process_identity(pid)
        tick_ns = 10**9 // self.ticks
        if before // tick_ns != after // tick_ns:
            return process_identity(pid)  # a tick began while it was spawned
        known = before // tick_ns / self.ticks + psutil.boot_time()
        if self.agrees is None:  # the first spawn: read, and compare
            read = process_identity(pid)
            self.agrees = known == read
            return read
        return known


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


def _prepare(launch: Launch) -> None:
    """What must hold before a wrapper is started or told: its program is there, and no
    stale status is left."""
    program = launch.argv[0]
    if "/" not in program and shutil.which(program, path=launch.env.get("PATH")) is None:
        raise FileNotFoundError(f"{program}: command not found on PATH")
    with contextlib.suppress(FileNotFoundError):
        launch.exit_file.unlink()  # a stale status must never be read as this attempt's


def _arguments(launch: Launch, record: Path | None) -> list[str]:
    """The wrapper's arguments after its name: exit file, record (gated), and the command."""
    shell = len(launch.argv) == 3 and launch.argv[:2] == ["/bin/sh", "-c"]
    command = ["sh", launch.argv[2]] if shell else ["argv", *launch.argv]
    return [str(launch.exit_file), str(record or ""), *command]


class LocalExecutor:
    """Attempts as local processes, each the leader of its own session and process group."""

    kind = "local"

    def __init__(self) -> None:
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self.clock = SpawnClock()

    def start(self, launch: Launch, claim: Handle) -> Handle:
        return self._start(launch, claim, None, None)

    def start_gated(self, launch: Launch, claim: Handle, record: Path) -> tuple[Handle, Gate]:
        """Start the wrapper, which runs nothing until the gate (its stdin) opens (see
        _WRAPPER); for a launch with no stdin of its own."""
        if launch.stdin is not None:
            raise ValueError("a gated wrapper's stdin is its gate")
        read_end, write_end = os.pipe()
        try:
            handle = self._start(launch, claim, read_end, record)
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        return handle, Gate(write_end)

    def _start(
        self, launch: Launch, claim: Handle, gate: int | None, record: Path | None
    ) -> Handle:
        _prepare(launch)
        with os.fdopen(os.open(launch.log, _LOG_FLAGS, 0o644), "ab") as log:
            before = self.clock.now()
            proc = self._spawn(launch, log, gate, record)
            after = self.clock.now()
        self.children[proc.pid] = proc
        return claim._replace(
            kind=self.kind,
            host=HOST,
            pid=proc.pid,
            pgid=proc.pid,
            start_time=self.clock.identity(proc.pid, before, after),
        )

    @staticmethod
    def _spawn(
        launch: Launch, log: IO[bytes], gate: int | None, record: Path | None
    ) -> subprocess.Popen[bytes]:
        with contextlib.ExitStack() as stack:
            stdin = stack.enter_context(open(launch.stdin, "rb")) if launch.stdin else None
            return subprocess.Popen(
                ["/bin/sh", "-c", _WRAPPER, "sh", WRAPPER_NAME, *_arguments(launch, record)],
                cwd=launch.cwd,
                env=launch.env,
                stdin=gate if gate is not None else stdin or subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                close_fds=True,
            )

    def owns(self, handle: Handle) -> bool:
        return handle.kind == self.kind and handle.host == HOST

    def is_same(self, handle: Handle) -> bool:
        return same_process(handle.pid or 0, handle.start_time) or self.alive(handle)

    def alive(self, handle: Handle) -> bool:
        self._reap()
        return group_alive(handle.pgid or handle.pid or 0)

    def release(self, handle: Handle, force: bool) -> None:
        pgid = handle.pgid or 0
        if pgid > 1:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL if force else signal.SIGTERM)

    def exit_status(self, handle: Handle) -> int | None:
        """The wrapper's own status when this process spawned it and it has ended."""
        proc = self.children.get(handle.pid or 0)
        return None if proc is None else proc.poll()

    def _reap(self) -> None:
        """Collect ended children, so none lingers as a zombie."""
        for proc in self.children.values():
            proc.poll()

    def forget(self, handle: Handle) -> None:
        proc = self.children.pop(handle.pid or 0, None)
        if proc is not None:
            proc.poll()  # collect it: it may have ended just after the last look

    def lost_reason(self, handle: Handle) -> str | None:
        return None  # a local process that vanished leaves no account of itself

    def find(self, job_id: str, exit_file: Path, root: RootRef) -> Handle | None:
        """A live wrapper started for this exit file (whose path names the root and the job)."""
        target = str(exit_file)
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info.get("cmdline") or []
            if len(cmdline) > 5 and cmdline[4] == WRAPPER_NAME and cmdline[5] == target:
                pid = proc.pid
                return Handle(
                    kind=self.kind,
                    host=HOST,
                    root=root.path,
                    root_token=root.token,
                    pid=pid,
                    pgid=pid,
                    start_time=process_identity(pid),
                )
        return None
