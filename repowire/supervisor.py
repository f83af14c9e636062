"""The attempts one runner holds: it claims and starts them, watches them, records how they end,
and releases what still runs of a job that is over."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .backends import Backend, resolve_backend
from .config import Config
from .errors import RepowireError
from .executor import HOST, Executor, read_exit_file
from .files import open_file
from .handles import Handle, RootRef
from .launch import log_header, prepare_launch, start_error
from .model import SHELL, Job, Note, State, Worktree, enter_state
from .outcome import record_outcome
from .preconditions import Verdict, check
from .progress import Progress
from .scheduler import Scheduler
from .store import Store
from .values import format_duration, parse_duration
from .worktree_runs import WorktreeRuns

__all__ = ["Attempt", "Supervisor"]


@dataclass(frozen=True)
class Attempt:
    """An attempt this runner started or adopted, and watches until it ends."""

    job_id: str
    handle: Handle
    deadline: datetime | None  # when it times out
    recorded: bool = True  # the record names this handle (not just this runner's claim)
    session_id: str | None = None  # a session chosen up front, recorded with the handle


def _timeout_at(job: Job, started: datetime | None) -> datetime | None:
    seconds = job.timeout_seconds
    return started + timedelta(seconds=seconds) if seconds and started else None


class Supervisor:
    """Starts, watches, finishes and releases attempts for one runner of one root."""

    def __init__(
        self,
        store: Store,
        executors: dict[str, Executor],
        scheduler: Scheduler,
        identity: str,
        log: Callable[[str], None],
    ) -> None:
        self.store = store
        self.executors = executors
        self.scheduler = scheduler
        self.identity = identity
        self.log = log
        self.config = Config()  # the runner hands over the config it serves with
        self.active: dict[str, Attempt] = {}
        self.releasing: dict[str, tuple[Handle, datetime]] = {}  # job id -> handle, SIGKILL at
        self.started: set[str] = set()  # jobs this runner claimed in this life
        self.unrecorded: set[str] = set()  # attempts whose handle write failed, logged once
        self.ending: dict[str, datetime] = {}  # attempts whose status is written, since when
        self.progress = Progress()  # when each attempt's log last grew (stalled runs)
        self.trees = WorktreeRuns(store, log)

    @property
    def here(self) -> RootRef:
        return self.store.root_ref()

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

    def backend_of(self, job: Job) -> Backend | None:
        name = job.effective_backend
        if name in (None, SHELL):
            return None
        try:
            return resolve_backend(str(name), self.config)
        except RepowireError:
            return None

    # --- starting ---------------------------------------------------------------------------

    def start(self, job: Job, now: datetime) -> None:
        """Claim a queued job and start its attempt; a launch that fails ends the job."""
        backend = self.backend_of(job)
        has_form = backend is not None and backend.resume_command is not None
        session, why = self.scheduler.resume_for(job, has_form, job.effective_backend != SHELL)
        tree, problem = self.trees.plan(job)
        record = self._claim(job, session, why, now, tree)
        if record is None or record.handle is None:
            return
        self.started.add(record.id)
        if problem:
            self._fail_unstarted(record, problem, now)
            return
        if record.run_if and not record.template and not self._precondition_met(record, now):
            return  # a template's run had its precondition checked when it was fired
        try:
            handle, chosen = self._launch(record, record.handle, session, now)
        except Exception as exc:  # it never started, whatever the record held: end it
            self._fail_unstarted(record, start_error(exc), now)
            return
        # Held from the moment it runs: if the handle cannot be written yet (a full disk, a
        # lock held too long), the attempt is still watched, timed and released, and the write
        # is tried again at every step.
        timeout = _timeout_at(record, now)
        self.active[record.id] = Attempt(record.id, handle, timeout, False, chosen)
        self.log(f"started {record.id} (attempt {record.attempt}, {handle.describe()})")
        self._record(record.id)

    def precondition(self, job: Job, last_success: str | None = None) -> Verdict:
        """A job's `run_if`, run in its worker folder with its environment."""
        return check(self.store, self.config, job, last_success)

    def _precondition_met(self, record: Job, now: datetime) -> bool:
        """A claimed one-off job's precondition: not met cancels it, unanswered fails it."""
        verdict = self.precondition(record)
        if verdict.met:
            return True
        if verdict.met is None:
            self._fail_unstarted(record, verdict.reason, now)
            return False

        def change(job: Job) -> bool:
            if job.state != State.RUNNING or job.attempt != record.attempt:
                return False
            enter_state(job, State.CANCELED, f"skipped: {verdict.reason}", now)
            job.error = f"skipped: {verdict.reason}"
            return True

        self.store.transition(record.id, change)
        self.log(f"skipped {record.id}: {verdict.reason}")
        return False

    def _launch(
        self, record: Job, claim: Handle, session: str | None, now: datetime
    ) -> tuple[Handle, str | None]:
        launch = None
        try:
            workdir = self.trees.open(record)
            launch = prepare_launch(self.store, self.config, record, session, workdir)
            with open_file(launch.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT) as log:
                log.write(log_header(record, launch.argv, now).encode("utf-8"))
            return self.executors[claim.kind].start(launch, claim), launch.session_id
        finally:
            if launch is not None and launch.stdin is not None:
                with contextlib.suppress(OSError):
                    launch.stdin.unlink()

    def _claim(
        self, job: Job, session: str | None, why: str | None, now: datetime, tree: Worktree | None
    ) -> Job | None:
        """queued -> running under the job's lock; None if another writer got there first. A
        worktree run's branch and folder are named in the claim, before either is made."""
        here = self.here
        claimed = False

        def change(record: Job) -> bool:
            nonlocal claimed
            if record.state != State.QUEUED or not record.is_due(now):
                return False
            if why:
                record.notes.append(Note(now, why))
            if session:
                record.session_id = session
            enter_state(record, State.RUNNING, f"started by runner {self.identity}", now)
            record.handle = Handle(
                kind=record.runs_on,
                runner=self.identity,
                host=HOST,
                root=here.path,
                root_token=here.token,
                claimed_at=now,
            )
            record.error = record.exit_code = record.retry_at = None
            record.worktree = tree or record.worktree
            claimed = True
            return True

        record = self.store.transition(job.id, change)
        return record if claimed else None

    def _record(self, job_id: str) -> None:
        """Write the handle of an attempt into its record, which so far names only the claim."""
        attempt = self.active[job_id]

        def change(record: Job) -> bool:
            if not self._names(record, attempt):
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

    def _names(self, record: Job, attempt: Attempt) -> bool:
        """Whether the record names this attempt: its handle, or (not yet written) our claim."""
        if record.handle is None:
            return False
        if record.handle.identity == attempt.handle.identity:
            return True
        claim = record.handle
        return not attempt.recorded and not claim.started and claim.runner == self.identity

    def record_found(self, job_id: str, handle: Handle) -> None:
        """Record the handle of an attempt found started but never recorded (recovery)."""

        def change(record: Job) -> bool:
            record.handle = dataclasses.replace(handle, runner=self.identity)
            return record.state == State.RUNNING

        self.store.transition(job_id, change)

    def _fail_unstarted(self, job: Job, error: str, now: datetime) -> None:
        def change(record: Job) -> bool:
            if record.state != State.RUNNING or record.attempt != job.attempt:
                return False
            record.error = error
            enter_state(record, State.FAILED, f"not started: {error}", now)
            return True

        self.store.transition(job.id, change)
        self.log(f"failed {job.id}: {error}")

    # --- watching and finishing ---------------------------------------------------------------

    def adopt(self, job: Job, handle: Handle, now: datetime) -> None:
        """Watch an attempt that a runner before this one started."""
        self.active[job.id] = Attempt(job.id, handle, _timeout_at(job, job.started_at))
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
        if item.state != State.RUNNING or not self._names(item, attempt):
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
            if record.state != State.RUNNING or not self._names(record, attempt):
                return False
            record.handle = handle
            if settled is not None:
                self.trees.apply(record, job.worktree, settled, now)
            backend, prices = self.backend_of(record), self.config.prices
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
