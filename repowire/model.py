"""Jobs, templates and states as plain data; parsing, validation and the transition table.

Pure: no I/O. The store reads files and hands their mappings here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from .errors import TransitionRefused, ValidationError
from .values import format_time, parse_duration, parse_time, validate_id

__all__ = [
    "State",
    "TERMINAL",
    "TRANSITIONS",
    "Note",
    "Job",
    "Template",
    "Invalid",
    "check_transition",
    "enter_state",
    "parse_job",
    "parse_template",
    "job_to_dict",
    "job_from_record",
    "template_to_dict",
    "DEFINITION_KEYS",
    "TEMPLATE_KEYS",
    "SHELL",
    "AGENT_PRESETS",
]

SHELL = "shell"
EXECUTORS = ("local", "slurm")
SLURM_OPTIONS = ("partition", "time_limit", "cpus", "memory", "extra_args")
AGENT_PRESETS = ("codex", "claude", "gemini", "opencode")


class State(str, Enum):
    """The five states of a job (SPEC section 4)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    def __str__(self) -> str:
        return self.value


TERMINAL = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELED})

# Who may move a job from one state to another. "any" is every writer (CLI, MCP, dashboard, an
# executor reporting on itself, the runner); "runner" is the runner alone; "retry" is retry alone.
TRANSITIONS: dict[tuple[State, State], str] = {
    (State.QUEUED, State.RUNNING): "any",
    (State.QUEUED, State.CANCELED): "any",
    (State.RUNNING, State.SUCCEEDED): "any",
    (State.RUNNING, State.FAILED): "any",
    (State.RUNNING, State.CANCELED): "any",
    (State.RUNNING, State.QUEUED): "runner",
    (State.FAILED, State.QUEUED): "retry",
    (State.CANCELED, State.QUEUED): "retry",
}


def check_transition(job_id: str, old: State, new: State, actor: str = "any") -> None:
    """Raise TransitionRefused unless `actor` may move job `job_id` from `old` to `new`."""
    if old == new:
        return  # repeating the current state only adds notes or a summary
    allowed = TRANSITIONS.get((old, new))
    if allowed == "any" or allowed == actor:
        return
    if allowed == "retry":
        raise TransitionRefused(
            f"job {job_id} is {old}; use 'repowire jobs retry {job_id}' to queue it again"
        )
    if old in TERMINAL:
        raise TransitionRefused(
            f"job {job_id} is {old}, a terminal state; it cannot become {new} "
            "(only failed or canceled jobs can be retried)"
        )
    raise TransitionRefused(f"job {job_id} cannot go from {old} to {new}")


def enter_state(job: Job, new: State, text: str | None, at: datetime, actor: str = "any") -> None:
    """Apply a checked state change to a record in memory, with its timeline note."""
    old = job.state
    check_transition(job.id, old, new, actor)
    if old != new:
        job.state = new
        if new == State.RUNNING:
            job.attempt += 1
            job.started_at = at
            job.finished_at = None
        elif new in TERMINAL:
            job.finished_at = at
    if text or old != new:
        job.notes.append(Note(at, text or f"{old} -> {new}", new if old != new else None))


@dataclass
class Note:
    """One entry of a job's timeline."""

    at: datetime
    text: str
    state: State | None = None


