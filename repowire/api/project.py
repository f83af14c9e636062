"""The library API, the one door of every face (CLI, MCP server, dashboard, scripts).

`Project(root)` holds one root's store and config; its methods are what the faces do. The rules
that used to be written once per face (a time zone goes with a cron expression, at least one
change per update, what "status" means for a template) live here, once."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repowire import clock
from repowire.errors import JobNotFound, TransitionRefused, UsageProblem, ValidationError, shown
from repowire.ids import new_job_id, validate_id
from repowire.record.job import AGENT_PRESETS, SHELL, Job, enter_state
from repowire.record.parsing import parse_job, parse_template
from repowire.record.states import State
from repowire.record.template import Template
from repowire.store.records import PEOPLE_LIMIT, Store
from repowire.store.roots import require_repowire
from repowire.times import format_time, parse_due

if TYPE_CHECKING:  # imported where used: `jobs status` needs neither config nor listing
    from repowire.api.views import Listing
    from repowire.store.config import Config

__all__ = ["Project", "name_of", "LOG_CHUNK"]

LOG_CHUNK = 64 * 1024


def _definition(**options: Any) -> dict[str, Any]:
    """The definition keys that were given, with --due-at's relative forms resolved."""
    values = {k: v for k, v in options.items() if v is not None and v != {} and v != ()}
    if values.get("prompt") is not None and values.get("prompt_file") is not None:
        raise UsageProblem("use a prompt or a prompt file, not both")
    if isinstance(values.get("due_at"), str):
        values["due_at"] = parse_due(values["due_at"])
    if isinstance(values.get("command"), tuple):
        values["command"] = list(values["command"])
    return values


def name_of(item: Job | Template) -> str:
    """What names a job (its id) or a template (its folder name) on the command line."""
    return item.id if isinstance(item, Job) else item.name


