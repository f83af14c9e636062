"""Recurring templates in the runner: fire due slots, record skips, keep state.yaml, prune runs.

The runner never writes a template's job.yaml; everything it knows about a template goes to
state.yaml beside it, under the template's own lock, so two runners agree.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from repowire import clock
from repowire.backends.usage import add_usage
from repowire.errors import RepowireError, TransitionRefused
from repowire.record.dependencies import find_cycle
from repowire.record.job import Invalid, Job, Note, enter_state
from repowire.record.states import TERMINAL, State
from repowire.record.template import Template
from repowire.runner.preconditions import Preconditions
from repowire.store.records import Store
from repowire.templates.budgets import budget_paused, budget_step
from repowire.templates.chains import fire_chained
from repowire.templates.cron import CATCHUP_CAP, next_fires, plan_catchup, slots_between, zone
from repowire.templates.runs import new_run, run_id_for
from repowire.templates.storage import list_templates, read_state, read_template, write_state
from repowire.times import format_time, parse_duration, parse_time

__all__ = ["Scheduler", "SKIPPED_KEPT"]

SKIPPED_KEPT = 50  # skipped-slot entries kept in state.yaml (neighbours with one reason merge)
SLOT_SCAN_LIMIT = 1000  # slots looked at after an outage; older ones are counted as one entry


def _time(value: Any) -> datetime | None:
    try:
        return parse_time(value) if value else None
    except RepowireError:
        return None


# A worker folder whose job.yaml is gone is told of only once it stays so this long: a folder
# being deleted has no job.yaml for a moment, and is then gone, which is nothing to tell.
MISSING = "a worker folder needs a job.yaml"
MISSING_GRACE = 2.0


class Scheduler:
    """The template half of the runner's step."""

    def __init__(
        self,
        store: Store,
        log: Callable[[str], None],
        precondition: Preconditions | None = None,
    ) -> None:
        self.store = store
        self.log = log
        self.precondition = precondition  # a run's `run_if`, checked at its fire
        self.missing: dict[str, float] = {}  # worker folders without a job.yaml, since when
        self.told: dict[str, str] = {}
        self.templates: dict[str, Template] = {}
        self.chained: set[str] = set()  # runs whose chain this runner has looked at
        self.jobs: dict[str, Job | Invalid] = {}  # the records of the last step
        self.looping: set[str] = set()  # templates on a `then` loop: no chain is fired

    def step(self, jobs: dict[str, Job | Invalid], now: datetime) -> tuple[float | None, bool]:
        """Fire every due slot; return seconds until the next slot, and whether anything fired."""
        self.templates = {}
        self.jobs = jobs
        waits: list[float] = []
        fired = False
        missing = self.missing
        self.missing = {}
        for item in list_templates(self.store):
            if isinstance(item, Invalid):
                if item.error.endswith(MISSING):  # a folder being removed passes through this
                    self.missing[item.id] = since = missing.get(item.id, time.monotonic())
                    if time.monotonic() - since < MISSING_GRACE:
                        waits.append(MISSING_GRACE)
                        continue
                self._tell(item.id, f"skipped template {item.id}: {item.error}")
                continue
            self.templates[item.name] = item
            try:
                next_at, any_fired = self._serve(item, jobs, now)
            except Exception as exc:  # one broken template never stops the others
                self._tell(item.name, f"error template {item.name}: {exc}")
                continue
            self.told.pop(item.name, None)
            if item.then or item.then_on_failure:
                self._chain_after_a_crash(item, jobs, now)
            fired = fired or any_fired
            if next_at is not None:
                waits.append(max(0.0, (next_at - now).total_seconds()))
        self._find_loops()
        return (min(waits) if waits else None), fired

    def _find_loops(self) -> None:
        """Templates whose `then` chains loop back fire no chain (validate reports them)."""
        graph = {t.name: [*t.then, *t.then_on_failure] for t in self.templates.values()}
        cycle = find_cycle(graph) or []
        self.looping = set(cycle)
        if cycle:
            self._tell(f"loop.{cycle[0]}", f"chain not fired: it loops back, {' -> '.join(cycle)}")

    def _chain(self, template: Template, run: Job) -> None:
        if template.name not in self.looping:
            fire_chained(self.store, template, run, self.log)

    def _chain_after_a_crash(
        self, template: Template, jobs: dict[str, Job | Invalid], now: datetime
    ) -> None:
        """Fire the chain of the newest run that ended in the last ten minutes, in case a runner
        stopped between that run's end and its chain (firing it twice makes nothing new)."""
        ended = [j for j in self.runs(template.name, jobs) if j.is_terminal and j.finished_at]
        newest = max(ended, key=lambda j: j.finished_at or now, default=None)
        if newest is None or newest.id in self.chained:
            return
        if now - (newest.finished_at or now) < timedelta(minutes=10):
            self._chain(template, newest)
        self.chained.add(newest.id)

    def _tell(self, name: str, text: str) -> None:
        """Log a template's problem once, until it changes or the template is served again."""
        if self.told.get(name) != text:
            self.told[name] = text
            self.log(text)

    def _serve(
        self, template: Template, jobs: dict[str, Job | Invalid], now: datetime
    ) -> tuple[datetime | None, bool]:
        tz = zone(template.timezone)
        offset = template.offset  # jitter: each slot fires this long after its time
        with self.store.lock(f"state.{template.name}"):
            state = read_state(self.store, template.name)
            before = dict(state)
            told = budget_step(template, lambda: self.runs(template.name, jobs), state, now)
            if told:
                self.log(told)
            paused = not template.enabled or budget_paused(state, now)
            now = now - offset  # from here on, the schedule's own clock
            last = _time(state.get("last_slot"))
            fired = False
            if last is None:  # a new template first fires at its first slot after it was seen
                state["first_seen"] = state["last_slot"] = now
            elif paused:  # its slots pass unfired and are not caught up
                state["last_slot"] = max(last, now)
            else:
                last = self._unless_future(template.name, state, last, now)
                fired = self._fire_due(template, jobs, state, last, now)
            nxt = None if paused else next_fires(template.cron, tz, now, 1)[0] + offset
            state["next_fire"] = nxt
            if state != before:  # an unchanged state is not rewritten: each write is an event
                write_state(self.store, template.name, state)
        return nxt, fired

    def _unless_future(
        self, name: str, state: dict[str, Any], last: datetime, now: datetime
    ) -> datetime:
        """The newest slot handled; one in the future (the clock was once ahead) becomes now,
        or the template would fire nothing until that date."""
        if last > now + timedelta(seconds=1):
            self.log(
                f"template {name}: its last slot {format_time(last)} lies in the future "
                "(the clock was ahead); counting its slots from now"
            )
            state["last_slot"] = last = now
        return last

    def _fire_due(
        self,
        template: Template,
        jobs: dict[str, Job | Invalid],
        state: dict[str, Any],
        last: datetime,
        now: datetime,
    ) -> bool:
        tz = zone(template.timezone)
        slots, cut = slots_between(template.cron, tz, last, now, SLOT_SCAN_LIMIT)
        state["last_slot"] = slots[-1] if slots else last
        if cut:
            _skip(
                state,
                last,
                f"more than {SLOT_SCAN_LIMIT} slots missed before {format_time(slots[0])}",
                now,
            )
        deadline = (
            parse_duration(template.starting_deadline)
            if template.starting_deadline is not None
            else None
        )
        plan = plan_catchup(slots, now, template.catchup, deadline, CATCHUP_CAP)
        for slot, reason in plan.skip:
            _skip(state, slot, reason, now)
            self.log(f"skipped {run_id_for(template.name, slot)}: {reason}")
        fired = False
        for slot in plan.fire:
            outcome = self._fire(template, slot, jobs, state, now)
            if outcome is None:  # its run_if still runs: this slot, and those after, wait
                state["last_slot"] = slot - timedelta(seconds=1)
                break
            fired = outcome or fired
        return fired

    def _fire(
        self,
        template: Template,
        slot: datetime,
        jobs: dict[str, Job | Invalid],
        state: dict[str, Any],
        now: datetime,
    ) -> bool | None:
        """Fire one slot: whether a run was made, None while its run_if has not answered."""
        run_id = run_id_for(template.name, slot)
        if run_id in jobs or self.store.job_file(run_id).exists():
            return False  # fired already, by this runner before a crash or by another runner
        active = [
            j for j in self.runs(template.name, jobs) if j.state in (State.QUEUED, State.RUNNING)
        ]
        if active and template.overlap == "skip":
            reason = f"previous run {active[-1].id} is still {active[-1].state} (overlap: skip)"
            _skip(state, slot, reason, now)
            self.log(f"skipped {run_id}: {reason}")
            return False
        if active and template.overlap == "replace":
            for job in active:
                self._cancel(job.id, f"replaced by {run_id} (overlap: replace)")
        run = new_run(template, slot, f"fired for slot {format_time(slot)}")
        if run.run_if:
            met = self._precondition_met(run, slot, state, now)
            if not met:
                return met  # None: not answered yet; False: the slot is skipped
        if not self.store.try_create(run):
            return False
        jobs[run.id] = run  # a later slot of this step sees it as the active run
        state["last_fire"] = slot
        state["last_run"] = run_id
        self.log(f"fired {run_id}")
        self.prune(template, jobs)
        return True

    def _precondition_met(
        self, run: Job, slot: datetime, state: dict[str, Any], now: datetime
    ) -> bool | None:
        """A run's `run_if`, checked at its fire, off the loop: None while it runs; not met
        skips the slot (no run, no spend); one that cannot answer makes the run a failed one."""
        if self.precondition is None:
            return True
        last = state.get("last_success")
        since = format_time(last) if isinstance(last, datetime) else None
        verdict = self.precondition.ask(("slot", run.id), run, since)
        if verdict is None:
            return None
        if verdict.met:
            return True
        if verdict.met is False:
            _skip(state, slot, verdict.reason, now)
            self.log(f"skipped {run.id}: {verdict.reason}")
            return False
        run.state, run.error, run.finished_at = State.FAILED, verdict.reason, now
        run.notes.append(Note(now, f"not started: {verdict.reason}", State.FAILED))
        self.log(f"failed {run.id}: {verdict.reason}")
        return True

    def _cancel(self, job_id: str, reason: str) -> None:
        def change(job: Job) -> bool:
            if job.is_terminal:
                return False
            enter_state(job, State.CANCELED, reason, clock.now())
            job.error = reason
            return True

        try:
            self.store.transition(job_id, change)
        except TransitionRefused:
            pass

    def _with(self, run: Job) -> list[Job]:
        """A template's runs of the last step, with this one as it is now (its spend counts)."""
        assert run.template is not None
        return [j for j in self.runs(run.template, self.jobs) if j.id != run.id] + [run]

    def session_usage(self, run: Job) -> dict[str, Any] | None:
        """What the other runs of a template that share this run's session recorded, added up
        (a CLI that reports a resumed session's running total counts them too)."""
        if not run.template or not run.session_id:
            return None
        total = None
        for other in self.runs(run.template, self.jobs):
            if other.id != run.id and other.session_id == run.session_id:
                total = add_usage(total, other.usage)
        return total

    @staticmethod
    def runs(name: str, jobs: dict[str, Job | Invalid]) -> list[Job]:
        """A template's runs, oldest slot first."""
        mine = [j for j in jobs.values() if isinstance(j, Job) and j.template == name]
        return sorted(
            mine, key=lambda j: (format_time(j.scheduled_for) if j.scheduled_for else "", j.id)
        )

    def prune(self, template: Template, jobs: dict[str, Job | Invalid]) -> None:
        """Remove the oldest finished runs while there are more than keep_runs, with their files."""
        mine = self.runs(template.name, jobs)
        finished = [j for j in mine if j.state in TERMINAL]
        for job in finished[: max(0, len(mine) - template.keep_runs)]:
            self.store.remove_job_files(job.id)
            jobs.pop(job.id, None)
            self.log(f"removed {job.id} (keep_runs {template.keep_runs})")

    # --- continuity -------------------------------------------------------------------------

    def resume_for(
        self, job: Job, has_resume_form: bool, agent: bool
    ) -> tuple[str | None, str | None]:
        """The session a run resumes, and a note when it has to start fresh instead."""
        if job.continuity != "resume":
            return None, None
        if not job.template:
            return job.session_id, None
        state = read_state(self.store, job.template)
        session = state.get("session_id")
        if not agent:
            return (str(session) if session else None), None
        if not has_resume_form:
            return None, f"backend {job.backend} has no resume form; starting fresh"
        if not session:
            why = state.get("session_cleared") or "no session id captured yet"
            return None, f"{why}; starting fresh"
        return str(session), f"resuming session {session}"

    def run_finished(self, job: Job) -> None:
        """Keep what the next fire needs: the last run, and the session id it captured."""
        if not job.template or job.state == State.QUEUED:
            return
        try:
            template = read_template(self.store, job.template)
        except RepowireError:
            return  # the template is gone or broken; its state is of no use
        with self.store.lock(f"state.{job.template}"):
            state = read_state(self.store, job.template)
            state["last_run"] = job.id
            state["last_state"] = job.state.value
            if job.state == State.SUCCEEDED:
                state["last_success"] = job.finished_at or clock.now()
            if job.state == State.SUCCEEDED and job.session_id:
                state["session_id"] = job.session_id
                state.pop("session_cleared", None)
            elif job.session_id and job.session_id == state.get("session_id"):
                state.pop("session_id", None)
                state["session_cleared"] = f"resuming session {job.session_id} failed in {job.id}"
            told = budget_step(template, partial(self._with, job), state, clock.now())
            write_state(self.store, job.template, state)
        if told:
            self.log(told)
        self._chain(template, job)


def _skip(state: dict[str, Any], slot: datetime, reason: str, now: datetime) -> None:
    """Record a skipped slot; a run of skips for the same reason becomes one entry with a count."""
    skipped: list[dict[str, Any]] = list(state.get("skipped") or [])
    state["skipped_total"] = int(state.get("skipped_total") or 0) + 1
    last = skipped[-1] if skipped else None
    if last is not None and _same_kind(last.get("reason"), reason):
        last["until"] = slot
        last["count"] = int(last.get("count") or 1) + 1
        last["reason"] = reason
    else:
        skipped.append({"slot": slot, "reason": reason, "at": now})
    state["skipped"] = skipped[-SKIPPED_KEPT:]


def _same_kind(old: Any, new: str) -> bool:
    """Skips merge when their reasons differ only in the slot or run they name."""
    import re

    def shape(text: str) -> str:
        return re.sub(r"\S*\d{4}\S*", "#", text)

    return isinstance(old, str) and shape(old) == shape(new)