@dataclass
class Job:
    """One job record: its definition and its state (SPEC section 3)."""

    id: str
    name: str | None = None
    backend: str | None = None
    command: str | list[str] | None = None
    prompt: str | None = None
    prompt_file: str | None = None
    path: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    timeout: str | float | None = None
    retries: int = 0
    retry_delay: str | float | None = None
    due_at: datetime | None = None
    continuity: str | None = None
    template: str | None = None
    scheduled_for: datetime | None = None
    state: State = State.QUEUED
    attempt: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    notes: list[Note] = field(default_factory=list)
    result_summary: str | None = None
    error: str | None = None
    exit_code: int | None = None
    session_id: str | None = None
    executor: dict[str, Any] | str | None = None
    slurm: dict[str, Any] | None = None

    @property
    def where(self) -> str | None:
        """Where it runs, if set: "local" or "slurm" (the definition, or the handle's kind)."""
        if isinstance(self.executor, dict):
            return str(self.executor.get("kind", "local"))
        return self.executor

    @property
    def display_name(self) -> str:
        return self.name or self.id

    @property
    def effective_backend(self) -> str | None:
        """The backend that will run it: the one named, else shell when a command is set."""
        return self.backend or (SHELL if self.command is not None else None)

    @property
    def timeout_seconds(self) -> float | None:
        return None if self.timeout is None else parse_duration(self.timeout)

    @property
    def retry_delay_seconds(self) -> float:
        return 10.0 if self.retry_delay is None else parse_duration(self.retry_delay)

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL


@dataclass
class Template:
    """A recurring worker: .repowire/agents/<name>/job.yaml (SPEC section 5)."""

    name: str
    cron: str
    definition: dict[str, Any] = field(default_factory=dict)
    timezone: str | None = None
    enabled: bool = True
    continuity: str = "resume"
    overlap: str = "skip"
    catchup: str = "latest"
    starting_deadline: str | float | None = None
    keep_runs: int = 100


@dataclass
class Invalid:
    """A job file or template that could not be read or validated: listed, never rewritten."""

    id: str
    path: str
    error: str
    kind: str = "job"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "state": "invalid", "path": self.path, "error": self.error}


# --- parsing --------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValidationError(f"expected text, got {_kind(value)}")


def _nonempty_text(value: Any) -> str:
    text = _text(value)
    if not text.strip():
        raise ValidationError("expected text, got an empty string")
    return text


def _command(value: Any) -> str | list[str]:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValidationError(f"expected a command string or a list of strings, got {_kind(value)}")


