"""The Python API: every face (CLI, MCP, dashboard, scripts) calls these functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from . import clock
from .config import load_config, require_repowire
from .errors import TransitionRefused, ValidationError
from .files import MAX_FILE_BYTES, read_tail
from .model import (
    AGENT_PRESETS,
    SHELL,
    Invalid,
    Job,
    Note,
    State,
    Template,
    enter_state,
    job_from_record,
    job_to_dict,
    template_to_dict,
)
from .schema import parse_job, parse_template
from .store import Store
from .values import format_time, new_job_id, parse_due, slugify, validate_id

__all__ = [
    "Listing",
    "known_backends",
    "create_job",
    "create_template",
    "get_job",
    "find",
    "list_all",
    "update_job",
    "add_note",
    "cancel",
    "retry",
    "get_result",
    "template_view",
    "run_template",
    "resume_template",
    "as_dict",
    "listing_dict",
]


@dataclass
class Listing:
    """What `jobs list` shows: templates and jobs, broken files among them as Invalid."""

    templates: list[Template | Invalid]
    jobs: list[Job | Invalid]
    runs: dict[str, list[dict[str, Any]]]  # each template's runs as records, whatever the filters


def known_backends(root: Path) -> list[str]:
    """shell, the agent presets, and the backends config.yaml declares."""
    names = [SHELL, *AGENT_PRESETS]
    return names + sorted(set(load_config(root).backends) - set(names))


def _check_backend(root: Path, backend: str | None) -> None:
    if backend is not None and backend not in known_backends(root):
        raise ValidationError(
            f"unknown backend {backend!r}; known backends: {', '.join(known_backends(root))}"
        )


def _definition(**options: Any) -> dict[str, Any]:
    """The definition keys that were given, with --due-at's relative forms resolved."""
    values = {k: v for k, v in options.items() if v is not None and v != {} and v != ()}
    if isinstance(values.get("due_at"), str):
        values["due_at"] = parse_due(values["due_at"])
    if isinstance(values.get("command"), tuple):
        values["command"] = list(values["command"])
    return values


def create_job(
    root: Path, name: str | None = None, *, job_id: str | None = None, **options: Any
) -> Job:
    """Write a new queued job; options are the definition keys of SPEC section 3."""
    definition = _definition(name=name, **options)
    if definition.get("path"):
        _check_path_exists(root, definition["path"])
    _check_backend(root, definition.get("backend"))
    chosen = validate_id(job_id) if job_id else new_job_id()
    job = parse_job(chosen, {**definition, "state": "queued"}, where="the new job")
    return Store(root).create_job(job, generated_id=job_id is None)


def _check_path_exists(root: Path, path: str) -> None:
    if not (root / path).is_dir():
        raise ValidationError(f"path {path} is not a folder under {root}")


def create_template(
    root: Path, name: str, cron: str, *, timezone: str | None = None, **options: Any
) -> Template:
    """Write .repowire/agents/<folder>/job.yaml for a recurring worker."""
    from .schedule import validate_cron, zone
    from .templates import create_template as write_template

    validate_cron(cron)
    if timezone:
        zone(timezone)
    store = Store(root)
    definition = _definition(name=name, **options)
    folder = _template_folder(store, name, definition.get("path"))
    if definition.get("path") == str(Path(".repowire", "agents", folder)):
        del definition["path"]  # the worker folder is the default
    elif definition.get("path"):
        _check_path_exists(root, definition["path"])
    if definition.get("name") == folder:
        del definition["name"]
    _check_backend(root, definition.get("backend"))
    data = {**definition, "cron": cron, **({"timezone": timezone} if timezone else {})}
    template = parse_template(folder, data, where="the new template")
    write_template(store, template)
    return template


def _template_folder(store: Store, name: str, path: str | None) -> str:
    if path:
        resolved = (store.root / path).resolve()
        if resolved.parent == store.agents_dir.resolve():
            return validate_id(resolved.name, "template name")
    return slugify(name)


