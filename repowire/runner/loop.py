"""The runner: a step function that reconciles everything from the files, inside a loop.

Events from the watcher only wake the loop early; a missed event costs latency, never
correctness. The step claims due jobs, spawns executors, finalizes ended ones, enforces
timeouts, releases executors of terminal jobs and recovers after a crash.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from repowire import clock
from repowire.errors import NotTrusted
from repowire.executors.contract import HOST, Executor
from repowire.executors.local_processes import LocalExecutor, process_identity
from repowire.executors.slurm import SlurmExecutor
from repowire.notify.notifier import Notifier
from repowire.notify.targets import RECENT
from repowire.record.job import Invalid, Job
from repowire.record.states import State
from repowire.runner.choosing import Chooser, live_jobs
from repowire.runner.guard import Guard
from repowire.runner.lookout import Lookout
from repowire.runner.preconditions import Preconditions
from repowire.runner.presence import Presence
from repowire.runner.recovery import Recovery
from repowire.runner.scheduling import Scheduler
from repowire.runner.settings import LiveSettings
from repowire.runner.starter import Starter
from repowire.runner.supervising import Supervisor
from repowire.runner.table import JobTable
from repowire.runner.worktree_runs import WorktreeRuns
from repowire.store.config import Config, is_trusted, load_config, require_repowire
from repowire.store.records import RACY_NS, Store
from repowire.times import format_time
from repowire.worktrees.worktree import remove_leftovers

__all__ = ["Runner", "RESCAN_SECONDS"]

RESCAN_SECONDS = 30.0  # a reconcile even without events: network file systems send none
ACTIVE_POLL_SECONDS = 0.5  # how often own executors are looked at while any runs


class Runner:
    """Runs the jobs of one root. `step(now)` does one reconcile; `run()` loops around it.

    The work is shared among collaborators: the Scheduler fires templates, the Supervisor starts,
    watches, finishes and releases attempts, and Recovery settles records of earlier lives."""

    def __init__(
        self, root: Path, max_concurrency: int | None = None, log: TextIO | None = None
    ) -> None:
        require_repowire(root)
        self.store = Store(root)
        self._cli_max = max_concurrency  # --max-concurrency wins over config.yaml
        self.out = log or sys.stderr
        self.settings = LiveSettings(root, self.log, load_config(root))
        self.wake = threading.Event()
        self.local = LocalExecutor()
        executors: dict[str, Executor] = {"local": self.local, "slurm": SlurmExecutor()}
        identity = f"{HOST}:{os.getpid()}:{process_identity(os.getpid())}"
        # the records, looked at again as events tell; finished ones rest as their state
        self.table = JobTable(self.store, self._may_rest)
        self.lookout = Lookout(self.store.jobs_dir, self.store.agents_dir)
        self.guard = Guard(self.log)
        precondition = Preconditions(self.store, self.settings, self.wake.set)
        self.precondition = precondition  # run_if, each on a thread of its own
        self.scheduler = Scheduler(self.store, self.log, precondition)
        trees = WorktreeRuns(self.store, self.log)
        starter = Starter(
            self.store, executors, self.scheduler, trees, precondition, identity, self.log
        )
        self.supervisor = Supervisor(
            self.store, executors, starter, self.scheduler, self.settings, self.log
        )
        self.recovery = Recovery(self.store, self.supervisor, self.log)
        self.notifier = Notifier(self.store, self.log, self.wake.set)
        self.presence = Presence(root, os.getpid(), HOST, process_identity(os.getpid()))
        self.chooser = Chooser(
            self.store, self.scheduler, self.log, self.guard, self.table.state_of
        )
        self._stepped: set[str] = set()  # ids whose object changed in this step
        self.told_invalid: dict[str, str] = {}  # broken job files logged, with their problem
        self._timers = True  # the last step wants waking for more than the periodic rescan
        self.stopping = False

    @property
    def config(self) -> Config:
        """The settings the runner serves with now (config.yaml, kept in step with its file)."""
        return self.settings.config

    @property
    def max_concurrency(self) -> int:
        return self._cli_max or self.config.max_concurrency

    @property
    def identity(self) -> str:
        return self.supervisor.identity

    # --- the loop ---------------------------------------------------------------------------

    def log(self, text: str) -> None:
        print(f"{format_time(clock.now())} {text}", file=self.out, flush=True)

    def check_trust(self) -> None:
        if not is_trusted(self.store.root):
            raise NotTrusted(
                f"{self.store.root} is not trusted, so the runner will not execute its jobs; "
                "run 'repowire trust' there if you trust its .repowire/ folder"
            )

    def run(self, once: bool = False) -> list[str]:
        """Serve until SIGTERM or SIGINT; with once, until every due job has ended. Returns the
        jobs whose part of a step kept failing (a claim that could not be written, say)."""
        from repowire.watch.watcher import Watcher

        self.check_trust()
        self.store.ensure_layout()
        from repowire.store.layout import remove_stale_temp_files

        for path in remove_stale_temp_files(self.store):
            self.log(f"removed {path.name}, left by a writer that crashed")
        remove_leftovers(self.store)
        watcher = Watcher([self.store.jobs_dir, self.store.agents_dir], self.wake)
        if not watcher.start():
            self.log(str(watcher.error))
        self.lookout.changes = watcher.changes
        self.presence.remove_dead(self.store.root, HOST)
        self.presence.beat(clock.now())
        previous = self._install_signal_handlers()
        self.log(
            f"runner {self.identity} serving {self.store.root} "
            f"(max_concurrency {self.max_concurrency})"
        )
        try:
            self._loop(watcher, once)
        finally:
            watcher.stop()
            self.notifier.close()
            self.precondition.close()  # their jobs wait, queued, for the next runner
            self.presence.remove()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        left = len(self.supervisor.active)
        self.log(
            "runner stopped"
            + (f"; {left} executor(s) left running for the next runner" if left else "")
        )
        return sorted(self.guard.failing)

    def _loop(self, watcher: Any, once: bool) -> None:
        delay, due = 0.0, 0.0  # what the last step asked: a wait, and its end (monotonic)
        while not self.stopping:
            woken = self.wake.is_set()
            self.wake.clear()  # before the step: an event during it wakes the next wait
            timers = self._timers and time.monotonic() >= due
            if woken or timers or self.lookout.folders_changed(watcher.healthy(), RESCAN_SECONDS):
                delay = self.step()
                due = time.monotonic() + delay
            if once and self.finished_once():
                break
            self.presence.beat(clock.now())
            if watcher.stale():
                self.log("file watcher died, or jobs/ or agents/ was replaced; restarting it")
                watcher.restart()
                self.wake.set()  # what changed while nothing watched is found by a step
            left = due - time.monotonic()  # woken early for nothing: the rest of the wait
            self.wake.wait(left if left > 0 else delay)  # past it: the periodic look again

    def _install_signal_handlers(self) -> dict[int, Any]:
        def stop(signum: int, _frame: Any) -> None:
            self.stopping = True
            self.wake.set()

        if threading.current_thread() is not threading.main_thread():
            return {}
        return {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}

    def finished_once(self) -> bool:
        """--once is done: nothing running here, nothing due, none of its jobs awaiting a retry."""
        if self.supervisor.busy or self.notifier.busy or self.precondition.busy:
            return False
        now = clock.now()
        listed = self._listing()
        jobs = {job_id: j for job_id, j in listed.items() if isinstance(j, Job)}
        if self.settings.trusted and self.notifier.pending(jobs, self.config.notify, now):
            return False  # a notification to try once more (its retries are not waited for)
        verdicts: dict[str, bool] = {}  # whether each queued job will run, worked out once
        for item in live_jobs(jobs, self.table.live):
            if item.worktree and item.worktree.pending and item.state != State.RUNNING:
                if item.id not in self.supervisor.trees.failing:
                    return False  # its worktree is settled at the next step
            if item.state == State.QUEUED and item.effective_backend is not None:
                if item.id in self.guard.failing:
                    continue  # e.g. its lock cannot be taken: a person must look at it
                if item.id in self.supervisor.started or self._will_run(item, jobs, now, verdicts):
                    return False
        return True

    def _will_run(
        self, job: Job, jobs: dict[str, Job], now: datetime, verdicts: dict[str, bool]
    ) -> bool:
        """Whether a queued job will start in this --once: it is due, and every job it waits
        for is running or will run too (one waiting for a missing or later job, or for itself
        through a cycle, will not). Walked with a stack, not recursion: a chain of `after`
        may be thousands long; `verdicts` keeps each job's answer for the next question."""
        stack, on_path = [(job, False)], set()
        while stack:
            item, expanded = stack.pop()
            if item.id in verdicts:
                continue
            if expanded:
                on_path.discard(item.id)
                verdicts[item.id] = self._dependencies_will_run(item, jobs, verdicts)
            elif not item.is_due(now) or item.id in on_path:
                verdicts[item.id] = False  # not due yet, or waiting on itself
            else:
                on_path.add(item.id)
                stack.append((item, True))
                stack += [(dep, False) for dep in _queued(item.after, jobs, verdicts)]
        return verdicts[job.id]

    def _dependencies_will_run(
        self, job: Job, jobs: dict[str, Job], verdicts: dict[str, bool]
    ) -> bool:
        for dep_id in job.after:
            dep = jobs.get(dep_id)
            if dep is None:
                if self.table.state_of(dep_id) is None:
                    return False  # missing: it may never come
                continue  # finished, and resting
            if dep.state == State.QUEUED and not verdicts.get(dep_id, False):
                return False
        return True

    # --- one step ---------------------------------------------------------------------------

    def step(self, now: datetime | None = None) -> float:
        """Reconcile once at `now`; return how long the loop may sleep before the next step."""
        now = now or clock.now()
        served = self.config
        if self.settings.refresh():
            self._apply(served)
        jobs = self._listing()
        self._report_invalid(jobs)
        self._watch_and_recover(jobs, now)
        waits = [RESCAN_SECONDS]
        if self.settings.trusted:  # a revoked root fires and starts nothing new
            next_slot, fired = self.scheduler.step(jobs, now)
            if next_slot is not None:
                waits.append(next_slot)
            if fired:
                jobs = self._listing()
            self._start_due(jobs, now, waits)
            waits += self.notifier.step(jobs, self.config.notify, now)
        if self.supervisor.busy:
            waits.append(ACTIVE_POLL_SECONDS)
        if self.table.unsettled:  # read once more when their identity can be trusted
            waits.append(RACY_NS / 1e9)
        self._rest()
        deadlines = self.supervisor.deadlines(now)
        self._timers = len(waits) > 1 or bool(deadlines)  # anything but the periodic rescan
        return max(0.0, min(waits + deadlines))

    def _listing(self) -> dict[str, Job | Invalid]:
        """The records now (but those resting); recovery and the notifier look again at
        those that changed."""
        jobs = self.table.jobs(True, self.lookout.take_changes())
        fresh = self.table.take_fresh()
        for pending in (self.recovery.pending, self.notifier.looking, self._stepped):
            pending.update(fresh)
        return jobs

    def _may_rest(self, job_id: str, rest: int, changed: float) -> bool:
        """Whether a finished record the index holds (rows.rest_of) needs no object here:
        nothing of its attempt lives, no exit file is left to tidy, and no notification can be
        owed to it."""
        if job_id in self.lookout.exit_files:
            return False  # left by a runner killed as it finished: recovery removes it
        if self.config.notify and changed > time.time() - RECENT.total_seconds():
            return False  # config.yaml's default may still be owed
        return not rest or not _group_exists(rest)

    def _rest(self) -> None:
        """Let the finished records of this step that nothing waits on rest as their state."""
        if not self._stepped:
            return
        busy = (self.recovery.pending | self.notifier.looking | set(self.supervisor.active)).union(
            self.supervisor.releasing
        )
        self.table.rest(self._stepped - busy)
        self._stepped = set()

    def _report_invalid(self, jobs: dict[str, Job | Invalid]) -> None:
        """Log each broken job file once (again if its problem changes), as for templates."""
        broken = {i: item for i in self.table.broken if isinstance(item := jobs.get(i), Invalid)}
        for job_id, item in broken.items():
            if self.told_invalid.get(job_id) != item.error:
                self.log(f"skipped {item.path}: {item.error}")
        self.told_invalid = {job_id: item.error for job_id, item in broken.items()}

    def _watch_and_recover(self, jobs: dict[str, Job | Invalid], now: datetime) -> None:
        watched = set(self.supervisor.active)
        for job_id in watched:
            found = jobs.get(job_id)
            if isinstance(found, Invalid):  # being edited by hand: its timeout still holds
                self.guard(job_id, self.supervisor.watch_unreadable, job_id, now)
            else:
                self.guard(job_id, self.supervisor.watch, job_id, found, now)
        for job_id in sorted(self.recovery.pending - watched):
            item = jobs.get(job_id)
            if isinstance(item, Job):
                self.guard(job_id, self.recovery.recover, item, now)
            if not isinstance(item, Job) or (
                job_id not in self.guard.failing and self.recovery.settled(item)
            ):
                self.recovery.pending.discard(job_id)  # until its record changes
        self.supervisor.advance_releases(now)

    def _start_due(self, jobs: dict[str, Job | Invalid], now: datetime, waits: list[float]) -> None:
        running = self.supervisor.running_on
        room = {kind: self._limit(kind) - running(kind) for kind in ("local", "slurm")}
        for job in self.chooser.due(jobs, self.table.live, now, waits, room):
            self.guard(job.id, self.supervisor.start, job, now)

    def _apply(self, before: Config) -> None:
        """Serve with the new settings (every collaborator reads them from self.settings): a
        new default notification may be owed to a finished job."""
        if before.notify != self.config.notify:
            self.table.wake_resting()

    def _limit(self, kind: str) -> int:
        return self.config.slurm_max_jobs if kind == "slurm" else self.max_concurrency


def _group_exists(pgid: int) -> bool:
    """Whether a process group of this number exists (of anyone's)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's: its attempt is judged with the whole record
    return True


def _queued(ids: list[str], jobs: dict[str, Job], verdicts: dict[str, bool]) -> list[Job]:
    """The jobs of `ids` that are queued and not yet judged."""
    return [
        dep
        for dep_id in ids
        if (dep := jobs.get(dep_id)) is not None
        and dep.state == State.QUEUED
        and dep_id not in verdicts
    ]