def _env(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValidationError(f"expected a mapping of names to values, got {_kind(value)}")
    out: dict[str, str] = {}
    for key, val in value.items():
        if not isinstance(key, str) or not key or "=" in key or "\0" in key:
            raise ValidationError(f"{key!r} is not a valid environment variable name")
        if val is None or isinstance(val, (dict, list)):
            raise ValidationError(f"variable {key} needs a text value, got {_kind(val)}")
        out[key] = val if isinstance(val, str) else _text(val)
    return out


def _duration(value: Any) -> str | float:
    parse_duration(value)  # validates
    return value if isinstance(value, str) else float(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"expected a whole number 0 or more, got {value!r}")
    return value


def _positive(value: Any) -> int:
    if _count(value) < 1:
        raise ValidationError(f"expected a whole number 1 or more, got {value!r}")
    return int(value)


def _choice(*options: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in options:
            raise ValidationError(f"expected one of {', '.join(options)}, got {value!r}")
        return str(value)

    return check


def _backend(value: Any) -> str:
    return validate_id(value, "backend name")


def _state(value: Any) -> State:
    try:
        return State(value)
    except ValueError:
        names = ", ".join(s.value for s in State)
        raise ValidationError(f"expected one of {names}, got {value!r}") from None


def _optional_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"expected a whole number, got {value!r}")
    return value


def _scalar_mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValidationError(f"expected a mapping, got {_kind(value)}")
    for key, val in value.items():
        if isinstance(val, (dict, list)):
            raise ValidationError(f"{key}: expected a plain value, got {_kind(val)}")
    return dict(value)


def _where(value: Any) -> str:
    if value not in EXECUTORS:
        raise ValidationError(f"expected one of {', '.join(EXECUTORS)}, got {value!r}")
    return str(value)


def _executor(value: Any) -> str | dict[str, Any]:
    """`executor:` is where a job runs (local, slurm) until it starts, then its handle."""
    return _where(value) if isinstance(value, str) else _scalar_mapping(value)


def slurm_options(value: Any, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """A `slurm:` mapping (in a job, a template, or config.yaml with max_jobs)."""
    if not isinstance(value, dict):
        raise ValidationError(f"expected a mapping of Slurm options, got {_kind(value)}")
    known = (*SLURM_OPTIONS, *extra)
    for key, item in value.items():
        if key not in known:
            raise ValidationError(f"unknown Slurm option {key!r}; known: {', '.join(known)}")
        if key in ("cpus", "max_jobs") and (
            isinstance(item, bool) or not isinstance(item, int) or item < 1
        ):
            raise ValidationError(f"{key}: expected a whole number 1 or more, got {item!r}")
        if key == "extra_args" and not (
            isinstance(item, list) and all(isinstance(a, str) for a in item)
        ):
            raise ValidationError("extra_args: expected a list of sbatch arguments")
        if key in ("partition", "time_limit", "memory") and not isinstance(item, (str, int)):
            raise ValidationError(f"{key}: expected text, got {_kind(item)}")
    return dict(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"expected true or false, got {value!r}")
    return value


def _notes(value: Any) -> list[Note]:
    if not isinstance(value, list):
        raise ValidationError(f"expected a list of notes, got {_kind(value)}")
    notes = []
    for item in value:
        if not isinstance(item, dict) or "at" not in item or "text" not in item:
            raise ValidationError("each note needs 'at' and 'text'")
        state = _state(item["state"]) if item.get("state") is not None else None
        notes.append(Note(parse_time(item["at"]), _text(item["text"]), state))
    return notes


def _kind(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", bool: "true/false", type(None): "nothing"}
    return names.get(type(value), repr(value))


DEFINITION_KEYS: dict[str, Callable[[Any], Any]] = {
    "name": _nonempty_text,
    "backend": _backend,
    "command": _command,
    "prompt": _nonempty_text,
    "prompt_file": _nonempty_text,
    "path": _nonempty_text,
    "env": _env,
    "timeout": _duration,
    "retries": _count,
    "retry_delay": _duration,
    "due_at": parse_time,
    "continuity": _choice("fresh", "resume"),
    "executor": _where,
    "slurm": slurm_options,
}
_RUN_KEYS: dict[str, Callable[[Any], Any]] = {"template": validate_id, "scheduled_for": parse_time}
_STATE_KEYS: dict[str, Callable[[Any], Any]] = {
    "state": _state,
    "attempt": _count,
    "created_at": parse_time,
    "updated_at": parse_time,
    "started_at": parse_time,
    "finished_at": parse_time,
    "notes": _notes,
    "result_summary": _text,
    "error": _text,
    "exit_code": _optional_int,
    "session_id": _nonempty_text,
    "executor": _executor,
}
TEMPLATE_KEYS: dict[str, Callable[[Any], Any]] = {
    "cron": _nonempty_text,
    "timezone": _nonempty_text,
    "enabled": _bool,
    "overlap": _choice("skip", "queue", "allow", "replace"),
    "catchup": _choice("latest", "none", "all"),
    "starting_deadline": _duration,
    "keep_runs": _positive,
}
_JOB_KEYS = {**DEFINITION_KEYS, **_RUN_KEYS, **_STATE_KEYS}


def _validated(data: Any, keys: dict[str, Callable[[Any], Any]], where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationError(f"{where}: expected a mapping of keys to values, got {_kind(data)}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in keys:
            raise ValidationError(f"{where}: unknown key {key!r}")
        if value is None:
            continue  # an empty key is the same as an absent one
        try:
            out[key] = keys[key](value)
        except ValidationError as exc:
            raise ValidationError(f"{where}: {key}: {exc}") from None
    return out


def _check_definition(values: dict[str, Any], where: str, require_work: bool = True) -> None:
    if "prompt" in values and "prompt_file" in values:
        raise ValidationError(f"{where}: set prompt or prompt_file, not both")
    backend = values.get("backend")
    if backend == SHELL and "command" not in values:
        raise ValidationError(f"{where}: the shell backend needs a command")
    if require_work and not any(k in values for k in ("command", "prompt", "prompt_file")):
        raise ValidationError(f"{where}: a job needs a command or a prompt")


def parse_job(job_id: str, data: Any, where: str | None = None) -> Job:
    """A Job from the mapping read out of jobs/<job_id>.yaml, or a ValidationError."""
    where = where or f"{job_id}.yaml"
    validate_id(job_id)
    if isinstance(data, dict) and "id" in data:
        if data["id"] != job_id:
            raise ValidationError(f"{where}: id {data['id']!r} does not match the file name")
        data = {k: v for k, v in data.items() if k != "id"}
    values = _validated(data, _JOB_KEYS, where)
    _check_definition(values, where)
    return Job(id=job_id, **values)


def parse_template(name: str, data: Any, where: str | None = None) -> Template:
    """A Template from the mapping read out of agents/<name>/job.yaml, or a ValidationError."""
    where = where or f"agents/{name}/job.yaml"
    validate_id(name, "template name")
    values = _validated(data, {**DEFINITION_KEYS, **TEMPLATE_KEYS}, where)
    if "cron" not in values:
        raise ValidationError(f"{where}: a template needs a cron expression")
    _check_definition(values, where)
    template_values = {k: values.pop(k) for k in list(values) if k in TEMPLATE_KEYS}
    if "continuity" in values:
        template_values["continuity"] = values.pop("continuity")
    return Template(name=name, definition=values, **template_values)


# --- serialising ----------------------------------------------------------------------------


def _plain(value: Any, times_as_text: bool = True) -> Any:
    if isinstance(value, datetime):
        return format_time(value) if times_as_text else value.replace(microsecond=0)
    if isinstance(value, State):
        return value.value
    if isinstance(value, list):
        return [_plain(v, times_as_text) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v, times_as_text) for k, v in value.items()}
    return value


def job_to_dict(job: Job, *, with_id: bool = False, times_as_text: bool = True) -> dict[str, Any]:
    """The record as plain data in key order, empty keys left out; times as ISO-8601 Z text
    (or, for the YAML writer, as datetimes)."""
    out: dict[str, Any] = {"id": job.id} if with_id else {}
    for f in dataclasses.fields(job):
        if f.name == "id":
            continue
        value = getattr(job, f.name)
        if f.name == "notes":
            value = [_note_dict(n) for n in value]
        if value is None or value == {} or value == [] or (f.name == "retries" and value == 0):
            continue
        out[f.name] = _plain(value, times_as_text)
    out.setdefault("state", State.QUEUED.value)
    return out


def _note_dict(note: Note) -> dict[str, Any]:
    out: dict[str, Any] = {"at": note.at, "text": note.text}
    if note.state is not None:
        out["state"] = note.state
    return out


def template_to_dict(template: Template) -> dict[str, Any]:
    """The template's job.yaml content as plain data, defaults left out."""
    defaults = Template(name=template.name, cron="")
    out = dict(template.definition)
    for key in TEMPLATE_KEYS:
        value = getattr(template, key)
        if key == "cron" or value != getattr(defaults, key):
            out[key] = value
    if template.continuity != defaults.continuity:
        out["continuity"] = template.continuity
    return _plain(out)


_TIME_KEYS = ("due_at", "scheduled_for", "created_at", "updated_at", "started_at", "finished_at")


def _from_text(value: str) -> datetime:
    return datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)


def job_from_record(record: dict[str, Any]) -> Job:
    """A Job from what job_to_dict(with_id=True) made of one, without validating it again.

    For records this program wrote or validated itself (the listing index), never for files."""
    values = dict(record)
    for key in _TIME_KEYS:
        if key in values:
            values[key] = _from_text(values[key])
    values["state"] = State(values.get("state", "queued"))
    values["notes"] = [
        Note(_from_text(n["at"]), n["text"], State(n["state"]) if n.get("state") else None)
        for n in values.get("notes", [])
    ]
    return Job(**values)
