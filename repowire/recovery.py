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

__all__ = ["Active", "Recovery"]


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
    log: Callable[[str], None]
    _finish: Callable[..., None]
    _release: Callable[..., None]
    _record_handle: Callable[..., None]

    def _recover(self, job: Job, now: datetime) -> None:
        handle = job.executor or {}
        if not handle or not self.executor.owns({**handle, "kind": handle.get("kind", "local")}):
            return  # tracked by hand, or another host's executor
        if job.state in TERMINAL:
            self._release_if_alive(job, handle)
        elif job.state == State.RUNNING:
            if "pid" not in handle:
                self._recover_claim(job, handle)
            else:
                self._recover_running(job, handle)

    def _release_if_alive(self, job: Job, handle: dict[str, Any]) -> None:
        key = (job.id, handle.get("pid"))
        if key in self.checked_terminal or job.id in self.releasing or "pid" not in handle:
            return
        if self.executor.alive(handle):
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
        elif same_process(int(handle["pid"]), handle.get("start_time")) or self.executor.alive(
            handle
        ):
            timeout = job.timeout_seconds
            deadline = None
            if timeout and job.started_at:
                left = (job.started_at + timedelta(seconds=timeout) - clock.now()).total_seconds()
                deadline = time.monotonic() + left
            self.active[job.id] = Active(job.id, handle, deadline)
            self.log(f"adopted {job.id} (pid {handle['pid']})")
        else:
            self._finish_dead(job, handle)

    def _finish_dead(self, job: Job, handle: dict[str, Any]) -> None:
        """The group is gone: its status is in the exit file, written just before the wrapper
        ended (read again, since it may have ended since the first look), else it was lost."""
        code = read_exit_file(self.store.sibling(job.id, ".exit"))
        self._finish(job, handle, code, None if code is not None else "executor lost")

    def _recover_claim(self, job: Job, handle: dict[str, Any]) -> None:
        """A claim with no executor recorded: its runner died mid-start, or is starting it now."""
        claimer = str(handle.get("runner", ""))
        if claimer == self.identity or _runner_alive(claimer):
            return
        found = _find_wrapper(self.store.sibling(job.id, ".exit"))
        if found is not None:
            handle = {
                "kind": "local",
                "pid": found,
                "pgid": found,
                "host": HOST,
                "start_time": process_identity(found),
                "runner": self.identity,
            }
            self._record_handle_force(job, handle)
            self._recover_running(job, handle)
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
            if record.state != State.RUNNING or (record.executor or {}).get("runner") != claimer:
                return False
            enter_state(
                record,
                State.QUEUED,
                "claimed by a runner that stopped before the executor started; queued again",
                clock.now(),
                actor="runner",
            )
            record.attempt -= 1
            record.executor = None
            return True

        self.store.transition(job.id, change)
        self.log(f"requeued {job.id}: its claim was never started")

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