def get_job(root: Path, job_id: str) -> Job:
    """One job record; JobNotFound when there is none."""
    require_repowire(root)
    return Store(root).read_job(job_id)


def find(root: Path, name: str) -> Job | Template:
    """A job by id, else a template by name."""
    require_repowire(root)
    store = Store(root)
    validate_id(name)
    if store.job_file(name).exists():
        return store.read_job(name)
    from .templates import read_template

    return read_template(store, name)


def _select(
    root: Path, state: str | None, template: str | None
) -> tuple[list[Template | Invalid], list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Templates, job records (filtered, oldest first) and each template's runs."""
    from .templates import list_templates

    require_repowire(root)
    if state is not None and state != "invalid":
        State(state)  # the CLI checks choices; scripts get a ValueError
    store = Store(root)
    jobs = store.list_records()
    runs: dict[str, list[dict[str, Any]]] = {}
    for job in jobs:
        if job.get("template"):
            runs.setdefault(job["template"], []).append(job)
    if state is not None:
        jobs = [j for j in jobs if j["state"] == state]
    templates: list[Template | Invalid] = list_templates(store)
    if template is not None:
        jobs = [j for j in jobs if j.get("template") == template]
        templates = [
            t for t in templates if (t.name if isinstance(t, Template) else t.id) == template
        ]
    jobs.sort(key=_created_key)
    return templates, jobs, runs


def list_all(root: Path, state: str | None = None, template: str | None = None) -> Listing:
    """Templates and jobs, optionally only jobs in one state or of one template."""
    templates, jobs, runs = _select(root, state, template)
    return Listing(templates, [_item(j) for j in jobs], runs)


def _item(record: dict[str, Any]) -> Job | Invalid:
    if record["state"] == "invalid":
        return Invalid(record["id"], record.get("path", ""), record.get("error", ""))
    return job_from_record(record)


def _created_key(record: dict[str, Any]) -> tuple[str, str]:
    return (str(record.get("created_at") or ""), record["id"])


def _set_state(job: Job, new: State, text: str | None, actor: str = "any") -> None:
    enter_state(job, new, text, clock.now(), actor)


def update_job(
    root: Path,
    job_id: str,
    *,
    state: str | State | None = None,
    note: str | None = None,
    result_summary: str | None = None,
    session_id: str | None = None,
) -> Job:
    """A lock-protected transition and/or note, summary or session id."""
    require_repowire(root)
    new = State(state) if state is not None else None
    if session_id is not None:
        validate_id(session_id, "session id")

    def change(job: Job) -> None:
        if new is not None:
            _set_state(job, new, note)
        elif note:
            job.notes.append(Note(clock.now(), note))
        if result_summary is not None:
            job.result_summary = result_summary
        if session_id is not None:
            job.session_id = session_id

    return Store(root).transition(job_id, change)


def add_note(root: Path, job_id: str, text: str) -> Job:
    """Append one note to a job's timeline."""
    return update_job(root, job_id, note=text)


def cancel(root: Path, name: str, reason: str | None = None) -> Job | Template:
    """Cancel a queued or running job; for a template name, pause the template."""
    require_repowire(root)
    store = Store(root)
    validate_id(name)
    if not store.job_file(name).exists():
        from .templates import set_enabled

        return set_enabled(store, name, False)

    def change(job: Job) -> bool:
        if job.state == State.CANCELED:
            return False  # cancelling twice is not an error, and changes nothing
        _set_state(job, State.CANCELED, f"canceled: {reason}" if reason else "canceled")
        job.error = reason or "canceled by request"
        return True

    return store.transition(name, change)


def retry(root: Path, job_id: str) -> Job:
    """Put a failed or canceled job back in the queue."""
    require_repowire(root)

    def change(job: Job) -> None:
        if job.state not in (State.FAILED, State.CANCELED):
            raise TransitionRefused(
                f"job {job.id} is {job.state}; only failed or canceled jobs can be retried"
            )
        why = f"retried by request (was {job.state}" + (f": {job.error})" if job.error else ")")
        _set_state(job, State.QUEUED, why, actor="retry")
        job.where = "slurm" if job.runs_on == "slurm" else job.where  # keeps where it runs
        job.handle = None
        job.error = job.exit_code = job.finished_at = None
        job.result_summary = None
        job.due_at = None

    return Store(root).transition(job_id, change)


def get_result(root: Path, job_id: str) -> dict[str, Any]:
    """The result summary and the result file's text, with the state they belong to."""
    job = get_job(root, job_id)
    path = Store(root).sibling(job_id, ".result.md")
    try:
        text: str | None = read_tail(path, MAX_FILE_BYTES) if path.exists() else None
    except FileNotFoundError:
        text = None
    return {
        "id": job.id,
        "state": job.state.value,
        "result_summary": job.result_summary,
        "result_file": str(path) if text is not None else None,
        "result": text,
        "error": job.error,
        "exit_code": job.exit_code,
    }


def template_view(
    root: Path, template: Template, runs: list[dict[str, Any]] | None = None, limit: int = 10
) -> dict[str, Any]:
    """A template as `jobs show` presents it: definition, next fires, recent runs, skipped slots.

    `runs` are the template's runs when the caller has read them already."""
    from .schedule import describe, next_fires, zone
    from .templates import read_state, template_dir

    store = Store(root)
    tz = zone(template.timezone)
    fires = next_fires(template.cron, tz, clock.now(), 5) if template.enabled else []
    if runs is None:
        runs = [j for j in store.list_records() if j.get("template") == template.name]
    mine = sorted(runs, key=_created_key, reverse=True)
    state = read_state(store, template.name)
    return {
        "id": template.name,
        "kind": "template",
        "path": str(template_dir(store, template.name).relative_to(root)),
        "state": "enabled" if template.enabled else "paused",
        **template_to_dict(template),
        "timezone": template.timezone or str(getattr(tz, "key", None) or tz),
        "schedule": describe(template.cron),
        "next_fires": [
            {"utc": format_time(f), "local": f.astimezone(tz).isoformat()} for f in fires
        ],
        "recent_runs": mine[:limit],
        "last_fire": _text_time(state.get("last_fire")),
        "last_run": state.get("last_run"),
        "session_id": state.get("session_id"),
        "skipped_total": state.get("skipped_total", 0),
        "skipped": [{k: _text_time(v) for k, v in s.items()} for s in state.get("skipped", [])],
    }


def _text_time(value: Any) -> Any:
    return format_time(value) if isinstance(value, datetime) else value


def run_template(root: Path, name: str) -> Job:
    """Fire a template now, paused or not: a queued run named for the current second."""
    from .scheduler import new_run
    from .templates import read_template

    require_repowire(root)
    store = Store(root)
    template = read_template(store, name)
    slot = clock.now().replace(microsecond=0)
    run = new_run(template, slot, "fired by hand (jobs run)")
    if not store.try_create(run):
        raise ValidationError(f"{name} was already fired at {format_time(slot)}; try again")
    return run


def resume_template(root: Path, name: str) -> Template:
    """Un-pause a template (enabled: true in its job.yaml)."""
    from .templates import set_enabled

    require_repowire(root)
    return set_enabled(Store(root), name, True)


def as_dict(
    root: Path, item: Job | Template | Invalid, runs: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The JSON form every face prints: a job record, a template view, or an invalid entry."""
    if isinstance(item, Job):
        return job_to_dict(item, with_id=True)
    if isinstance(item, Template):
        return template_view(root, item, runs)
    return item.to_dict()


def listing_dict(
    root: Path, state: str | None = None, template: str | None = None
) -> dict[str, Any]:
    """`jobs list --json`: {"templates": [...], "jobs": [...]}."""
    templates, jobs, runs = _select(root, state, template)
    return {
        "templates": [as_dict(root, t, runs.get(getattr(t, "name", ""), [])) for t in templates],
        "jobs": jobs,
    }
