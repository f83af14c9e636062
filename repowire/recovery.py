"""Recovery: what the runner does with records it did not start in this life.

A running job whose executor still lives is adopted, one whose executor ended is finalized from
its exit file, one with neither fails as lost, and a claim whose executor never started goes back
to the queue. A terminal job whose executor lives is released.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from . import clock
from .executor import HOST, process_identity, read_exit_file, same_process
from .model import TERMINAL, Job, State, enter_state

__all__ = ["Active", "Recovery", "describe_handle", "handle_id"]


@dataclass
class Active:
    """An attempt this runner started or adopted, and watches until it ends."""

    job_id: str
    handle: dict[str, Any]
    deadline: float | None  # time.monotonic() after which the attempt times out


class Recovery:
    """The recovery half of the Runner (a mixin: it uses the runner's store, executor and log)."""

    store: Any
    executor: Any
    identity: str
    active: dict[str, Active]
    releasing: dict[str, tuple[dict[str, Any], float]]
    checked_terminal: set[tuple[str, Any]]
    executors: dict[str, Any]
    executor_for: Callable[[dict[str, Any]], Any]
    log: Callable[[str], None]
    _finish: Callable[..., None]
    _release: Callable[..., None]
    _record_handle: Callable[..., None]

    def _recover(self, job: Job, now: datetime) -> None:
        handle = job.executor
        if not isinstance(handle, dict) or not handle:
            return  # tracked by hand, or not started yet
        if not self.executor_for(handle).owns({**handle, "kind": handle.get("kind", "local")}):
            return  # another host's executor
        if job.state in TERMINAL:
            self._release_if_alive(job, handle)
        elif job.state == State.RUNNING:
            if handle_id(handle) is None:
                self._recover_claim(job, handle)
            else:
                self._recover_running(job, handle)

    def _release_if_alive(self, job: Job, handle: dict[str, Any]) -> None:
        key = (job.id, handle_id(handle))
        if key in self.checked_terminal or job.id in self.releasing or key[1] is None:
            return
        if self.executor_for(handle).alive(handle):
            self._release(job.id, handle)
            return
        self.checked_terminal.add(key)
        with contextlib.suppress(FileNotFoundError):  # left by a runner killed mid-finish
            self.store.sibling(job.id, ".exit").unlink()

    def _recover_running(self, job: Job, handle: dict[str, Any]) -> None:
        code = read_exit_file(self.store.sibling(job.id, ".exit"))
        if code is not None:
            self.log(f"recovered {job.id}: its executor ended while no runner watched")
            self._finish(job, handle, code, None)
        elif self._still_running(handle):
            timeout = job.timeout_seconds
            deadline = None
            if timeout and job.started_at:
                left = (job.started_at + timedelta(seconds=timeout) - clock.now()).total_seconds()
                deadline = time.monotonic() + left
            self.active[job.id] = Active(job.id, handle, deadline)
            self.log(f"adopted {job.id} ({describe_handle(handle)})")
        else:
            self._finish_dead(job, handle)

    def _still_running(self, handle: dict[str, Any]) -> bool:
        if handle.get("kind", "local") == "local" and same_process(
            int(handle["pid"]), handle.get("start_time")
        ):
            return True
        return bool(self.executor_for(handle).alive(handle))

    def _finish_dead(self, job: Job, handle: dict[str, Any]) -> None:
        """The group is gone: its status is in the exit file, written just before the wrapper
        ended (read again, since it may have ended since the first look), else it was lost."""
        code = read_exit_file(self.store.sibling(job.id, ".exit"))
        lost = None if code is not None else self.executor_for(handle).lost_reason(handle)
        self._finish(job, handle, code, None if code is not None else lost or "executor lost")

    def _recover_claim(self, job: Job, handle: dict[str, Any]) -> None:
        """A claim with no executor recorded: its runner died mid-start, or is starting it now."""
        claimer = str(handle.get("runner", ""))
        if claimer == self.identity or _runner_alive(claimer):
            return
        found = self._find_started(job, handle)
        if found is not None:
            self._record_handle_force(job, found)
            self._recover_running(job, found)
            return
        if read_exit_file(self.store.sibling(job.id, ".exit")) is not None:
            self._finish(
                job,
                {**handle, "pid": None},
                read_exit_file(self.store.sibling(job.id, ".exit")),
                None,
            )
            return

        def change(record: Job) -> bool:
            claim = record.executor if isinstance(record.executor, dict) else {}
            if record.state != State.RUNNING or claim.get("runner") != claimer:
                return False
            enter_state(
                record,
                State.QUEUED,
                "claimed by a runner that stopped before the executor started; queued again",
                clock.now(),
                actor="runner",
            )
            record.attempt -= 1
            record.executor = "slurm" if claim.get("kind") == "slurm" else None
            return True

        self.store.transition(job.id, change)
        self.log(f"requeued {job.id}: its claim was never started")

    def _find_started(self, job: Job, claim: dict[str, Any]) -> dict[str, Any] | None:
        """An executor started for a claim whose runner died before recording it."""
        if claim.get("kind", "local") == "slurm":
            found = self.executors["slurm"].find(job.id)
            return None if found is None else {**found, "runner": self.identity}
        pid = _find_wrapper(self.store.sibling(job.id, ".exit"))
        if pid is None:
            return None
        return {
            "kind": "local",
            "pid": pid,
            "pgid": pid,
            "host": HOST,
            "start_time": process_identity(pid),
            "runner": self.identity,
        }

    def _record_handle_force(self, job: Job, handle: dict[str, Any]) -> None:
        def change(record: Job) -> bool:
            record.executor = handle
            return record.state == State.RUNNING

        self.store.transition(job.id, change)


def _runner_alive(identity: str) -> bool:
    """Whether the runner named host:pid:start_time still runs (on this host)."""
    host, _, rest = identity.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != HOST:
        return True  # cannot tell from here; leave it to that host
    try:
        return same_process(int(pid_text), float(start))
    except ValueError:
        return False


def _find_wrapper(exit_file: Path) -> int | None:
    """The pid of a live executor wrapper for this exit file, if one was started unrecorded."""
    import psutil

    target = str(exit_file)
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if len(cmdline) > 4 and cmdline[3] == "repowire-executor" and cmdline[4] == target:
            return proc.pid
    return None


def handle_id(handle: dict[str, Any]) -> Any:
    """What tells one started attempt from another: a pid, or a Slurm job id (None: a claim)."""
    return handle.get("pid") or handle.get("slurm_job_id")


def describe_handle(handle: dict[str, Any]) -> str:
    """ "pid 123" or "slurm job 42", for log lines."""
    if handle.get("kind") == "slurm":
        return f"slurm job {handle.get('slurm_job_id')}"
    return f"pid {handle.get('pid')}"
