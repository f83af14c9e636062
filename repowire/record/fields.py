"""The checks of single values in job files, templates and config: each key's, written once.

Each takes what YAML gave and returns the value to keep, or raises a ValidationError whose
sentence names what was expected. Pure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from repowire.errors import ValidationError, shown
from repowire.ids import validate_id, validate_template_name
from repowire.record.handle import Handle, handle_from_dict
from repowire.record.job import EXECUTORS, SLURM_OPTIONS, Note, Worktree
from repowire.record.states import TERMINAL_NAMES, State
from repowire.times import format_time, parse_duration, parse_time


def text_value(value: Any) -> str:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValidationError(f"expected text, got {kind(value)}")


def clean(text: str) -> str:
    """Text that can be written back and passed to a process: UTF-8, with no NUL byte."""
    if "\0" in text:
        raise ValidationError("holds a NUL byte, which no file name, argument or variable can")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("is not valid UTF-8 text") from None
    return text


def nonempty_text(value: Any) -> str:
    text = text_value(value)
    if not text.strip():
        raise ValidationError("expected text, got an empty string")
    return text


def command(value: Any) -> str | list[str]:
    if isinstance(value, str) and value.strip():
        return clean(value)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return [clean(v) for v in value]
    raise ValidationError(f"expected a command string or a list of strings, got {kind(value)}")


def env(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValidationError(f"expected a mapping of names to values, got {kind(value)}")
    out: dict[str, str] = {}
    for key, val in value.items():
        if not isinstance(key, str) or not key or "=" in key or "\0" in key:
            raise ValidationError(f"{shown(key)} is not a valid environment variable name")
        if val is None or isinstance(val, (dict, list)):
            raise ValidationError(f"variable {key} needs a text value, got {kind(val)}")
        try:
            out[clean(key)] = text_value(val)
        except ValidationError as exc:
            raise ValidationError(f"variable {shown(key)} {exc}") from None
    return out


def duration(value: Any) -> str | float:
    parse_duration(value)  # validates
    return value if isinstance(value, str) else float(value)


RUN_IF_TIMEOUT_MAX = 600.0  # a precondition is a quick check: long work belongs in the job


def run_if_timeout(value: Any) -> str | float:
    """How long a `run_if` may take: a duration of at most ten minutes."""
    checked = duration(value)
    if parse_duration(value) > RUN_IF_TIMEOUT_MAX:
        raise ValidationError(
            f"expected at most 10m (a precondition is a quick check; put long work in the "
            f"job itself), got {shown(value)}"
        )
    return checked


def count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"expected a whole number 0 or more, got {shown(value)}")
    return value


def positive(value: Any) -> int:
    if count(value) < 1:
        raise ValidationError(f"expected a whole number 1 or more, got {shown(value)}")
    return int(value)


def choice(*options: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in options:
            raise ValidationError(f"expected one of {', '.join(options)}, got {shown(value)}")
        return str(value)

    return check


def ids(value: Any) -> list[str]:
    """A list of job ids (the jobs this one waits for), each once."""
    if not isinstance(value, list) or not value:
        raise ValidationError(f"expected a list of job ids, got {kind(value)}")
    ids = [validate_id(item) for item in value]
    if len(set(ids)) != len(ids):
        raise ValidationError("names a job more than once")
    return ids


def template_names(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ValidationError(f"expected a list of template names, got {kind(value)}")
    return [validate_template_name(item) for item in value]


def labels(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValidationError(f"expected a list of labels, got {kind(value)}")
    return [clean(v) for v in value]


def backend(value: Any) -> str:
    return validate_id(value, "backend name")


def state_value(value: Any) -> State:
    try:
        return State(value)
    except ValueError:
        names = ", ".join(s.value for s in State)
        raise ValidationError(f"expected one of {names}, got {shown(value)}") from None


def optional_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"expected a whole number, got {shown(value)}")
    return value


def scalar_mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValidationError(f"expected a mapping, got {kind(value)}")
    for key, val in value.items():
        if isinstance(val, (dict, list)):
            raise ValidationError(f"{key}: expected a plain value, got {kind(val)}")
    return dict(value)


def where(value: Any) -> str:
    if value not in EXECUTORS:
        raise ValidationError(f"expected one of {', '.join(EXECUTORS)}, got {shown(value)}")
    return str(value)


def executor(value: Any) -> str | Handle:
    """`executor:` is where a job runs (local, slurm) until it is claimed, then its handle."""
    if isinstance(value, str):
        return where(value)
    return handle_from_dict(scalar_mapping(value))  # checks every field


def slurm_options(value: Any, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """A `slurm:` mapping (in a job, a template, or config.yaml with max_jobs)."""
    if not isinstance(value, dict):
        raise ValidationError(f"expected a mapping of Slurm options, got {kind(value)}")
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
            raise ValidationError(f"{key}: expected text, got {kind(item)}")
    return dict(value)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"expected true or false, got {shown(value)}")
    return value


def worktree(value: Any) -> Worktree:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValidationError(f"expected a mapping, got {kind(value)}")
    unknown = sorted(set(value) - {"branch", "base", "path", "head", "files_changed"})
    if unknown:
        raise ValidationError(f"unknown key {shown(unknown[0])}")
    missing = [k for k in ("branch", "base", "path") if value.get(k) is None]
    if missing:
        raise ValidationError(f"{missing[0]} is missing")
    head = value.get("head")
    files = value.get("files_changed")
    return Worktree(
        branch=nonempty_text(value["branch"]),
        base=nonempty_text(value["base"]),
        path=nonempty_text(value["path"]),
        head=None if head is None else text_value(head),
        files_changed=None if files is None else count(files),
    )


USAGE_COUNTS = ("input_tokens", "cached_input_tokens", "output_tokens")


def usage(value: Any) -> dict[str, Any]:
    """A job's usage: token counts, cost_usd, cost_estimated, model."""
    values = scalar_mapping(value)
    for key, item in values.items():
        if key in USAGE_COUNTS:
            values[key] = count(item)
        elif key == "cost_usd":
            values[key] = amount(item)
        elif key == "cost_estimated":
            values[key] = boolean(item)
        elif key == "model":
            values[key] = nonempty_text(item)
        else:
            raise ValidationError(f"unknown key {shown(key)}")
    return values


