"""Recovery: what a runner does with records it did not start in this life.

A running job whose attempt still lives is adopted, one whose attempt ended is finalized from
its exit file, one with neither fails as lost, and a claim whose attempt never started goes back
to the queue. A terminal job whose attempt lives is released. A record copied from another root
(a clone, `cp -R`, a worktree) names an attempt that is not this root's: it is finalized as lost,
and that attempt is never adopted, waited on or signalled.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime

from repowire.executors.contract import HOST, read_exit_file
from repowire.executors.local_processes import same_process
from repowire.record.handle import Handle
from repowire.record.job import Job, enter_state
from repowire.record.states import TERMINAL, State
from repowire.runner.supervising import Supervisor
from repowire.store.records import Store

__all__ = ["Recovery"]


class Recovery:
    """Looks at each record the supervisor does not watch, and settles what it finds."""

    def __init__(self, store: Store, supervisor: Supervisor, log: Callable[[str], None]) -> None:
        self.store = store
        self.supervisor = supervisor
        self.log = log
        self.checked_terminal: set[tuple[str, int | None]] = set()
        self.pending: set[str] = set()  # records to look at (again) in the next step

    def recover(self, job: Job, now: datetime) -> None:
        handle = job.handle
        if handle is not None:
            self._recover_attempt(job, handle, now)
        trees = self.supervisor.trees
        if job.state != State.RUNNING and trees.unsettled(job) and self._over(job):
            trees.settle(job, now)

    def settled(self, job: Job) -> bool:
        """Whether recover has nothing left to do for this record as it is: it is looked at
        again only when it changes."""
        if job.state == State.RUNNING or self.supervisor.trees.unsettled(job):
            return False
        handle = job.handle
        if handle is None or job.state == State.QUEUED:
            return True
        if not handle.started_for(self.supervisor.here, HOST):
            return True  # another root's attempt: never touched here
        if not self.supervisor.executor_for(handle).owns(handle):
            return True  # another host's attempt: its runner settles it
        return (job.id, handle.identity) in self.checked_terminal

    def _over(self, job: Job) -> bool:
        """Whether nothing of the job's last attempt runs here: its worktree can be settled."""
        handle = job.handle
        if job.id in self.supervisor.releasing or job.id in self.supervisor.active:
            return False
        if handle is None or not handle.started:
            return True
        if not handle.started_for(self.supervisor.here, HOST):
            return False  # a copy of another root's record: that root settles it
        return not self.supervisor.executor_for(handle).alive(handle)

    def _recover_attempt(self, job: Job, handle: Handle, now: datetime) -> None:
        if not handle.started_for(self.supervisor.here, HOST):
            self._settle_foreign(job, handle, now)
        elif not self.supervisor.executor_for(handle).owns(handle):
            return  # another host's attempt: its runner settles it
        elif job.state in TERMINAL:
            self._release_if_alive(job, handle, now)
        elif job.state == State.RUNNING and handle.started:
            self._recover_running(job, handle, now)
        elif job.state == State.RUNNING:
            self._recover_claim(job, handle, now)

    def _settle_foreign(self, job: Job, handle: Handle, now: datetime) -> None:
        """A record copied from another root: what it names runs (or ran) for that root."""
        if job.state != State.RUNNING:
            return
        where = f"another root ({handle.root or 'elsewhere'})"
        if handle.started:
            self.log(f"{job.id}: its {handle.describe()} was started for {where}; not touched")
            reason = f"executor lost: it was started for {where}"
            self.supervisor.record_end(job, handle, None, reason, now)
        else:
            self._requeue(job, handle, f"claimed by a runner of {where}; queued again", now)

    def _release_if_alive(self, job: Job, handle: Handle, now: datetime) -> None:
        key = (job.id, handle.identity)
        if key in self.checked_terminal or job.id in self.supervisor.releasing:
            return
        if not handle.started:
            handle = self._unrecorded_attempt(job, handle) or handle
        if not handle.started:
            self.checked_terminal.add(key)
            return
        if self.supervisor.executor_for(handle).alive(handle):
            self.supervisor.release(job.id, handle, now)
            return
        self.checked_terminal.add(key)
        with contextlib.suppress(FileNotFoundError):  # left by a runner killed mid-finish
            self.store.sibling(job.id, ".exit").unlink()

    def _unrecorded_attempt(self, job: Job, claim: Handle) -> Handle | None:
        """What a runner that died started for this claim without writing its handle."""
        if claim.runner == self.supervisor.identity or _runner_alive(claim.runner):
            return None  # a live runner holds what it started
        exit_file = self.store.sibling(job.id, ".exit")
        return self.supervisor.executor_for(claim).find(job.id, exit_file, self.supervisor.here)

    def _recover_running(self, job: Job, handle: Handle, now: datetime) -> None:
        code = read_exit_file(self.store.sibling(job.id, ".exit"))
        if code is not None:
            self.log(f"recovered {job.id}: its executor ended while no runner watched")
            self.supervisor.finish(job, handle, code, None, now)
        elif self.supervisor.executor_for(handle).is_same(handle):
            self.supervisor.adopt(job, handle, now)
        else:
            self.supervisor.finish_dead(job, handle, now)

    def _recover_claim(self, job: Job, claim: Handle, now: datetime) -> None:
        """A claim with no attempt recorded: its runner died mid-start, or is starting it now."""
        if claim.runner == self.supervisor.identity or _runner_alive(claim.runner):
            return
        executor = self.supervisor.executor_for(claim)
        exit_file = self.store.sibling(job.id, ".exit")
        found = executor.find(job.id, exit_file, self.supervisor.here)
        if found is not None:
            self.supervisor.record_found(job.id, found)
            self._recover_running(job, found, now)
        elif read_exit_file(exit_file) is not None:
            self.supervisor.finish(job, claim, read_exit_file(exit_file), None, now)
        else:
            note = "claimed by a runner that stopped before the executor started; queued again"
            self._requeue(job, claim, note, now)

    def _requeue(self, job: Job, claim: Handle, note: str, now: datetime) -> None:
        """running -> queued for a claim whose attempt never started here (nothing ran)."""

        def change(record: Job) -> bool:
            if record.state != State.RUNNING or record.handle != claim:
                return False
            enter_state(record, State.QUEUED, note, now, actor="runner")
            record.attempt -= 1
            record.where = "slurm" if claim.kind == "slurm" else record.where
            record.handle = None
            return True

        self.store.transition(job.id, change)
        self.log(f"requeued {job.id}: its claim was never started")


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
