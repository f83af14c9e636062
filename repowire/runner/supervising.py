"""The attempts one runner holds: it claims and starts them, watches them, records how they end,
and releases what still runs of a job that is over."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta

from repowire.errors import RepowireError
from repowire.executors.contract import Executor, read_exit_file
from repowire.record.handle import Handle, RootRef
from repowire.record.job import Job
from repowire.record.states import State
from repowire.runner.outcome import record_outcome
from repowire.runner.scheduling import Scheduler
from repowire.runner.settings import LiveSettings
from repowire.runner.stalls import Progress
from repowire.runner.starter import Attempt, Starter, backend_of, timeout_at
from repowire.store.config import Config
from repowire.store.records import Store
from repowire.times import format_duration, parse_duration

__all__ = ["Attempt", "Supervisor"]


class Supervisor:
    """Starts (through its Starter), watches, finishes and releases attempts for one runner
    of one root."""

    def __init__(
        self,
        store: Store,
        executors: dict[str, Executor],
        starter: Starter,
        scheduler: Scheduler,
        settings: LiveSettings,
        log: Callable[[str], None],
    ) -> None:
        self.store = store
        self.executors = executors
        self.starter = starter
        self.scheduler = scheduler  # told when a run finishes
        self.settings = settings
        self.identity = starter.identity
        self.trees = starter.trees
        self.log = log
        self.active: dict[str, Attempt] = {}
        self.releasing: dict[str, tuple[Handle, datetime]] = {}  # job id -> handle, SIGKILL at
        self.started: set[str] = set()  # jobs this runner claimed in this life
        self.unrecorded: set[str] = set()  # attempts whose handle write failed, logged once
        self.ending: dict[str, datetime] = {}  # attempts whose status is written, since when
        self.progress = Progress()  # when each attempt's log last grew (stalled runs)

    @property
    def config(self) -> Config:
        return self.settings.config

    @property
    def here(self) -> RootRef:
        return self.store.root_ref()

    def start(self, job: Job, now: datetime) -> None:
        """Claim a queued job and start its attempt, then watch it."""
        started = self.starter.start(job, now)
        if started.claimed:
            self.started.add(job.id)
        attempt = started.attempt
        if attempt is not None:
            self.active[job.id] = attempt
            if not attempt.recorded:
                self._record(job.id)

    @property
    def busy(self) -> bool:
        return bool(self.active or self.releasing)

    def executor_for(self, handle: Handle) -> Executor:
        """The executor that started (or can judge) this handle."""
        return self.executors.get(handle.kind, self.executors["local"])

    def running_on(self, kind: str) -> int:
        return sum(1 for a in self.active.values() if a.handle.kind == kind)

    def deadlines(self, now: datetime) -> list[float]:
        """Seconds until each timeout and each SIGKILL this runner has pending."""
        times = [a.deadline for a in self.active.values() if a.deadline is not None]
        times += [kill_at for _, kill_at in self.releasing.values()]
        return [(t - now).total_seconds() for t in times]

    # --- watching and finishing ---------------------------------------------------------------

    def adopt(self, job: Job, handle: Handle, now: datetime) -> None:
        """Watch an attempt that a runner before this one started."""
        self.active[job.id] = Attempt(job.id, handle, timeout_at(job, job.started_at))
        self.log(f"adopted {job.id} ({handle.describe()})")

    def watch(self, job_id: str, item: Job | None, now: datetime) -> None:
        """Look at one attempt: ended, gone, timed out, or its job over."""
        attempt = self.active[job_id]
        if item is None:
            self.log(f"{job_id}: record deleted while it ran")
            self.release(job_id, attempt.handle, now)
            return
        if not attempt.recorded:
            self._record(job_id)
            attempt = self.active[job_id]
        handle = attempt.handle
        if item.state != State.RUNNING or not attempt.named_by(item, self.identity):
            self.release(job_id, handle, now)
            return
        executor = self.executor_for(handle)
        code = read_exit_file(self.store.sibling(item.id, ".exit"))
        log = self.store.sibling(item.id, ".log")
        status = executor.exit_status(handle)
        if code is None:
            code = status
        if code is not None and status is None and self._still_ending(job_id, handle, now):
            return  # the wrapper wrote its status and is ending; a SIGTERM now would be noise
        if code is not None:
            self.finish(item, handle, code, None, now)
        elif not executor.alive(handle):
            self.finish_dead(item, handle, now)
        elif attempt.deadline is not None and now >= attempt.deadline:
            limit = format_duration(item.timeout_seconds or 0)
            self.finish(item, handle, None, f"timed out after {limit}", now)
        elif stalled := self.progress.stalled(job_id, log, self._stall_limit(item), now):
            self.finish(item, handle, None, stalled, now)

    def _stall_limit(self, job: Job) -> float | None:
        own = job.stall_timeout
        return parse_duration(own) if own is not None else self.config.stall_timeout

    def watch_unreadable(self, job_id: str, now: datetime) -> None:
        """An attempt whose record cannot be read (a hand edit under way): it is still timed
        and released, though nothing can be written to the record until it is fixed."""
        attempt = self.active[job_id]
        executor = self.executor_for(attempt.handle)
        if not executor.alive(attempt.handle):
            del self.active[job_id]  # its exit file waits; recovery settles it once readable
            executor.forget(attempt.handle)
        elif attempt.deadline is not None and now >= attempt.deadline:
            self.log(f"{job_id}: timed out while its record cannot be read; releasing it")
            self.release(job_id, attempt.handle, now)

    def _still_ending(self, job_id: str, handle: Handle, now: datetime) -> bool:
        """Whether an attempt whose status is written still has processes, for at most a
        second; what lingers after that is released."""
        if not self.executor_for(handle).alive(handle):
            return False
        since = self.ending.setdefault(job_id, now)
        return (now - since).total_seconds() < 1.0

    def finish_dead(self, job: Job, handle: Handle, now: datetime) -> None:
        """The attempt is gone: its status is in the exit file, written just before the wrapper
        ended (read again, since it may have ended since the first look), else it was lost."""
        code = read_exit_file(self.store.sibling(job.id, ".exit"))
        lost = None if code is not None else self.executor_for(handle).lost_reason(handle)
        self.finish(job, handle, code, None if code is not None else lost or "executor lost", now)

    def finish(
        self, job: Job, handle: Handle, code: int | None, reason: str | None, now: datetime
    ) -> None:
        """Record how the attempt ended, then let go of it (releasing what still runs)."""
        self.record_end(job, handle, code, reason, now)
        self.release(job.id, handle, now)

    def record_end(
        self, job: Job, handle: Handle, code: int | None, reason: str | None, now: datetime
    ) -> None:
        """Record how the attempt ended, if the record still names this attempt."""
        applied = False
        attempt = self.active.get(job.id) or Attempt(job.id, handle, None)
        over = job.worktree is not None and not self.executor_for(handle).alive(handle)
        settled = self.trees.finalize(job) if over else None  # else settled once it is over

        def change(record: Job) -> bool:
            nonlocal applied
            if record.state != State.RUNNING or not attempt.named_by(record, self.identity):
                return False
            record.handle = handle
            if settled is not None:
                self.trees.apply(record, job.worktree, settled, now)
            backend, prices = backend_of(record, self.config), self.config.prices
            total = backend is not None and backend.usage_is_total  # codex: the thread's sum
            earlier = self.scheduler.session_usage(record) if total else None
            record_outcome(self.store, record, code, reason, backend, now, prices, earlier)
            applied = True
            return True

        record = self.store.transition(job.id, change)
        if not applied:
            return
        self.trees.tidy(record)
        with contextlib.suppress(FileNotFoundError):
            self.store.sibling(job.id, ".exit").unlink()
        self.scheduler.run_finished(record)
        verb = "requeued" if record.state == State.QUEUED else "finished"
        error = f" ({record.error})" if record.error else ""
        self.log(f"{verb} {job.id}: {record.state}{error}")

    # --- the handle in the record -------------------------------------------------------

    def _record(self, job_id: str) -> None:
        """Write the handle of an attempt into its record, which so far names only the claim."""
        attempt = self.active[job_id]

        def change(record: Job) -> bool:
            if not attempt.named_by(record, self.identity):
                return False
            record.handle = attempt.handle
            if attempt.session_id:  # chosen up front for this fresh session
                record.session_id = attempt.session_id
            return True

        try:
            self.store.transition(job_id, change)
        except (RepowireError, OSError) as exc:
            if job_id not in self.unrecorded:
                self.unrecorded.add(job_id)
                self.log(
                    f"{job_id}: could not record {attempt.handle.describe()} yet ({exc}); "
                    "watching it and trying again"
                )
            return
        self.unrecorded.discard(job_id)
        self.active[job_id] = dataclasses.replace(attempt, recorded=True)

    def record_found(self, job_id: str, handle: Handle) -> None:
        """Record the handle of an attempt found started but never recorded (recovery)."""

        def change(record: Job) -> bool:
            record.handle = handle._replace(runner=self.identity)
            return record.state == State.RUNNING

        self.store.transition(job_id, change)

    # --- releasing --------------------------------------------------------------------------

    def release(self, job_id: str, handle: Handle, now: datetime) -> None:
        """SIGTERM to what still runs of the attempt now, SIGKILL after kill_grace."""
        self.active.pop(job_id, None)
        self.progress.forget(job_id)
        self.ending.pop(job_id, None)
        executor = self.executor_for(handle)
        if executor.alive(handle):
            executor.release(handle, force=False)
            kill_at = now + timedelta(seconds=self.config.kill_grace)
            self.releasing[job_id] = (handle, kill_at)
            self.log(f"released {job_id}: SIGTERM to {handle.describe()} and its group")
        else:
            executor.forget(handle)

    def advance_releases(self, now: datetime) -> None:
        for job_id, (handle, kill_at) in list(self.releasing.items()):
            executor = self.executor_for(handle)
            if not executor.alive(handle):
                del self.releasing[job_id]
                executor.forget(handle)
            elif now >= kill_at:
                executor.release(handle, force=True)
                self.log(f"released {job_id}: SIGKILL to {handle.describe()} and its group")
                self.releasing[job_id] = (handle, now + timedelta(seconds=1))