class Project:
    """One root: its store, its config, and everything the faces read and change there."""

    def __init__(self, root: Path) -> None:
        require_repowire(root)
        self.root = root
        self.store = Store(root)

    @functools.cached_property
    def config(self) -> Config:
        from repowire.store.config import load_config

        return load_config(self.root)

    # --- reading ----------------------------------------------------------------------------

    def job(self, job_id: str) -> Job:
        """One job record; JobNotFound, saying what the name is, when there is none."""
        try:
            return self.store.read_job(job_id)
        except JobNotFound:
            if (self.store.agents_dir / job_id / "job.yaml").exists():
                raise JobNotFound(
                    f"{job_id} is a template, not a job; its runs are jobs named "
                    f"{job_id}-<time> (see 'repowire jobs list --template {job_id}')"
                ) from None
            raise

    def template(self, name: str, verb: str) -> Template:
        """A template, or JobNotFound that says when the name is a job's instead."""
        from repowire.templates.storage import read_template

        if self.store.job_file(validate_id(name)).exists():
            raise JobNotFound(
                f"{name} is a job, not a template; 'jobs {verb}' works on templates "
                f"(to run a finished job again: 'repowire jobs rerun {name}')"
            )
        return read_template(self.store, name)

    def find(self, name: str) -> Job | Template:
        """A job by id, else a template by name."""
        if self.store.job_file(validate_id(name)).exists():
            return self.store.read_job(name)
        from repowire.templates.storage import (
            read_template,  # here: reading a job needs no cron parser
        )

        return read_template(self.store, name)

    def status(self, name: str) -> str:
        """A job's state, or a template's: enabled or paused."""
        item = self.find(name)
        if isinstance(item, Job):
            return item.state.value
        from repowire.templates.budgets import template_state
        from repowire.templates.storage import read_state

        return template_state(item, read_state(self.store, item.name), clock.now())

    def show(self, name: str) -> dict[str, Any]:
        """The JSON form of a job record (a queued one with `after` also says what it waits
        for), or of a template with its fires, runs and skips."""
        from repowire.api.views import as_dict, dependency_states, with_waits

        item = self.find(name)
        data = as_dict(self.store, item)
        if isinstance(item, Job) and (item.after or item.run_if):
            data = with_waits(data, dependency_states(self.store, item.after))
        return data

    def listing(self, *args: Any, **filters: Any) -> dict[str, Any]:
        """`jobs list --json`: {"templates": [...], "jobs": [...]}; filters: views.filtered's."""
        return self._filtered(*args, **filters).as_json(self.store)

    def listing_text(self, *args: Any, **filters: Any) -> str:
        """listing() as JSON text, one job a line (records are not decoded to be printed)."""
        from repowire.api import views

        return views.listing_text(self.store, *args, **filters)

    def listed_ids(self, *args: Any, **filters: Any) -> list[str]:
        """The ids listing() lists, in its order."""
        return [row.id for row in self._filtered(*args, **filters).rows]

    def _filtered(self, *args: Any, **filters: Any) -> Listing:
        from repowire.api import views

        return views.filtered(self.store, *args, **filters)

    def changes(self, every: float = 2.0) -> Iterator[str]:
        """The records' fingerprint now, then each time it changes (woken by file events)."""
        from repowire.watch.fingerprint import changes

        return changes(self.store, every)

    def usage(self, since: float | None = None, by: str = "template") -> dict[str, Any]:
        """`repowire usage`: tokens and cost of the runs that ended in the last `since`
        seconds (all when None), grouped by template, backend or local day."""
        from repowire.backends.usage import report
        from repowire.templates.cron import zone

        start = clock.now() - timedelta(seconds=since) if since is not None else None
        found = self.store.spend(format_time(start) if start else "", by)
        if found is None:  # no index: every record read
            return report((r.brief for r in self.store.list_rows(True)), start, by, zone(None))
        return report((r.brief for r in found[1]), start, by, zone(None), found[0])

    def result(self, job_id: str) -> dict[str, Any]:
        """The result summary and the result file's text, with the state they belong to."""
        from repowire.api.views import result_of

        return result_of(self.store, self.job(job_id))

    def log(self, job_id: str, offset: int = 0, limit: int = LOG_CHUNK) -> tuple[bytes, int]:
        """The job's log from offset (negative: from the end), and the offset it ends at."""
        from repowire.api.views import log_chunk

        return log_chunk(self.store, self.job(job_id).id, offset, limit)

    def dependents(self, job_ids: list[str]) -> list[str]:
        """The queued jobs that wait for any of these (their `after` names one)."""
        named = set(job_ids)
        rows = self.store.list_rows()
        return [
            row.id
            for row in rows
            if row.state == "queued" and named & set(row.record.get("after") or ())
        ]

    def has_log(self, job_id: str) -> bool:
        """Whether the job has a log yet (an attempt has started, or a hook has written)."""
        return self.store.sibling(self.job(job_id).id, ".log").exists()

    def runners(self) -> list[dict[str, Any]]:
        """The runners serving this root now (pid, host, since, heartbeat, version)."""
        from repowire.executors.contract import HOST
        from repowire.runner.presence import serving

        return [r.to_dict() for r in serving(self.root, HOST) if r.alive]

    def overview(self) -> dict[str, Any]:
        """`repowire status`: runners, trust, counts by state, what runs, what fires next."""
        from repowire.api.views import overview
        from repowire.store.config import is_trusted

        return overview(self.store, is_trusted(self.root), self.runners())

    def version(self) -> str:
        """A cheap fingerprint of every record and template, which changes when they do."""
        from repowire.watch.fingerprint import version_of

        return version_of(self.store)

    def backend_warning(self, backend: str | None) -> str | None:
        """A warning when a job's backend names a program this machine's PATH lacks (the
        runner would fail the job when it starts it)."""
        row = next((r for r in self.backends() if r["name"] == backend), None)
        if row is None or row["installed"]:
            return None
        return (
            f"{row['program']} (backend {backend}) is not on PATH here; the runner fails the "
            "job at its start until it is installed (see 'repowire backends')"
        )

    def backends(self) -> list[dict[str, Any]]:
        """Every backend: its argv, resume form, capture rules, and whether it is on PATH."""
        from repowire.backends.presets import describe_backends

        return describe_backends(self.config)

    def known_backends(self) -> list[str]:
        """shell, the agent presets, and the backends config.yaml declares."""
        names = [SHELL, *AGENT_PRESETS]
        return names + sorted(set(self.config.backends) - set(names))

    # --- creating ---------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        cron: str | None = None,
        timezone: str | None = None,
        job_id: str | None = None,
        **options: Any,
    ) -> Job | Template:
        """A queued job, or with cron a recurring template; options are the definition keys."""
        if timezone and not cron:
            raise UsageProblem("a time zone goes with a cron expression")
        if cron and (options.get("due_at") or job_id):
            raise UsageProblem("a cron expression cannot be combined with a due time or an id")
        if cron:
            return self.create_template(name, cron, timezone=timezone, **options)
        return self.create_job(name, job_id=job_id, **options)

    def create_job(
        self, name: str | None = None, *, job_id: str | None = None, **options: Any
    ) -> Job:
        """Write a new queued job."""
        definition = _definition(name=name, **options)
        if definition.get("path"):
            self._check_folder(definition["path"])
        self._check_backend(definition.get("backend"))
        chosen = validate_id(job_id) if job_id else new_job_id()
        job = parse_job(chosen, {**definition, "state": "queued"}, where="the new job")
        self._check_start(job)
        from repowire.api.validate import check_after

        check_after(self.store, job.after, chosen)
        return self.store.create_job(job, generated_id=job_id is None)

    def create_template(
        self, name: str, cron: str, *, timezone: str | None = None, **options: Any
    ) -> Template:
        """Write .repowire/agents/<folder>/job.yaml for a recurring worker."""
        from repowire.templates.cron import check_schedule
        from repowire.templates.storage import create_template

        check_schedule(cron, timezone, clock.now())
        definition = _definition(name=name, **options)
        from repowire.templates.scaffold import template_folder

        folder = template_folder(self.store, name, definition.get("path"))
        if definition.get("path") == str(Path(".repowire", "agents", folder)):
            del definition["path"]  # the worker folder is the default
        elif definition.get("path"):
            self._check_folder(definition["path"])
        if definition.get("name") == folder:
            del definition["name"]
        self._check_backend(definition.get("backend"))
        data = {**definition, "cron": cron, **({"timezone": timezone} if timezone else {})}
        template = parse_template(folder, data, where="the new template")
        create_template(self.store, template)
        return template

    def create_worker(self, name: str, cron: str | None = None, **options: Any) -> Path:
        """Scaffold .repowire/agents/<name>/: AGENTS.md, and a job.yaml when cron is given."""
        from repowire.templates.scaffold import create_worker

        return create_worker(self.store, name, cron, self.create_template, **options)

    def _check_folder(self, path: str) -> None:
        if not (self.root / path).is_dir():
            raise ValidationError(f"path {path} is not a folder under {self.root}")

    def _check_start(self, job: Job) -> None:
        """Refuse what the runner would refuse at its start, in its words: a path outside the
        allowed paths, a worktree run's base that is no commit."""
        from repowire.executors.preparation import worker_folder

        if job.path:
            worker_folder(self.store, self.config, job)
        if job.workspace == "worktree":
            from repowire.worktrees.worktree import check_start

            check_start(self.store, job)

    def _check_backend(self, backend: str | None) -> None:
        known = self.known_backends()
        if backend is not None and backend not in known:
            raise ValidationError(
                f"unknown backend {shown(backend)}; known backends: {', '.join(known)}"
            )

    # --- changing ---------------------------------------------------------------------------

    def update(self, job_id: str, **changes: Any) -> Job:
        """A locked transition and/or note, result summary, session id or quiet mark."""
        from repowire.record.job_update import JobUpdate

        wanted = JobUpdate(**changes)
        return self._transition(job_id, lambda job: wanted.apply(job, clock.now()))

    def inbox(self) -> list[dict[str, Any]]:
        """Finished runs not seen yet, newest first."""
        from repowire.notify.inbox import unread_records

        return unread_records(self.store)

    def mark_read(self, job_ids: list[str] | None = None) -> list[str]:
        """Mark runs seen (every finished run when job_ids is None); the ids marked."""
        from repowire.notify.inbox import mark_all_seen, mark_seen

        if job_ids is None:
            mark_all_seen(self.store, clock.now())
            return []
        jobs = [self.job(job_id) for job_id in job_ids]  # every id checked first
        mark_seen(self.store, [(job.id, job.attempt) for job in jobs])
        return [job.id for job in jobs]

    def _transition(self, job_id: str, change: Callable[[Job], bool | None]) -> Job:
        """A person's locked change of a record (capped in size); a template's name says so."""
        try:
            return self.store.transition(job_id, change, PEOPLE_LIMIT)
        except JobNotFound:
            self.job(job_id)  # raises JobNotFound in words that say what the name is
            raise

    def cancel(self, name: str, reason: str | None = None) -> Job | Template:
        """Cancel a queued or running job; for a template name, pause the template."""
        if not self.store.job_file(validate_id(name)).exists():
            return self.pause(name, reason)

        def change(job: Job) -> bool:
            if job.state == State.CANCELED:
                return False  # cancelling twice is not an error, and changes nothing
            if job.is_terminal:
                raise TransitionRefused(f"job {job.id} already {job.state}; nothing to cancel")
            note = f"canceled: {reason}" if reason else "canceled"
            enter_state(job, State.CANCELED, note, clock.now())
            job.error = reason or "canceled by request"
            return True

        return self.store.transition(name, change, PEOPLE_LIMIT)

    def retry(self, job_id: str) -> Job:
        """Put a failed or canceled job back in the queue."""

        def change(job: Job) -> None:
            if job.state not in (State.FAILED, State.CANCELED):
                raise TransitionRefused(
                    f"job {job.id} is {job.state}; only failed or canceled jobs can be retried"
                )
            was = f"{job.state}: {job.error}" if job.error else str(job.state)
            enter_state(job, State.QUEUED, f"retried by request (was {was})", clock.now(), "retry")
            job.where = "slurm" if job.runs_on == "slurm" else job.where  # keeps where it runs
            job.handle = None
            job.error = job.exit_code = job.finished_at = job.result_summary = None
            job.retry_at = None  # the runner's backoff goes; the job's own due_at stays

        return self._transition(job_id, change)

    def remove(
        self, job_ids: list[str], force: bool = False, dry_run: bool = False, branches: bool = False
    ) -> tuple[list[str], list[str]]:
        """Remove finished jobs and their files (force cancels unfinished ones first); with
        branches, their worktree runs' branches too. The ids, and the branches deleted."""
        from repowire.api.housekeeping import branches_of, remove_jobs

        for job_id in job_ids:
            self.job(job_id)  # every id is checked before anything is removed
        removed = remove_jobs(self.store, job_ids, force, dry_run, self.cancel)
        deleted = branches_of(self.store, removed, dry_run) if branches else []
        return [job.id for job in removed], deleted

    def prune(
        self,
        older_than: float = 0,
        state: str | None = None,
        dry: bool = False,
        branches: bool = False,
    ) -> tuple[list[str], list[str]]:
        """Remove finished jobs older than `older_than` seconds (with branches, their branches)."""
        from repowire.api.housekeeping import branches_of, prune

        removed = prune(self.store, older_than, state, dry, clock.now())
        deleted = branches_of(self.store, removed, dry) if branches else []
        return [job.id for job in removed], deleted

    def diff(self, job_id: str, stat: bool = False) -> str:
        """A worktree run's changes against its base, as `git diff` prints them."""
        from repowire.worktrees.worktree import diff

        return diff(self.store, self.job(job_id), stat)

    def rerun(self, job_id: str) -> Job:
        """A new queued job with the definition of a finished one."""
        from repowire.api.housekeeping import rerun_of

        return rerun_of(self.store, self.job(job_id), clock.now())

    def run_template(self, name: str) -> Job:
        """Fire a template now, paused or not: a queued run named for the current second."""
        from repowire.templates.runs import fire_now

        return fire_now(self.store, self.template(name, "run"), clock.now())

    def pause(self, name: str, reason: str | None = None) -> Template:
        """Pause a template (enabled: false in its job.yaml), saying why."""
        from repowire.templates.storage import set_paused

        return set_paused(self.store, name, True, reason)

    def resume(self, name: str) -> Template:
        """Un-pause a template (enabled: true in its job.yaml)."""
        from repowire.templates.storage import set_paused

        self.template(name, "resume")
        return set_paused(self.store, name, False)

    def serve(self, max_concurrency: int | None = None, once: bool = False) -> list[str]:
        """Run the runner for this root in the foreground; the jobs it could not serve."""
        from repowire.runner.loop import Runner

        return Runner(self.root, max_concurrency).run(once=once)
