"""The runner's side of worktree runs: plan one in the claim, open it before the start, and
settle it (commit, record, tidy) once no process of the attempt is left."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from repowire.errors import RepowireError
from repowire.record.job import Job, Note, Worktree
from repowire.store.records import Store
from repowire.worktrees import worktree as workspace

__all__ = ["WorktreeRuns", "Settled"]

Settled = tuple[Worktree, str]  # the finished worktree entry and the note saying what changed


class WorktreeRuns:
    """Worktrees of the runs one runner holds or finds unsettled."""

    def __init__(self, store: Store, log: Callable[[str], None]) -> None:
        self.store = store
        self.log = log
        self.tidied: set[str] = set()  # settled runs whose folder was looked at in this life
        self.failing: dict[str, str] = {}  # runs whose settling failed, with the error told

    def plan(self, job: Job) -> tuple[Worktree | None, str | None]:
        """The worktree a claim of this job names, or the sentence why it cannot have one."""
        if job.workspace != "worktree":
            return None, None
        try:
            return workspace.plan(self.store, job), None
        except RepowireError as exc:
            return None, str(exc)

    def open(self, job: Job) -> Path | None:
        """The root's place inside the job's worktree, made if need be (None: no worktree)."""
        return None if job.worktree is None else workspace.ensure(self.store, job.worktree)

    def finalize(self, job: Job) -> Settled | None:
        """Commit what an ended attempt left; None if there is nothing to do or it failed (it
        is tried again by `settle` until it works; the failure is told once)."""
        tree = job.worktree
        if tree is None or not tree.pending:
            return None
        try:
            settled = workspace.finalize(self.store, job, tree)
        except (RepowireError, OSError) as exc:
            if self.failing.get(job.id) != str(exc):
                self.log(f"{job.id}: could not commit its worktree yet ({exc}); trying again")
            self.failing[job.id] = str(exc)
            return None
        self.failing.pop(job.id, None)
        return settled

    @staticmethod
    def apply(record: Job, before: Worktree | None, settled: Settled, now: datetime) -> None:
        """Write a settled worktree into the record, if it still names the one settled."""
        if record.worktree == before:
            record.worktree = settled[0]
            record.notes.append(Note(now, settled[1]))

    def tidy(self, job: Job) -> None:
        """Remove a settled run's folder and empty branch (again after a crash)."""
        tree = job.worktree
        if tree is None or tree.pending:
            return
        try:
            workspace.clean(self.store, job, tree)
        except (RepowireError, OSError) as exc:
            self.log(f"{job.id}: could not remove its worktree ({exc})")
        self.tidied.add(job.id)

    def unsettled(self, job: Job) -> bool:
        """Whether the job's worktree may still want settling or tidying in this runner's life."""
        tree = job.worktree
        return tree is not None and (tree.pending or job.id not in self.tidied)

    def settle(self, job: Job, now: datetime) -> None:
        """An attempt that is over and whose worktree is not: commit, record, tidy. A settled
        one whose folder is still there (a runner killed while removing it) is tidied."""
        tree = job.worktree
        if tree is None:
            return
        if not tree.pending:  # recovery asks only once per runner life (unsettled())
            if (self.store.root / tree.path).exists():
                self.tidy(job)
            self.tidied.add(job.id)
            return
        settled = self.finalize(job)
        if settled is None:
            return
        applied = False

        def change(record: Job) -> bool:
            nonlocal applied
            self.apply(record, tree, settled, now)
            applied = record.worktree is settled[0]
            return applied

        record = self.store.transition(job.id, change)
        if applied:
            self.tidy(record)
