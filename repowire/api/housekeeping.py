"""Removing finished work: `jobs rm` and `jobs prune`, and a new run of a finished job (`rerun`).

A job is removed under its lock, record first: a crash between the record and its sibling files
leaves at worst a stray log or result file, never a half-removed record that a listing reports as
broken. Only terminal jobs are removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from repowire.errors import JobNotFound, TransitionRefused
from repowire.ids import new_job_id
from repowire.record.job import Job, Note, job_from_record
from repowire.record.parsing import DEFINITION_KEYS
from repowire.record.states import TERMINAL, State
from repowire.store.records import Store
from repowire.times import format_time
from repowire.worktrees.worktree import delete_branch, is_shared

__all__ = ["remove", "remove_jobs", "prune", "branches_of", "rerun_of"]


def remove(store: Store, job_id: str) -> Job | None:
    """Remove a terminal job's record and its sibling files; None if it was gone already."""
    with store.lock(job_id):
        try:
            job = store.read_job(job_id)
        except JobNotFound:
            return None
        if job.state not in TERMINAL:
            raise TransitionRefused(
                f"job {job_id} is {job.state}; only finished jobs are removed "
                "(cancel it first, or use --force)"
            )
        store.remove_job_files(job_id)
    return job


@dataclass(frozen=True)
class Selection:
    """What `prune` looks at: finished jobs older than a time, optionally in one state."""

    finished_before: datetime
    state: str | None = None

    def takes(self, record: dict[str, object]) -> bool:
        if record.get("state") not in {s.value for s in TERMINAL}:
            return False
        if self.state is not None and record.get("state") != self.state:
            return False
        finished = record.get("finished_at") or record.get("updated_at")
        return isinstance(finished, str) and finished <= format_time(self.finished_before)


def prune(
    store: Store, older_than: float, state: str | None, dry_run: bool, now: datetime
) -> list[Job]:
    """Remove (or, dry, name) the finished jobs older than `older_than` seconds."""
    selection = Selection(now - timedelta(seconds=older_than), state)
    rows = store.list_rows()
    chosen = [job_from_record(row.record) for row in rows if selection.takes(row.record)]
    if dry_run:
        return chosen
    return [job for job in (remove(store, job.id) for job in chosen) if job is not None]


def branches_of(store: Store, removed: list[Job], dry_run: bool) -> list[str]:
    """Delete (or, dry, name) the branches of removed worktree runs, with any kept worktree;
    a template's shared branch stays, as later runs go on from it."""
    if dry_run:
        return [
            job.worktree.branch
            for job in removed
            if job.worktree is not None and job.worktree.head and not is_shared(job)
        ]
    deleted = (delete_branch(store, job) for job in removed if job.worktree is not None)
    return [branch for branch in deleted if branch]


def remove_jobs(
    store: Store,
    job_ids: list[str],
    force: bool,
    dry_run: bool,
    cancel: Callable[[str, str], object],
) -> list[Job]:
    """Remove each job (all checked first); with force, an unfinished one is canceled first."""
    jobs = [store.read_job(job_id) for job_id in job_ids]
    unfinished = [job for job in jobs if job.state not in TERMINAL]
    if unfinished and not force:
        raise TransitionRefused(
            f"job {unfinished[0].id} is {unfinished[0].state}; only finished jobs are removed "
            "(cancel it first, or use --force)"
        )
    if dry_run:
        return jobs
    for job in unfinished:
        cancel(job.id, "removed (jobs rm --force)")
    return [job for job in (remove(store, job.id) for job in jobs) if job is not None]


def rerun_of(store: Store, job: Job, now: datetime) -> Job:
    """A new queued job with the definition of a finished one, saying where it came from."""
    if job.state not in TERMINAL:
        raise TransitionRefused(f"job {job.id} is {job.state}; only finished jobs are run again")
    definition = {key: getattr(job, key) for key in DEFINITION_KEYS if key != "executor"}
    definition.update(due_at=None, after=[])  # due now; what it waited for has run
    copy = Job(
        id=new_job_id(now),
        **definition,
        where=job.runs_on if job.runs_on != "local" else job.where,
        state=State.QUEUED,
        notes=[Note(now, f"rerun of {job.id} (which {job.state})")],
    )
    return store.create_job(copy, generated_id=True)
