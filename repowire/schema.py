"""Parsing and validation of job files and templates: every key's check, written once. Pure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from .errors import Problems, ValidationError
from .handles import Handle, handle_from_dict
from .model import (
    EXECUTORS,
    SHELL,
    SLURM_OPTIONS,
    Job,
    Note,
    State,
    Template,
    Worktree,
    split_executor,
)
from .values import parse_duration, parse_time, shown, validate_id, validate_template_name

__all__ = [
    "DEFINITION_KEYS",
    "TEMPLATE_KEYS",
    "parse_job",
    "parse_template",
    "slurm_options",
]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValidationError(f"expected text, got {_kind(value)}")


def _clean(text: str) -> str:
    """Text that can be written back and passed to a process: UTF-8, with no NUL byte."""
    if "\0" in text:
        raise ValidationError("holds a NUL byte, which no file name, argument or variable can")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("is not valid UTF-8 text") from None
    return text


def _nonempty_text(value: Any) -> str:
    text = _text(value)
    if not text.strip():
        raise ValidationError("expected text, got an empty string")
    return text


def _command(value: Any) -> str | list[str]:
    if isinstance(value, str) and value.strip():
        return _clean(value)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return [_clean(v) for v in value]
    raise ValidationError(f"expected a command string or a list of strings, got {_kind(value)}")


def _env(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValidationError(f"expected a mapping of names to values, got {_kind(value)}")
    out: dict[str, str] = {}
    for key, val in value.items():
        if not isinstance(key, str) or not key or "=" in key or "\0" in key:
            raise ValidationError(f"{shown(key)} is not a valid environment variable name")
        if val is None or isinstance(val, (dict, list)):
            raise ValidationError(f"variable {key} needs a text value, got {_kind(val)}")
        try:
            out[_clean(key)] = _text(val)
        except ValidationError as exc:
            raise ValidationError(f"variable {shown(key)} {exc}") from None
    return out


def _duration(value: Any) -> str | float:
    parse_duration(value)  # validates
    return value if isinstance(value, str) else float(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"expected a whole number 0 or more, got {shown(value)}")
    return value


def _positive(value: Any) -> int:
    if _count(value) < 1:
        raise ValidationError(f"expected a whole number 1 or more, got {shown(value)}")
    return int(value)


def _choice(*options: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in options:
            raise ValidationError(f"expected one of {', '.join(options)}, got {shown(value)}")
        return str(value)

    return check


def _ids(value: Any) -> list[str]:
    """A list of job ids (the jobs this one waits for), each once."""
    if not isinstance(value, list) or not value:
        raise ValidationError(f"expected a list of job ids, got {_kind(value)}")
    ids = [validate_id(item) for item in value]
    if len(set(ids)) != len(ids):
        raise ValidationError("names a job more than once")
    return ids


def _template_names(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ValidationError(f"expected a list of template names, got {_kind(value)}")
    return [validate_template_name(item) for item in value]


def _labels(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValidationError(f"expected a list of labels, got {_kind(value)}")
    return [_clean(v) for v in value]


def _backend(value: Any) -> str:
    return validate_id(value, "backend name")


def _state(value: Any) -> State:
    try:
        return State(value)
    except ValueError:
        names = ", ".join(s.value for s in State)
        raise ValidationError(f"expected one of {names}, got {shown(value)}") from None


def _optional_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"expected a whole number, got {shown(value)}")
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
        raise ValidationError(f"expected one of {', '.join(EXECUTORS)}, got {shown(value)}")
    return str(value)


def _executor(value: Any) -> str | Handle:
    """`executor:` is where a job runs (local, slurm) until it is claimed, then its handle."""
    if isinstance(value, str):
        return _where(value)
    return handle_from_dict(_scalar_mapping(value))  # checks every field


def slurm_options(value: Any, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """A `slurm:` mapping (in a job, a template, or config.yaml with max_jobs)."""
    if not isinstance(value, dict):
        raise ValidationError(f"expected a mapping of Slurm options, got {_kind(value)}")
    known = (*SLURM_OPTIONS, *extra)
    for key, item in value.items():
        if key not in known:
            raise ValidationError(f"unknown Slurm option {shown(key)}; known: {', '.join(known)}")
        if key in ("cpus", "max_jobs") and (
            isinstance(item, bool) or not isinstance(item, int) or item < 1
        ):
            raise ValidationError(f"{key}: expected a whole number 1 or more, got {shown(item)}")
        if key == "extra_args" and not (
            isinstance(item, list) and all(isinstance(a, str) for a in item)
        ):
            raise ValidationError("extra_args: expected a list of sbatch arguments")
        if key in ("partition", "time_limit", "memory") and not isinstance(item, (str, int)):
            raise ValidationError(f"{key}: expected text, got {_kind(item)}")
    return dict(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"expected true or false, got {shown(value)}")
    return value


def _worktree(value: Any) -> Worktree:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValidationError(f"expected a mapping, got {_kind(value)}")
    unknown = sorted(set(value) - {"branch", "base", "path", "head", "files_changed"})
    if unknown:
        raise ValidationError(f"unknown key {shown(unknown[0])}")
    missing = [k for k in ("branch", "base", "path") if value.get(k) is None]
    if missing:
        raise ValidationError(f"{missing[0]} is missing")
    head = value.get("head")
    files = value.get("files_changed")
    return Worktree(
        branch=_nonempty_text(value["branch"]),
        base=_nonempty_text(value["base"]),
        path=_nonempty_text(value["path"]),
        head=None if head is None else _text(head),
        files_changed=None if files is None else _count(files),
    )


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
    return names.get(type(value)) or shown(value)


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
    "after": _ids,
    "on_dependency_failure": _choice("cancel", "run"),
    "priority": _count,
    "labels": _labels,
    "run_if": _nonempty_text,
    "run_if_timeout": _duration,
    "stall_timeout": _duration,
    "workspace": _choice("inplace", "worktree"),
    "base": _nonempty_text,
    "keep_worktree": _bool,
}
_RUN_KEYS: dict[str, Callable[[Any], Any]] = {
    "template": validate_id,
    "scheduled_for": parse_time,
    "triggered_by": validate_id,
}
_STATE_KEYS: dict[str, Callable[[Any], Any]] = {
    "state": _state,
    "attempt": _count,
    "created_at": parse_time,
    "updated_at": parse_time,
    "started_at": parse_time,
    "finished_at": parse_time,
    "retry_at": parse_time,
    "notes": _notes,
    "result_summary": _text,
    "error": _text,
    "exit_code": _optional_int,
    "session_id": _nonempty_text,
    "executor": _executor,
    "worktree": _worktree,
}
TEMPLATE_KEYS: dict[str, Callable[[Any], Any]] = {  # the names of model.TEMPLATE_FIELDS
    "cron": _nonempty_text,
    "timezone": _nonempty_text,
    "enabled": _bool,
    "overlap": _choice("skip", "queue", "allow", "replace"),
    "catchup": _choice("latest", "none", "all"),
    "starting_deadline": _duration,
    "keep_runs": _positive,
    "jitter": _duration,
    "then": _template_names,
    "then_on_failure": _template_names,
}
_JOB_KEYS = {**DEFINITION_KEYS, **_RUN_KEYS, **_STATE_KEYS}


def _validated(
    data: Any, keys: dict[str, Callable[[Any], Any]], problems: list[str]
) -> dict[str, Any]:
    """The values of the keys that are valid; a sentence in `problems` for each that is not."""
    if not isinstance(data, dict):
        problems.append(f"expected a mapping of keys to values, got {_kind(data)}")
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