def amount(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValidationError(f"expected a number 0 or more, got {shown(value)}")
    return float(value)


def budget(value: Any) -> dict[str, Any]:
    """A template's budget: cost_usd and/or tokens, per day (default), week or month."""
    values = scalar_mapping(value)
    unknown = sorted(set(values) - {"cost_usd", "tokens", "per"})
    if unknown:
        raise ValidationError(f"unknown key {shown(unknown[0])} (cost_usd, tokens, per)")
    if "cost_usd" not in values and "tokens" not in values:
        raise ValidationError("give cost_usd, tokens, or both")
    checks = {"per": choice("day", "week", "month"), "cost_usd": amount, "tokens": positive}
    out: dict[str, Any] = {"per": "day"}
    for key, check in checks.items():
        if key in values:
            try:
                out[key] = check(values[key])
            except ValidationError as exc:
                raise ValidationError(f"{key}: {exc}") from None
    return out


def notes(value: Any) -> list[Note]:
    if not isinstance(value, list):
        raise ValidationError(f"expected a list of notes, got {kind(value)}")
    notes = []
    for item in value:
        if not isinstance(item, dict) or "at" not in item or "text" not in item:
            raise ValidationError("each note needs 'at' and 'text'")
        state = state_value(item["state"]) if item.get("state") is not None else None
        notes.append(Note(parse_time(item["at"]), text_value(item["text"]), state))
    return notes


def kind(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", bool: "true/false", type(None): "nothing"}
    return names.get(type(value)) or shown(value)


_TARGET_KEYS = (
    "command",
    "webhook",
    "desktop",
    "when",
    "secret",
    "secret_env",
    "format",
    "timeout",
)


def notify_targets(value: Any) -> list[dict[str, Any]]:
    """`notify:` a list of targets, each one of command, webhook or desktop, with `when` (a
    list of terminal states), and for a webhook `secret` (or `secret_env`, the variable that
    holds it) and `format: slack`; `timeout`."""
    if not isinstance(value, list) or not value:
        raise ValidationError(f"expected a list of targets, got {kind(value)}")
    return [_target(n, item) for n, item in enumerate(value, 1)]


def _target(number: int, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ValidationError(f"target {number}: expected a mapping, got {kind(item)}")
    unknown = sorted(str(k) for k in set(item) - set(_TARGET_KEYS))
    if unknown:
        raise ValidationError(f"target {number}: unknown key {shown(unknown[0])}")
    kinds = [k for k in ("command", "webhook", "desktop") if item.get(k) is not None]
    if len(kinds) != 1:
        raise ValidationError(f"target {number}: give one of command, webhook or desktop")
    try:
        return _checked_target(item, kinds[0])
    except ValidationError as exc:
        raise ValidationError(f"target {number}: {exc}") from None


def _checked_target(item: dict[str, Any], sort: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if sort == "command":
        out["command"] = nonempty_text(item["command"])
    elif sort == "desktop":
        out["desktop"] = boolean(item["desktop"])
    else:
        url = nonempty_text(item["webhook"])
        if not url.lower().startswith(("http://", "https://")):
            raise ValidationError(f"webhook: expected an http or https URL, got {shown(url)}")
        out["webhook"] = url
    webhook_only = ("secret", "secret_env", "format")
    if sort != "webhook" and any(item.get(key) is not None for key in webhook_only):
        raise ValidationError("secret, secret_env and format go with a webhook")
    if item.get("secret") is not None and item.get("secret_env") is not None:
        raise ValidationError("give secret or secret_env, not both")
    if item.get("secret") is not None:
        out["secret"] = nonempty_text(item["secret"])
    if item.get("secret_env") is not None:
        out["secret_env"] = env_name(item["secret_env"])
    if item.get("format") is not None:
        out["format"] = choice("json", "slack")(item["format"])
    if item.get("when") is not None:
        states = item["when"] if isinstance(item["when"], list) else [item["when"]]
        if not states:
            raise ValidationError("when: expected terminal states (succeeded, failed, canceled)")
        out["when"] = [choice(*TERMINAL_NAMES)(s) for s in states]
    if item.get("timeout") is not None:
        out["timeout"] = duration(item["timeout"])
    return out


def env_name(value: Any) -> str:
    """The name of an environment variable (letters, digits and _, not starting with a digit)."""
    name = nonempty_text(value)
    if not name.replace("_", "a").isalnum() or name[0].isdigit() or not name.isascii():
        raise ValidationError(f"expected the name of an environment variable, got {shown(name)}")
    return name


def notified(value: Any) -> list[dict[str, Any]]:
    """The runner's record of each notification try: target, attempt, at, status, ok, tries."""
    if not isinstance(value, list):
        raise ValidationError(f"expected a list, got {kind(value)}")
    out = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("target"), str):
            raise ValidationError("each entry needs a target")
        out.append(
            {
                "target": text_value(entry["target"]),
                "attempt": count(entry.get("attempt", 0)),
                "at": format_time(parse_time(entry["at"])) if entry.get("at") else None,
                "status": text_value(entry.get("status", "")),
                "ok": boolean(entry.get("ok", False)),
                "tries": count(entry.get("tries", 1)),
            }
        )
    return out
