"""Starting attempts: a queued job is claimed under its lock, and its executor started.

A local attempt (no worktree, no precondition) is claimed and recorded in one durable write:
its wrapper is started first but waits at a gate (local.Gate), the record is written naming it
as running with its pid, and only then is the gate opened. If the runner stops before that, the
wrapper runs the command only if the record names it; otherwise it ends, and the record is
still queued. Others are claimed first (the claim names the worktree before it is made),
started, and their handle recorded in a second write. A job's precondition runs before its
claim, off the runner's loop (preconditions.Preconditions): the job waits queued meanwhile.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from repowire.backends.presets import Backend, resolve_backend
from repowire.errors import RepowireError
from repowire.executors.contract import HOST, Executor, Launch
from repowire.executors.local_processes import Gate, LocalExecutor
from repowire.executors.preparation import log_header, prepare_launch, start_error
from repowire.files import open_file
from repowire.record.handle import Handle
from repowire.record.job import SHELL, Job, Note, Worktree, enter_state
from repowire.record.states import State
from repowire.runner.preconditions import Preconditions
from repowire.runner.scheduling import Scheduler
from repowire.runner.worktree_runs import WorktreeRuns
from repowire.store.config import Config
from repowire.store.records import Store

__all__ = ["Attempt", "Started", "Starter", "backend_of", "timeout_at"]


@dataclass(frozen=True)
class Attempt:
    """An attempt this runner started or adopted, and watches until it ends."""

    job_id: str
    handle: Handle
    deadline: datetime | None  # when it times out
    recorded: bool = True  # the record names this handle (not just this runner's claim)
    session_id: str | None = None  # a session chosen up front, recorded with the handle

    def named_by(self, record: Job, runner: str) -> bool:
        """Whether the record names this attempt: its handle, or (not yet written) the claim
        of `runner`, this runner."""
        if record.handle is None:
            return False
        if record.handle.identity == self.handle.identity:
            return True
        claim = record.handle
        return not self.recorded and not claim.started and claim.runner == runner


class Started(NamedTuple):
    """What a start left: whether the record became this runner's (an attempt started, or
    ended before it could), and the attempt to watch, if one runs."""

    claimed: bool
    attempt: Attempt | None = None


def timeout_at(job: Job, started: datetime | None) -> datetime | None:
    seconds = job.timeout_seconds
    return started + timedelta(seconds=seconds) if seconds and started else None


def backend_of(job: Job, config: Config) -> Backend | None:
    """The agent backend that runs the job, None for a shell command (or one not configured)."""
    name = job.effective_backend
    if name in (None, SHELL):
        return None
    try:
        return resolve_backend(str(name), config)
    except RepowireError:
        return None


class Starter:
    """Claims queued jobs and starts their attempts, for one runner of one root; the
    Supervisor watches what it started."""

    def __init__(
        self,
        store: Store,
        executors: dict[str, Executor],
        scheduler: Scheduler,
        trees: WorktreeRuns,
        precondition: Preconditions,
        identity: str,
        log: Callable[[str], None],
    ) -> None:
        self.store = store
        self.executors = executors
        self.scheduler = scheduler  # sessions to resume
        self.trees = trees
        self.precondition = precondition
        self.identity = identity
        self.log = log

    @property
    def config(self) -> Config:
        return self.precondition.settings.config

    def start(self, job: Job, now: datetime) -> Started:
        """Claim a queued job and start its attempt; a launch that fails ends the job. A job
        with a `run_if` waits, queued, while its precondition runs on a thread of its own."""
        verdict = None
        if job.run_if and not job.template:  # a template's run had its own checked at its fire
            verdict = self.precondition.ask(("job", job.id, job.attempt), job)
            if verdict is None:
                return Started(False)  # still running: asked again at the next step
            if verdict.met is False:
                self._skip(job, verdict.reason, now)
                return Started(True)
        backend = backend_of(job, self.config)
        has_form = backend is not None and backend.resume_command is not None
        session, why = self.scheduler.resume_for(job, has_form, job.effective_backend != SHELL)
        tree, problem = self.trees.plan(job)
        local = self.executors.get("local")
        if tree is None and not problem and not job.run_if and job.runs_on == "local":
            if isinstance(local, LocalExecutor) and not (backend and backend.stdin):
                return self._start_at_once(local, job, session, why, now)
        record = self._claim(job, session, why, now, tree)
        if record is None or record.handle is None:
            return Started(False)
        problem = problem or (verdict.reason if verdict and verdict.met is None else None)
        if problem:
            self._fail_unstarted(record, problem, now)
            return Started(True)
        try:
            handle, chosen = self._launch(record, record.handle, session, now)
        except Exception as exc:  # it never started, whatever the record held: end it
            self._fail_unstarted(record, start_error(exc), now)
            return Started(True)
        # Held from the moment it runs: if the handle cannot be written yet (a full disk, a
        # lock held too long), the attempt is still watched, timed and released, and the write
        # is tried again at every step.
        self.log(f"started {record.id} (attempt {record.attempt}, {handle.describe()})")
        return Started(True, Attempt(record.id, handle, timeout_at(record, now), False, chosen))

    def _skip(self, job: Job, reason: str, now: datetime) -> None:
        """A queued job whose precondition was not met: canceled, saying why."""

        def change(record: Job) -> bool:
            if record.state != State.QUEUED or record.attempt != job.attempt:
                return False
            enter_state(record, State.CANCELED, f"skipped: {reason}", now)
            record.error = f"skipped: {reason}"
            return True

        self.store.transition(job.id, change)
        self.log(f"skipped {job.id}: {reason}")

    def _launch(
        self, record: Job, claim: Handle, session: str | None, now: datetime
    ) -> tuple[Handle, str | None]:
        with self._prepared(record, session, now) as launch:
            return self.executors[claim.kind].start(launch, claim), launch.session_id

    @contextlib.contextmanager
    def _prepared(self, record: Job, session: str | None, now: datetime) -> Iterator[Launch]:
        """What to start for the claimed record, its log headed; a prompt file is removed
        after (the started process holds it open)."""
        launch = None
        try:
            workdir = self.trees.open(record)
            launch = prepare_launch(self.store, self.config, record, session, workdir)
            with open_file(launch.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT) as log:
                log.write(log_header(record, launch.argv, now).encode("utf-8"))
            yield launch
        finally:
            if launch is not None and launch.stdin is not None:
                with contextlib.suppress(OSError):
                    launch.stdin.unlink()

    def _start_at_once(
        self, local: LocalExecutor, job: Job, session: str | None, why: str | None, now: datetime
    ) -> Started:
        """Claim and record a local attempt in one write, its wrapper waiting at a gate until
        that write is durable (see the module's words); a launch that fails ends the job in
        the same write."""
        started: list[tuple[Gate, Handle, str | None]] = []
        failed: list[str] = []

        def change(record: Job) -> bool:
            if record.state != State.QUEUED or not record.is_due(now):
                return False
            claim = self._enter_claim(record, session, why, now, None)
            try:
                with self._prepared(record, session, now) as launch:
                    path = self.store.job_file(record.id)
                    record.handle, gate = local.start_gated(launch, claim, path)
            except Exception as exc:  # it never started: the same write ends it
                failed.append(start_error(exc))
                record.error = failed[0]
                enter_state(record, State.FAILED, f"not started: {failed[0]}", now)
                return True
            started.append((gate, record.handle, launch.session_id))
            record.session_id = launch.session_id or record.session_id
            return True

        try:
            record = self.store.transition(job.id, change)
        except BaseException:
            for gate, handle, _ in started:
                gate.close()  # never told to go: the record does not name it, so it ends
                local.forget(handle)  # not watched: its end is collected, not waited for
            raise
        if failed:
            self.log(f"failed {record.id}: {failed[0]}")
            return Started(True)
        if not started:
            return Started(False)  # another writer got there first, or it was not due
        return Started(True, self._go(record, started[0][0], started[0][2], now))

    def _go(self, record: Job, gate: Gate, chosen: str | None, now: datetime) -> Attempt:
        """The record naming the attempt is durable: its command may run, and is watched."""
        gate.open()
        handle = record.handle
        assert handle is not None
        self.log(f"started {record.id} (attempt {record.attempt}, {handle.describe()})")
        return Attempt(record.id, handle, timeout_at(record, now), True, chosen)

    def _claim(
        self, job: Job, session: str | None, why: str | None, now: datetime, tree: Worktree | None
    ) -> Job | None:
        """queued -> running under the job's lock; None if another writer got there first. A
        worktree run's branch and folder are named in the claim, before either is made."""
        claimed = False

        def change(record: Job) -> bool:
            nonlocal claimed
            if record.state != State.QUEUED or not record.is_due(now):
                return False
            self._enter_claim(record, session, why, now, tree)
            claimed = True
            return True

        record = self.store.transition(job.id, change)
        return record if claimed else None

    def _enter_claim(
        self,
        record: Job,
        session: str | None,
        why: str | None,
        now: datetime,
        tree: Worktree | None,
    ) -> Handle:
        """The record as this runner's claim makes it; the claim's handle."""
        here = self.store.root_ref()
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
        return record.handle

    def _fail_unstarted(self, job: Job, error: str, now: datetime) -> None:
        def change(record: Job) -> bool:
            if record.state != State.RUNNING or record.attempt != job.attempt:
                return False
            record.error = error
            enter_state(record, State.FAILED, f"not started: {error}", now)
            return True

        self.store.transition(job.id, change)
        self.log(f"failed {job.id}: {error}")
