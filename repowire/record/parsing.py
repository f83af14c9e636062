"""Parsing and validation of job files and templates: every key's check, written once. Pure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from repowire.errors import Problems, ValidationError, shown
from repowire.ids import validate_id, validate_template_name
from repowire.record import fields as c
from repowire.record.fields import slurm_options
from repowire.record.job import SHELL, Job, split_executor
from repowire.record.template import Template
from repowire.times import parse_time

__all__ = [
    "DEFINITION_KEYS",
    "TEMPLATE_KEYS",
    "parse_job",
    "parse_template",
    "slurm_options",
]


DEFINITION_KEYS: dict[str, Callable[[Any], Any]] = {
    "name": c.nonempty_text,
    "backend": c.backend,
    "command": c.command,
    "prompt": c.nonempty_text,
    "prompt_file": c.nonempty_text,
    "path": c.nonempty_text,
    "env": c.env,
    "timeout": c.duration,
    "retries": c.count,
    "retry_delay": c.duration,
    "due_at": parse_time,
    "continuity": c.choice("fresh", "resume"),
    "executor": c.where,
    "slurm": slurm_options,
    "after": c.ids,
    "on_dependency_failure": c.choice("cancel", "run"),
    "priority": c.count,
    "labels": c.labels,
    "run_if": c.nonempty_text,
    "run_if_timeout": c.run_if_timeout,
    "stall_timeout": c.duration,
    "workspace": c.choice("inplace", "worktree"),
    "base": c.nonempty_text,
    "keep_worktree": c.boolean,
    "notify": c.notify_targets,
}
_RUN_KEYS: dict[str, Callable[[Any], Any]] = {
    "template": validate_id,
    "scheduled_for": parse_time,
    "triggered_by": validate_id,
}
_STATE_KEYS: dict[str, Callable[[Any], Any]] = {
    "state": c.state_value,
    "attempt": c.count,
    "created_at": parse_time,
    "updated_at": parse_time,
    "started_at": parse_time,
    "finished_at": parse_time,
    "retry_at": parse_time,
    "notes": c.notes,
    "result_summary": c.text_value,
    "error": c.text_value,
    "exit_code": c.optional_int,
    "session_id": c.nonempty_text,
    "executor": c.executor,
    "worktree": c.worktree,
    "usage": c.usage,
    "notified": c.notified,
    "quiet": c.boolean,
}
TEMPLATE_KEYS: dict[str, Callable[[Any], Any]] = {  # the names of model.TEMPLATE_FIELDS
    "cron": c.nonempty_text,
    "timezone": c.nonempty_text,
    "enabled": c.boolean,
    "overlap": c.choice("skip", "queue", "allow", "replace"),
    "catchup": c.choice("latest", "none", "all"),
    "starting_deadline": c.duration,
    "keep_runs": c.positive,
    "jitter": c.duration,
    "then": c.template_names,
    "then_on_failure": c.template_names,
    "budget": c.budget,
}
_JOB_KEYS = {**DEFINITION_KEYS, **_RUN_KEYS, **_STATE_KEYS}


def _validated(
    data: Any, keys: dict[str, Callable[[Any], Any]], problems: list[str]
) -> dict[str, Any]:
    """The values of the keys that are valid; a sentence in `problems` for each that is not."""
    if not isinstance(data, dict):
        problems.append(f"expected a mapping of keys to values, got {c.kind(data)}")
        return {}
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in keys:
            problems.append(f"unknown key {shown(key)}")
        elif value is not None:  # an empty key is the same as an absent one
            try:
                out[key] = keys[key](value)
            except ValidationError as exc:
                problems.append(f"{key}: {exc}")
    return out


def _definition_problems(values: dict[str, Any], keys_seen: set[str]) -> list[str]:
    problems = []
    if "prompt" in values and "prompt_file" in values:
        problems.append("set prompt or prompt_file, not both")
    if values.get("backend") == SHELL and "command" not in keys_seen:
        problems.append("the shell backend needs a command")
    if not keys_seen & {"command", "prompt", "prompt_file"}:
        problems.append("a job needs a command or a prompt")
    if keys_seen & {"base", "keep_worktree"} and values.get("workspace") != "worktree":
        problems.append("base and keep_worktree apply only with workspace: worktree")
    prompt_file = values.get("prompt_file")
    if prompt_file is not None and _escapes(prompt_file):
        problems.append(f"prompt_file {shown(prompt_file)} must stay inside the worker folder")
    return problems


def _escapes(relative: str) -> bool:
    """Whether a path relative to a folder leaves it (absolute, or up through '..')."""
    parts = PurePosixPath(relative).parts
    depth = 0
    for part in parts:
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            return True
    return relative.startswith("/")


def _checked(
    data: Any, keys: dict[str, Callable[[Any], Any]], where: str, before: list[str]
) -> dict[str, Any]:
    """Validated values, or Problems naming everything wrong with the file."""
    problems = list(before)
    values = _validated(data, keys, problems)
    seen = {k for k, v in data.items() if v is not None} if isinstance(data, dict) else set()
    if isinstance(data, dict):
        problems += _definition_problems(values, seen)
    if problems:
        raise Problems(where, problems)
    return values


def parse_job(job_id: str, data: Any, where: str | None = None) -> Job:
    """A Job from the mapping read out of jobs/<job_id>.yaml, or Problems saying what is wrong."""
    where = where or f"{job_id}.yaml"
    validate_id(job_id)
    before = []
    if isinstance(data, dict) and "id" in data:
        if data["id"] != job_id:
            before.append(f"id {shown(data['id'])} does not match the file name")
        data = {k: v for k, v in data.items() if k != "id"}
    values = _checked(data, _JOB_KEYS, where, before)
    values.update(split_executor(values.pop("executor", None)))
    return Job(id=job_id, **values)


def parse_template(name: str, data: Any, where: str | None = None) -> Template:
    """A Template from the mapping read out of agents/<name>/job.yaml, or Problems."""
    where = where or f"agents/{name}/job.yaml"
    validate_template_name(name)
    before = (
        []
        if not isinstance(data, dict) or data.get("cron")
        else ["a template needs a cron expression"]
    )
    values = _checked(data, {**DEFINITION_KEYS, **TEMPLATE_KEYS}, where, before)
    template_values = {k: values.pop(k) for k in list(values) if k in TEMPLATE_KEYS}
    if "continuity" in values:
        template_values["continuity"] = values.pop("continuity")
    return Template(name=name, definition=values, **template_values)
