"""JSON Schemas of job records, templates and config.yaml, for editors and pre-commit checks.

Each key of schema.py's tables has its fragment here (a test keeps the two in step, and runs
sample files through both); `repowire schema KIND` prints one, and `repowire init` writes them
to .repowire/schemas/ for the `# yaml-language-server: $schema=...` line of the files it makes.
Rules JSON Schema cannot say (a cron expression that matches, a known time zone, times between
1970 and 9000, a key given twice) are `repowire validate`'s alone.
"""

from __future__ import annotations

from typing import Any

from repowire.record.states import TERMINAL, State

__all__ = ["KINDS", "schema_for"]

KINDS = ("job", "template", "config")
_ID = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_TEXT: dict[str, Any] = {"type": "string", "pattern": "\\S"}
_WORDS: dict[str, Any] = {"type": ["string", "number"]}
_TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
_DURATION: dict[str, Any] = {
    "oneOf": [
        {"type": "number", "minimum": 0, "maximum": 315360000},
        {"type": "string", "pattern": "^\\s*(\\d+(\\.\\d+)?\\s*(ms|s|m|h|d|w)?\\s*)+$"},
    ],
    "description": "seconds, or 30s, 10m, 2h, 1d, 1h30m (at most ten years)",
}
_USAGE_NAMES = ("input_tokens", "cached_input_tokens", "output_tokens", "cost_usd", "model")
_PRICE_NAMES = ("input", "cached_input", "output")
_ARGV: dict[str, Any] = {"type": "array", "items": {"type": "string"}, "minItems": 1}
_SLURM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "partition": {"type": ["string", "integer"]},
        "time_limit": {"type": ["string", "integer"]},
        "cpus": {"type": "integer", "minimum": 1},
        "memory": {"type": ["string", "integer"]},
        "extra_args": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}

