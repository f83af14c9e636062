"""The runner: a step function that reconciles everything from the files, inside a loop.

Events from the watcher only wake the loop early; a missed event costs latency, never
correctness. The step claims due jobs, spawns executors, finalizes ended ones, enforces
timeouts, releases executors of terminal jobs and recovers after a crash.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from . import clock
from .attempts import log_header, prepare_launch, record_outcome
from .backends import Backend, resolve_backend
from .config import Config, is_trusted, load_config, require_repowire
from .errors import NotTrusted, RepowireError
from .executor import HOST, LocalExecutor, process_identity, read_exit_file
from .files import open_file
from .firing import Scheduler
from .model import SHELL, Invalid, Job, Note, State, enter_state
from .recovery import Active, Recovery, describe_handle, handle_id
from .slurm import SlurmExecutor, merge_options
from .store import Store
from .values import format_duration, format_time

__all__ = ["Runner", "RESCAN_SECONDS"]

RESCAN_SECONDS = 30.0  # a reconcile even without events: network file systems send none
FULL_RESCAN_SECONDS = 600.0  # with working events, a quiet rescan looks at the folders only
ACTIVE_POLL_SECONDS = 0.5  # how often own executors are looked at while any runs


class Runner(Recovery):
    """Runs the jobs of one root. `step()` does one reconcile; `run()` loops around it."""

    def __init__(
        self, root: Path, max_concurrency: int | None = None, log: TextIO | None = None
    ) -> None:
        require_repowire(root)
        self.store = Store(root)
        self.config: Config = load_config(root)
        self.max_concurrency = max_concurrency or self.config.max_concurrency
        self.out = log or sys.stderr
        self.executors: dict[str, Any] = {"local": LocalExecutor(), "slurm": SlurmExecutor()}
        self.scheduler = Scheduler(self.store, self.log)
        self.identity = f"{HOST}:{os.getpid()}:{process_identity(os.getpid())}"
        self.active: dict[str, Active] = {}
        self.releasing: dict[str, tuple[dict[str, Any], float]] = {}
        self.checked_terminal: set[tuple[str, Any]] = set()
        self.started: set[str] = set()
        self.told: set[str] = set()
        self.failing: set[str] = set()  # jobs whose step raised: logged once, not waited for
        self._stamps: list[int] = []  # jobs/ and agents/ mtimes at the last rescan
        self._timers = True  # the last step wants waking for more than the periodic rescan
        self._last_full = time.monotonic()
        self.wake = threading.Event()
        self.stopping = False

    # --- the loop ---------------------------------------------------------------------------

    def log(self, text: str) -> None:
        print(f"{format_time(clock.now())} {text}", file=self.out, flush=True)

    def check_trust(self) -> None:
        if not is_trusted(self.store.root):
            raise NotTrusted(
                f"{self.store.root} is not trusted, so the runner will not execute its jobs; "
                "run 'repowire trust' there if you trust its .repowire/ folder"
            )

    def run(self, once: bool = False) -> None:
        """Serve until SIGTERM or SIGINT; with once, until every due job has ended."""
        from .watcher import Watcher

        self.check_trust()
        self.store.ensure_layout()
        for path in self.store.remove_stale_temp_files():
            self.log(f"removed {path.name}, left by a writer that crashed")
        watcher = Watcher([self.store.jobs_dir, self.store.agents_dir], self.wake)
        if not watcher.start():
            self.log(str(watcher.error))
        previous = self._install_signal_handlers()
        self.log(
            f"runner {self.identity} serving {self.store.root} "
            f"(max_concurrency {self.max_concurrency})"
        )
        try:
            while not self.stopping:
                woken = self.wake.is_set()
                self.wake.clear()  # before the step: an event during it wakes the next wait
                if woken or self._timers or self._folders_changed(watcher.healthy()):
                    delay = self.step()
                if once and self.finished_once():
                    break
                if not watcher.healthy() and watcher.observer is not None:
                    self.log("file watcher died; restarting it")
                    watcher.restart()
                self.wake.wait(delay)
        finally:
            watcher.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.log(
            "runner stopped"
            + (
                f"; {len(self.active)} executor(s) left running for the next runner to adopt"
                if self.active
                else ""
            )
        )

    def _folders_changed(self, events_work: bool) -> bool:
        """For a quiet periodic rescan: whether jobs/ or agents/ changed since the last one.

        Every atomic write renames into jobs/ and so changes its mtime; in-place edits on a
        file system without events are caught by a full rescan every FULL_RESCAN_SECONDS."""
        stamps = []
        for folder in (self.store.jobs_dir, self.store.agents_dir):
            try:
                stamps.append(folder.stat().st_mtime_ns)
            except FileNotFoundError:
                stamps.append(0)
        now = time.monotonic()
        due = now - self._last_full >= (FULL_RESCAN_SECONDS if events_work else RESCAN_SECONDS)
        if stamps != self._stamps or due:
            self._stamps, self._last_full = stamps, now
            return True
        return False

    def _install_signal_handlers(self) -> dict[int, Any]:
        def stop(signum: int, _frame: Any) -> None:
            self.stopping = True
            self.wake.set()

        if threading.current_thread() is not threading.main_thread():
            return {}
        return {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}

    def finished_once(self) -> bool:
        """--once is done: nothing running here, nothing due, none of its jobs awaiting a retry."""
        if self.active or self.releasing:
            return False
        now = clock.now()
        for item in self.store.list_jobs(slim_terminal=True):
            if isinstance(item, Job) and item.state == State.QUEUED and self._runnable(item):
                if item.id in self.failing:
                    continue  # e.g. its lock cannot be taken: a person must look at it
                if item.id in self.started or self._due(item, now):
                    return False
        return True

    # --- one step ---------------------------------------------------------------------------

    def step(self) -> float:
        """Reconcile once; return how long the loop may sleep before the next step."""
        now = clock.now()
        jobs = {item.id: item for item in self.store.list_jobs(slim_terminal=True)}
        watched = set(self.active)
        for job_id in watched:
            self._guard(job_id, self._watch_active, job_id, jobs.get(job_id))
        for item in jobs.values():
            if isinstance(item, Job) and item.id not in watched:
                self._guard(item.id, self._recover, item, now)
        self._advance_releases()
        waits = [RESCAN_SECONDS]
        next_slot, fired = self.scheduler.step(jobs, now)
        if next_slot is not None:
            waits.append(next_slot)
        if fired:
            jobs = {item.id: item for item in self.store.list_jobs(slim_terminal=True)}
        for job in self._due_jobs(jobs, now, waits):
            where = _where(job)
            if self._running(where) >= self._limit(where):
                continue  # full here; a job for the other executor may still start
            self._guard(job.id, self._start, job)
        if self.active or self.releasing:
            waits.append(ACTIVE_POLL_SECONDS)
        deadlines = [a.deadline - time.monotonic() for a in self.active.values() if a.deadline]
        deadlines += [kill_at - time.monotonic() for _, kill_at in self.releasing.values()]
        self._timers = len(waits) > 1 or bool(deadlines)  # anything but the periodic rescan
        return max(0.0, min(waits + deadlines))

    def executor_for(self, handle: dict[str, Any]) -> Any:
        """The executor that started (or can judge) this handle."""
        return self.executors.get(str(handle.get("kind", "local")), self.executors["local"])

    def _running(self, where: str) -> int:
        return sum(1 for a in self.active.values() if a.handle.get("kind", "local") == where)

    def _limit(self, where: str) -> int:
        return self.config.slurm_max_jobs if where == "slurm" else self.max_concurrency

    def _guard(self, job_id: str, action: Any, *args: Any) -> None:
        """Run one job's part of the step; an error is logged and retried next step."""
        try:
            action(*args)
            self.failing.discard(job_id)
        except (RepowireError, OSError) as exc:
            if job_id not in self.failing:
                self.log(f"error {job_id}: {exc}")
            self.failing.add(job_id)

    # --- starting ---------------------------------------------------------------------------

    def _runnable(self, job: Job) -> bool:
        return job.effective_backend is not None

    @staticmethod
    def _due(job: Job, now: datetime) -> bool:
        return job.due_at is None or job.due_at <= now

    def _due_jobs(
        self, jobs: dict[str, Job | Invalid], now: datetime, waits: list[float]
    ) -> list[Job]:
        due = []
        busy = {
            str(j.template)
            for j in jobs.values()
            if isinstance(j, Job) and j.template and j.state == State.RUNNING
        }
        queued = [j for j in jobs.values() if isinstance(j, Job) and j.state == State.QUEUED]
        for item in sorted(queued, key=_age):
            if not self._runnable(item):
                if item.id not in self.told:
                    self.told.add(item.id)
                    self.log(f"skipped {item.id}: no command or backend; tracked by hand")
                continue
            if not self._due(item, now):
                waits.append((item.due_at - now).total_seconds())  # type: ignore[operator]
            elif item.template and self._overlap_holds(item.template, busy):
                continue  # waits for the template's running run (overlap: skip or queue)
            else:
                due.append(item)
                if item.template:
                    busy.add(item.template)
        return due

    def _overlap_holds(self, name: str, busy: set[str]) -> bool:
        template = self.scheduler.templates.get(name)
        return name in busy and (template is None or template.overlap not in ("allow", "replace"))

    def _claim(self, job: Job, session: str | None, why: str | None) -> Job | None:
        """queued -> running under the job's lock; None if another writer got there first."""
        claimed = False

        def change(record: Job) -> bool:
            nonlocal claimed
            if record.state != State.QUEUED or not self._due(record, clock.now()):
                return False
            if why:
                record.notes.append(Note(clock.now(), why))
            if session:
                record.session_id = session
            enter_state(record, State.RUNNING, f"started by runner {self.identity}", clock.now())
            record.executor = {
                "kind": _where(record),
                "runner": self.identity,
                "host": HOST,
                "claimed_at": format_time(clock.now()),
            }
            record.error = record.exit_code = None
            claimed = True
            return True

        record = self.store.transition(job.id, change)
        return record if claimed else None

    def _start(self, job: Job) -> None:
        backend = self._backend_of(job)
        agent = job.effective_backend != SHELL
        has_form = backend is not None and backend.resume_command is not None
        session, why = self.scheduler.resume_for(job, has_form, agent)
        record = self._claim(job, session, why)
        if record is None:
            return
        self.started.add(record.id)
        launch = None
        try:
            launch = prepare_launch(self.store, self.config, record, session)
            launch.extra.update(
                job_id=record.id, slurm=merge_options(self.config.slurm, record.slurm)
            )
            with open_file(launch.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT) as log:
                log.write(log_header(record, launch.argv, clock.now()).encode("utf-8"))
            handle = self.executors[_where(record)].start(launch)
        except (RepowireError, OSError) as exc:  # it never started: say why, and end it
            self._fail_unstarted(record, _start_error(exc))
            return
        finally:
            if launch is not None and launch.stdin is not None:
                with contextlib.suppress(OSError):
                    launch.stdin.unlink()
        handle["runner"] = self.identity
        self._record_handle(record, handle, launch.extra.get("session_id"))
        timeout = record.timeout_seconds
        self.active[record.id] = Active(
            record.id, handle, time.monotonic() + timeout if timeout else None
        )
        self.log(f"started {record.id} (attempt {record.attempt}, {describe_handle(handle)})")

    def _record_handle(
        self, job: Job, handle: dict[str, Any], session_id: str | None = None
    ) -> None:
        def change(record: Job) -> bool:
            if (
                not isinstance(record.executor, dict)
                or record.executor.get("runner") != self.identity
            ):
                return False
            record.executor = handle
            if session_id:  # chosen up front for this fresh session
                record.session_id = session_id
            return True

        self.store.transition(job.id, change)

    def _fail_unstarted(self, job: Job, error: str) -> None:
        def change(record: Job) -> bool:
            if record.state != State.RUNNING or record.attempt != job.attempt:
                return False
            record.error = error
            enter_state(record, State.FAILED, f"not started: {error}", clock.now())
            return True

        self.store.transition(job.id, change)
        self.log(f"failed {job.id}: {error}")

    # --- watching and finishing ---------------------------------------------------------------

    def _watch_active(self, job_id: str, item: Job | Invalid | None) -> None:
        attempt = self.active[job_id]
        if item is None:
            self.log(f"{job_id}: record deleted while it ran")
            self._release(job_id, attempt.handle)
            return
        if isinstance(item, Invalid):
            return  # being edited by hand; look again next step
        if item.state != State.RUNNING or _id_of(item) != handle_id(attempt.handle):
            self._release(job_id, attempt.handle)
            return
        code = read_exit_file(self.store.sibling(item.id, ".exit"))
        if code is None:
            code = self.executor_for(attempt.handle).returncode(attempt.handle)
        if code is not None:
            self._finish(item, attempt.handle, code, None)
        elif not self.executor_for(attempt.handle).alive(attempt.handle):
            self._finish_dead(item, attempt.handle)
        elif attempt.deadline is not None and time.monotonic() >= attempt.deadline:
            limit = format_duration(item.timeout_seconds or 0)
            self._finish(item, attempt.handle, None, f"timed out after {limit}")

    def _backend_of(self, job: Job) -> Backend | None:
        name = job.effective_backend
        if name in (None, SHELL):
            return None
        try:
            return resolve_backend(str(name), self.config)
        except RepowireError:
            return None

    def _finish(
        self, job: Job, handle: dict[str, Any], code: int | None, error: str | None
    ) -> None:
        """Record how the attempt ended, then let go of it (releasing what still runs)."""
        applied = False

        def change(record: Job) -> bool:
            nonlocal applied
            if record.state != State.RUNNING or _id_of(record) != handle_id(handle):
                return False
            record_outcome(self.store, record, code, error, self._backend_of(record), clock.now())
            applied = True
            return True

        record = self.store.transition(job.id, change)
        if applied:
            with contextlib.suppress(FileNotFoundError):
                self.store.sibling(job.id, ".exit").unlink()
            self.scheduler.run_finished(record)
            verb = "requeued" if record.state == State.QUEUED else "finished"
            self.log(
                f"{verb} {job.id}: {record.state}" + (f" ({record.error})" if record.error else "")
            )
        self._release(job.id, handle)

    def _release(self, job_id: str, handle: dict[str, Any]) -> None:
        """SIGTERM to the executor's group now, SIGKILL after kill_grace if it lingers."""
        self.active.pop(job_id, None)
        executor = self.executor_for(handle)
        if executor.alive(handle):
            executor.signal(handle, force=False)
            self.releasing[job_id] = (handle, time.monotonic() + self.config.kill_grace)
            self.log(f"released {job_id}: SIGTERM to {describe_handle(handle)} and its group")
        else:
            executor.forget(handle)

    def _advance_releases(self) -> None:
        for job_id, (handle, kill_at) in list(self.releasing.items()):
            executor = self.executor_for(handle)
            if not executor.alive(handle):
                del self.releasing[job_id]
                executor.forget(handle)
            elif time.monotonic() >= kill_at:
                executor.signal(handle, force=True)
                self.log(f"released {job_id}: SIGKILL to {describe_handle(handle)} and its group")
                self.releasing[job_id] = (handle, time.monotonic() + 1.0)


def _age(item: Job | Invalid) -> tuple[str, str]:
    """Oldest first: by creation time, then id (a hand-written file has no creation time)."""
    created = getattr(item, "created_at", None)
    return (created.isoformat() if created else "", item.id)


def _start_error(exc: Exception) -> str:
    if isinstance(exc, FileNotFoundError) and not exc.filename:
        return str(exc)  # "codex: command not found on PATH"
    if isinstance(exc, OSError):
        return f"could not start: {exc.strerror or exc}"
    return str(exc)


def _where(job: Job) -> str:
    return job.where or "local"


def _id_of(job: Job) -> Any:
    return handle_id(job.executor) if isinstance(job.executor, dict) else None
