"""The runs of a template: one queued job per fired slot, named after the slot."""

from __future__ import annotations

from datetime import datetime

from repowire import clock
from repowire.errors import ValidationError
from repowire.record.job import Job, Note, split_executor
from repowire.record.template import Template
from repowire.store.records import Store
from repowire.times import format_time

__all__ = ["run_id_for", "new_run", "fire_now"]


def run_id_for(name: str, slot: datetime) -> str:
    """The run of a slot: <template>-<YYYYMMDDTHHMMSSZ>."""
    return f"{name}-{format_time(slot).replace('-', '').replace(':', '')}"


def new_run(template: Template, slot: datetime, note: str) -> Job:
    """The queued run of a template for one slot (its definition, path defaulting to the folder)."""
    definition = dict(template.definition)
    definition.setdefault("path", f".repowire/agents/{template.name}")
    definition.setdefault("name", template.name)
    definition.pop("due_at", None)
    definition.update(split_executor(definition.pop("executor", None)))
    return Job(
        id=run_id_for(template.name, slot),
        **definition,
        template=template.name,
        scheduled_for=slot,
        continuity=template.continuity,
        notes=[Note(clock.now(), note)],
    )


def fire_now(store: Store, template: Template, now: datetime) -> Job:
    """A run of the template named for the current second (`jobs run`); a second run in the
    same second is <slot id>-2, -3, ..."""
    slot = now.replace(microsecond=0)
    run = new_run(template, slot, "fired by hand (jobs run)")
    first = run.id
    for number in range(2, 100):
        if store.try_create(run):
            return run
        run.id = f"{first}-{number}"
    raise ValidationError(f"{template.name} was fired 99 times at {format_time(slot)}; try again")