_TERMINAL_STATE: dict[str, Any] = {"enum": [s.value for s in State if s in TERMINAL]}
_TARGET: dict[str, Any] = {
    "type": "object",
    "properties": {
        "command": _TEXT,
        "webhook": {"type": "string", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"},
        "desktop": {"type": "boolean"},
        "when": {
            "oneOf": [_TERMINAL_STATE, {"type": "array", "items": _TERMINAL_STATE, "minItems": 1}]
        },
        "secret": _TEXT,
        "secret_env": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        "format": {"enum": ["json", "slack"]},
        "timeout": _DURATION,
    },
    "oneOf": [{"required": ["command"]}, {"required": ["webhook"]}, {"required": ["desktop"]}],
    "not": {"required": ["secret", "secret_env"]},
    "dependentRequired": {
        "secret": ["webhook"],
        "secret_env": ["webhook"],
        "format": ["webhook"],
    },
    "additionalProperties": False,
}
_NOTIFY: dict[str, Any] = {"type": "array", "items": _TARGET, "minItems": 1}
DEFINITION: dict[str, dict[str, Any]] = {
    "name": _TEXT,
    "backend": {"type": "string", "pattern": _ID},
    "command": {"oneOf": [_TEXT, _ARGV]},
    "prompt": _TEXT,
    "prompt_file": _TEXT,
    "path": _TEXT,
    "env": {
        "type": "object",
        "propertyNames": {"pattern": "^[^=\\u0000]+$"},
        "additionalProperties": _WORDS,
    },
    "timeout": _DURATION,
    "retries": {"type": "integer", "minimum": 0},
    "retry_delay": _DURATION,
    "due_at": _TIME,
    "continuity": {"enum": ["fresh", "resume"]},
    "executor": {"enum": ["local", "slurm"]},
    "slurm": _SLURM,
    "after": {
        "type": "array",
        "items": {"type": "string", "pattern": _ID},
        "minItems": 1,
        "uniqueItems": True,
    },
    "on_dependency_failure": {"enum": ["cancel", "run"]},
    "priority": {"type": "integer", "minimum": 0},
    "run_if": _TEXT,
    "run_if_timeout": _DURATION,
    "stall_timeout": _DURATION,
    "labels": {"type": "array", "items": {"type": "string", "pattern": "\\S"}},
    "workspace": {"enum": ["inplace", "worktree"]},
    "base": _TEXT,
    "keep_worktree": {"type": "boolean"},
    "notify": _NOTIFY,
}
_STATE: dict[str, Any] = {"enum": [s.value for s in State]}
_NOTE: dict[str, Any] = {
    "type": "object",
    "properties": {"at": _TIME, "text": _WORDS, "state": _STATE},
    "required": ["at", "text"],
    "additionalProperties": False,
}
RECORD: dict[str, dict[str, Any]] = {
    "id": {"type": "string", "pattern": _ID},
    "template": {"type": "string", "pattern": _ID},
    "scheduled_for": _TIME,
    "triggered_by": {"type": "string", "pattern": _ID},
    "state": _STATE,
    "attempt": {"type": "integer", "minimum": 0},
    **{key: _TIME for key in ("created_at", "updated_at", "started_at", "finished_at")},
    "retry_at": _TIME,
    "notes": {"type": "array", "items": _NOTE},
    "result_summary": _WORDS,
    "error": _WORDS,
    "exit_code": {"type": "integer"},
    "session_id": _TEXT,
    "executor": {"oneOf": [DEFINITION["executor"], {"type": "object"}]},
    "worktree": {
        "type": "object",
        "properties": {
            "branch": _TEXT,
            "base": _TEXT,
            "path": _TEXT,
            "head": {"type": "string"},
            "files_changed": {"type": "integer", "minimum": 0},
        },
        "required": ["branch", "base", "path"],
        "additionalProperties": False,
    },
    "quiet": {"type": "boolean"},
    "notified": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "target": {"type": "string"},
                "attempt": {"type": "integer", "minimum": 0},
                "at": _TIME,
                "status": {"type": "string"},
                "ok": {"type": "boolean"},
                "tries": {"type": "integer", "minimum": 0},
            },
            "required": ["target"],
        },
    },
    "usage": {
        "type": "object",
        "properties": {
            "input_tokens": {"type": "integer", "minimum": 0},
            "cached_input_tokens": {"type": "integer", "minimum": 0},
            "output_tokens": {"type": "integer", "minimum": 0},
            "cost_usd": {"type": "number", "minimum": 0},
            "cost_estimated": {"type": "boolean"},
            "model": _TEXT,
        },
        "additionalProperties": False,
    },
}
TEMPLATE: dict[str, dict[str, Any]] = {
    "cron": _TEXT,
    "timezone": _TEXT,
    "enabled": {"type": "boolean"},
    "overlap": {"enum": ["skip", "queue", "allow", "replace"]},
    "catchup": {"enum": ["latest", "none", "all"]},
    "starting_deadline": _DURATION,
    "keep_runs": {"type": "integer", "minimum": 1},
    "jitter": _DURATION,
    "then": {"type": "array", "items": {"type": "string", "pattern": _ID}, "minItems": 1},
    "then_on_failure": {
        "type": "array",
        "items": {"type": "string", "pattern": _ID},
        "minItems": 1,
    },
    "budget": {
        "type": "object",
        "properties": {
            "cost_usd": {"type": "number", "minimum": 0},
            "tokens": {"type": "integer", "minimum": 1},
            "per": {"enum": ["day", "week", "month"]},
        },
        "anyOf": [{"required": ["cost_usd"]}, {"required": ["tokens"]}],
        "additionalProperties": False,
    },
}
_BACKEND = {
    "type": "object",
    "properties": {
        "command": _ARGV,
        "resume_command": _ARGV,
        "stdin": {"type": "boolean"},
        "session_id_pattern": {"type": "string"},
        "final_message_key": _TEXT,
        "env": {"type": "object", "additionalProperties": _WORDS},
        "usage_keys": {
            "type": "object",
            "propertyNames": {"enum": list(_USAGE_NAMES)},
            "additionalProperties": _TEXT,
            "minProperties": 1,
        },
    },
    "additionalProperties": False,
}
_PRICE: dict[str, Any] = {
    "type": "object",
    "properties": {k: {"type": "number", "minimum": 0} for k in _PRICE_NAMES},
    "additionalProperties": False,
    "minProperties": 1,
}
CONFIG: dict[str, dict[str, Any]] = {
    "max_concurrency": {"type": "integer", "minimum": 1},
    "kill_grace": _DURATION,
    "stall_timeout": _DURATION,
    "prices": {"type": "object", "additionalProperties": _PRICE},
    "notify": _NOTIFY,
    "allowed_paths": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    "backends": {
        "type": "object",
        "propertyNames": {"pattern": _ID, "not": {"const": "shell"}},
        "additionalProperties": _BACKEND,
    },
    "slurm": {
        **_SLURM,
        "properties": {**_SLURM["properties"], "max_jobs": {"type": "integer", "minimum": 1}},
    },
}

# A job needs work to do; a prompt comes from one place; the shell backend runs a command.
_WORK: list[dict[str, Any]] = [
    {"anyOf": [{"required": ["command"]}, {"required": ["prompt"]}, {"required": ["prompt_file"]}]},
    {"not": {"required": ["prompt", "prompt_file"]}},
    {
        "if": {"properties": {"backend": {"const": "shell"}}, "required": ["backend"]},
        "then": {"required": ["command"]},
    },
    {  # base and keep_worktree belong to worktree runs
        "if": {"anyOf": [{"required": ["base"]}, {"required": ["keep_worktree"]}]},
        "then": {"required": ["workspace"], "properties": {"workspace": {"const": "worktree"}}},
    },
]


def _document(
    title: str, properties: dict[str, Any], rules: list[dict[str, Any]]
) -> dict[str, Any]:
    nullable = {key: {"anyOf": [value, {"type": "null"}]} for key, value in properties.items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "type": ["object", "null"] if not rules else "object",
        "properties": nullable,  # an empty key is the same as an absent one
        "additionalProperties": False,
        **({"allOf": rules} if rules else {}),
    }


def schema_for(kind: str) -> dict[str, Any]:
    """The JSON Schema of a job record, a template's job.yaml, or config.yaml."""
    if kind == "job":
        return _document("repowire job record", {**DEFINITION, **RECORD}, _WORK)
    if kind == "template":
        rules = [*_WORK, {"required": ["cron"]}]
        return _document(
            "repowire template (agents/<name>/job.yaml)", {**DEFINITION, **TEMPLATE}, rules
        )
    if kind == "config":
        return _document("repowire config.yaml", CONFIG, [])
    raise ValueError(f"no schema named {kind!r}; there are {', '.join(KINDS)}")
