"""Which queued jobs may start now, and in what order: highest priority first, then oldest.

A step looks only at the live jobs (queued, running, or with a worktree to settle), which the
runner's table keeps as records change, so its cost follows the queue, not every record kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from datetime import datetime, timezone
from typing import Any

from repowire.record.dependencies import REMOVED, Readiness, readiness
from repowire.record.job import Invalid, Job, enter_state
from repowire.record.states import State
from repowire.runner.scheduling import Scheduler
from repowire.store.records import Store
from repowire.worktrees.worktree import folder_for

# A dependency whose record stays missing this long counts as removed (jobs rm, or never
# written): its dependents are canceled, or run, as their on_dependency_failure says.
MISSING_SECONDS = 5.0

__all__ = ["Chooser", "live_jobs"]

Order = tuple[int, datetime, str]


class Chooser:
    """Chooses the due jobs of a step; cancels a queued job whose dependency failed."""

    def __init__(
        self,
        store: Store,
        scheduler: Scheduler,
        log: Callable[[str], None],
        guard: Callable[..., None],
        state_of: Callable[[str], str | None] = lambda job_id: None,
    ) -> None:
        self.store, self.scheduler, self.log, self.guard = store, scheduler, log, guard
        self.state_of = state_of  # the state of a record the listing leaves out (resting)
        self.missing: dict[str, float] = {}  # dependencies found missing, since when
        self.told: set[str] = set()  # queued jobs with nothing to run, logged once
        self._orders: dict[str, tuple[Job, Order]] = {}  # each queued job's place, kept
        self._sorted: list[tuple[Order, str, Job]] = []  # the queue in order at the last step

    def due(
        self,
        jobs: dict[str, Job | Invalid],
        live: Collection[str],
        now: datetime,
        waits: list[float],
        room: dict[str, int] | None = None,
    ) -> list[Job]:
        """Queued jobs that may start now, in order, as many of each kind of executor as
        `room` says (all, without); a later one's wait goes into `waits`. Once an executor
        is full, its queued jobs are looked at only for a dependency that failed."""
        alive = live_jobs(jobs, live)
        busy = {str(j.template) for j in alive if j.template and j.state == State.RUNNING}
        queued = [j for j in alive if j.state == State.QUEUED]
        wanted = any(j.workspace == "worktree" for j in queued)
        trees = {_tree_in_use(j) for j in alive} if wanted else set()
        chosen: list[Job] = []
        after_left = sum(1 for j in queued if j.after)
        kinds = {j.runs_on for j in queued}  # the executors the queue needs
        for item in self._in_order(queued):
            if room is not None and room.get(item.runs_on, 0) <= 0:
                if item.after:  # a failed dependency still cancels it now
                    self._dependencies_allow(item, jobs, now)
                elif not after_left and all(room.get(kind, 0) <= 0 for kind in kinds):
                    break  # every executor it needs is full: the rest of the queue waits
            elif self._may_start(item, jobs, now, waits, busy, trees):
                if item.template:
                    busy.add(item.template)
                if room is not None:
                    room[item.runs_on] -= 1
                chosen.append(item)
            after_left -= bool(item.after)
        if len(self._orders) > 2 * len(queued) + 64:  # forget the places of jobs gone by
            self._orders = {j.id: self._orders[j.id] for j in queued if j.id in self._orders}
        return chosen

    def _may_start(
        self,
        item: Job,
        jobs: dict[str, Job | Invalid],
        now: datetime,
        waits: list[float],
        busy: set[str],
        trees: set[str | None],
    ) -> bool:
        if item.effective_backend is None:
            if item.id not in self.told:
                self.told.add(item.id)
                self.log(f"skipped {item.id}: no command or backend; tracked by hand")
            return False
        if not item.is_due(now):
            waits.append((item.not_before - now).total_seconds())  # type: ignore[operator]
            return False
        if item.after and not self._dependencies_allow(item, jobs, now, waits):
            return False  # waits for the jobs it names, or was canceled for their failure
        if item.template and self._overlap_holds(item.template, busy):
            return False  # waits for the template's running run (overlap: skip or queue)
        # a template's shared worktree: one run at a time works in it
        return item.workspace != "worktree" or _take(trees, folder_for(self.store, item))

    def _in_order(self, queued: list[Job]) -> list[Job]:
        """The queued jobs in order, kept sorted from step to step: only the jobs that are new,
        or whose record changed, are placed again (a long queue is not sorted at every step)."""
        objects = {j.id: j for j in queued}
        kept = [placed for placed in self._sorted if objects.get(placed[1]) is placed[2]]
        if len(kept) < len(queued):
            known = {placed[1] for placed in kept}
            kept += [(self._order(j), j.id, j) for j in queued if j.id not in known]
            kept.sort(key=_place)
        self._sorted = kept
        return [placed[2] for placed in kept]

    def _order(self, job: Job) -> Order:
        known = self._orders.get(job.id)
        if known is None or known[0] is not job:  # its record changed: its place may have
            known = (job, (-job.priority, *_age_key(self.store, job)))
            self._orders[job.id] = known
        return known[1]

    def _dependencies_allow(
        self,
        job: Job,
        jobs: dict[str, Job | Invalid],
        now: datetime,
        waits: list[float] | None = None,
    ) -> bool:
        """Whether the jobs it waits for let it start; one that failed cancels it (by policy),
        and so does one whose record has been missing for MISSING_SECONDS (removed)."""
        states = {}
        for dep_id in job.after:
            dep = jobs.get(dep_id)  # a broken one has no state; one resting, only its state
            state = dep.state.value if isinstance(dep, Job) else self.state_of(dep_id)
            if state is None and dep is None:
                state = self._removed(dep_id, waits)
            else:
                self.missing.pop(dep_id, None)  # there (again)
            if state is not None:
                states[dep_id] = state
        found = readiness(job.after, job.on_dependency_failure, states)
        if found.cancel:
            self.guard(job.id, self._cancel_for, job, found, states, now)
        return found.ready

    def _cancel_for(
        self, job: Job, found: Readiness, states: dict[str, str], now: datetime
    ) -> None:
        """Cancel a queued job whose dependency failed or was canceled, naming it."""
        state = states.get(str(found.failed))
        reason = f"dependency {found.failed} " + ("was removed" if state == REMOVED else str(state))

        def change(record: Job) -> bool:
            if record.state != State.QUEUED:
                return False
            enter_state(record, State.CANCELED, f"canceled: {reason}", now)
            record.error = reason
            return True

        self.store.transition(job.id, change)
        self.log(f"canceled {job.id}: {reason}")

    def _removed(self, dep_id: str, waits: list[float] | None) -> str | None:
        """REMOVED for a dependency whose record has been missing for MISSING_SECONDS (a file
        written a moment later, as a script drops a job and then what it waits for, is not)."""
        since = self.missing.setdefault(dep_id, time.monotonic())
        left = since + MISSING_SECONDS - time.monotonic()
        if left > 0:
            if waits is not None:
                waits.append(left)
            return None
        return REMOVED

    def _overlap_holds(self, name: str, busy: set[str]) -> bool:
        template = self.scheduler.templates.get(name)
        return name in busy and (template is None or template.overlap not in ("allow", "replace"))


def _place(placed: tuple[Order, str, Job]) -> Order:
    return placed[0]


def live_jobs(jobs: dict[str, Any], live: Collection[str]) -> list[Job]:
    """The live jobs of the listing (those of `live` it holds as jobs)."""
    return [j for i in live if isinstance(j := jobs.get(i), Job)]


def _take(trees: set[str | None], path: str) -> bool:
    """Take a worktree folder for a run starting in this step; False if it is in use."""
    if path in trees:
        return False
    trees.add(path)
    return True


def _tree_in_use(job: Job) -> str | None:
    """The worktree a run works in, or whose settling is still to come."""
    tree = job.worktree
    busy = tree is not None and tree.pending and job.state != State.QUEUED
    return tree.path if busy and tree is not None else None


def _age_key(store: Store, job: Job) -> tuple[datetime, str]:
    """Oldest first: a record's creation time, else (a hand-written file has none) the time
    its file was last written, then the id."""
    created_at = job.created_at
    if created_at is None:
        try:
            stamp = store.job_file(job.id).lstat().st_mtime
        except (OSError, ValueError):
            stamp = 0.0
        created_at = datetime.fromtimestamp(stamp, timezone.utc)
    return (created_at, job.id)
