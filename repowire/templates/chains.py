"""Chained templates: when a run ends, the templates its template names in `then` (on success)
or `then_on_failure` (on failure) fire, each run saying what triggered it.

A chained run's id is derived from the run that triggered it, and written with an exclusive
create, so firing it again (a runner restarted between a run's end and its chain) never makes a
second one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime

from repowire.errors import RepowireError
from repowire.record.job import Job
from repowire.record.states import State
from repowire.record.template import Template
from repowire.store.records import Store
from repowire.templates.runs import new_run
from repowire.times import format_time

__all__ = ["chained_id", "fire_chained", "targets"]


def targets(template: Template, run: Job) -> list[str]:
    """The templates a run's end fires."""
    if run.state == State.SUCCEEDED:
        return list(template.then)
    if run.state == State.FAILED:
        return list(template.then_on_failure)
    return []


def chained_id(target: str, run: Job, at: datetime) -> str:
    """<target>-<YYYYMMDDTHHMMSSZ>-<8 hex of the triggering run's id>."""
    stamp = format_time(at).replace("-", "").replace(":", "")
    return f"{target}-{stamp}-{hashlib.sha256(run.id.encode()).hexdigest()[:8]}"


def fire_chained(
    store: Store, template: Template, run: Job, log: Callable[[str], None]
) -> list[str]:
    """Fire the templates a finished run's template chains to; the ids of the runs made."""
    from repowire.templates.storage import read_template

    at = run.finished_at or run.updated_at
    made = []
    for name in targets(template, run):
        if at is None:
            break
        try:
            target = read_template(store, name)
        except RepowireError as exc:
            log(f"chain {template.name} -> {name} not fired: {exc}")
            continue
        if store.job_file(chained_id(name, run, at)).exists():
            continue  # fired already (this is the check after a restart)
        job = new_run(target, at.replace(microsecond=0), f"triggered by {run.id} ({run.state})")
        job.id = chained_id(name, run, at)
        job.triggered_by = run.id
        if store.try_create(job):
            log(f"fired {job.id}: {run.id} {run.state}")
            made.append(job.id)
    return made
