"""Backends turn a job into an argv: the built-in shell, and agent CLIs from presets or config.

Pure: no processes, no files but the prompt file a job names.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repowire.errors import ValidationError, shown
from repowire.files import read_text
from repowire.record.job import SHELL, Job
from repowire.store.config import Config

__all__ = [
    "Backend",
    "PRESETS",
    "resolve_backend",
    "describe_backends",
    "build_argv",
    "chooses_session_id",
    "find_session_id",
    "final_message",
    "json_value",
    "json_objects",
    "read_prompt",
]


@dataclass(frozen=True)
class Backend:
    """An agent CLI: argv templates with {prompt}, {prompt_file}, {session_id}, {job_id},
    {result_file}. A `command` that holds {session_id} chooses the session id up front."""

    name: str
    command: tuple[str, ...]
    resume_command: tuple[str, ...] | None = None
    stdin: bool = False
    session_id_pattern: str | None = None
    final_message_key: str | None = None  # dotted key of the final message in JSON output
    env: dict[str, str] = field(default_factory=dict)
    usage_keys: dict[str, str] = field(default_factory=dict)  # our usage key -> dotted key
    usage_is_total: bool = False  # it reports its session's running total, not the run's


# The agent CLIs' non-interactive modes, checked against their --help (codex-cli 0.169.0,
# Claude Code 2.1.197, gemini 0.61.0, opencode 1.18.33). Each runs unattended with the
# narrowest permission that still lets it edit its worker folder (docs/file-format.md,
# "Agent backends").
_CODEX = (
    "--json",
    "--skip-git-repo-check",
    "-c",
    'sandbox_mode="workspace-write"',
    "-o",
    "{result_file}",
)
_CLAUDE = ("-p", "--output-format", "json", "--permission-mode", "acceptEdits")
_GEMINI = ("--skip-trust", "--approval-mode", "auto_edit", "-o", "json")
_OPENCODE = ("run", "--format", "json")

PRESETS: dict[str, Backend] = {
    "codex": Backend(
        name="codex",
        command=("codex", "exec", *_CODEX, "--", "{prompt}"),
        resume_command=("codex", "exec", "resume", *_CODEX, "--", "{session_id}", "{prompt}"),
        session_id_pattern=r'"thread_id"\s*:\s*"([^"]+)"',
        final_message_key="item.text",
        usage_is_total=True,  # a resumed thread's turn.completed counts its earlier runs too
    ),
    "claude": Backend(
        name="claude",
        command=("claude", *_CLAUDE, "--session-id", "{session_id}", "--", "{prompt}"),
        resume_command=("claude", *_CLAUDE, "--resume", "{session_id}", "--", "{prompt}"),
        session_id_pattern=r'"session_id"\s*:\s*"([^"]+)"',
        final_message_key="result",
    ),
    "gemini": Backend(
        name="gemini",
        command=("gemini", *_GEMINI, "--session-id", "{session_id}", "-p", "{prompt}"),
        resume_command=("gemini", *_GEMINI, "--resume", "{session_id}", "-p", "{prompt}"),
        final_message_key="response",
    ),
    "opencode": Backend(
        name="opencode",
        command=("opencode", *_OPENCODE, "--", "{prompt}"),
        resume_command=("opencode", *_OPENCODE, "--session", "{session_id}", "--", "{prompt}"),
        session_id_pattern=r'"sessionID"\s*:\s*"([^"]+)"',
        final_message_key="part.text",
    ),
}


def resolve_backend(name: str, config: Config) -> Backend:
    """The backend a job names: config.yaml's entry (over a preset's), else the preset."""
    preset = PRESETS.get(name)
    spec = config.backends.get(name)
    if spec is None:
        if preset is None:
            known = ", ".join([SHELL, *sorted({*PRESETS, *config.backends})])
            raise ValidationError(f"unknown backend {shown(name)}; known backends: {known}")
        return preset
    base: dict[str, Any] = {} if preset is None else preset.__dict__.copy()
    merged = {**base, **spec, "name": name}
    if "command" not in merged:
        raise ValidationError(f"backend {name}: config.yaml must give its command")
    merged["command"] = tuple(merged["command"])
    if merged.get("resume_command") is not None:
        merged["resume_command"] = tuple(merged["resume_command"])
    merged["env"] = {k: str(v) for k, v in (merged.get("env") or {}).items()}
    merged["usage_keys"] = dict(merged.get("usage_keys") or {})
    return Backend(**merged)


def read_prompt(job: Job, cwd: Path) -> str:
    """The job's ask: its prompt, or the text of prompt_file inside the worker folder."""
    if job.prompt is not None:
        return job.prompt
    if job.prompt_file is None:
        raise ValidationError(f"job {job.id} has no prompt or prompt_file for its agent backend")
    path = (cwd / job.prompt_file).resolve()
    if not path.is_relative_to(cwd.resolve()):
        raise ValidationError(f"prompt_file {job.prompt_file} is outside the worker folder {cwd}")
    try:
        return read_text(path)  # refuses a FIFO, a folder, a huge file and non-UTF-8 text
    except FileNotFoundError:
        raise ValidationError(f"prompt_file {job.prompt_file} does not exist") from None
    except ValidationError as exc:
        raise ValidationError(f"prompt_file {job.prompt_file}: {exc}") from None
    except OSError as exc:
        raise ValidationError(
            f"prompt_file {job.prompt_file} cannot be read ({exc.strerror})"
        ) from None


def build_argv(
    job: Job, backend: Backend | None, values: dict[str, str], resume: bool
) -> list[str]:
    """The argv of one attempt; placeholders are filled inside argv elements, never by a shell."""
    if backend is None:
        if isinstance(job.command, list):
            return list(job.command)
        return ["/bin/sh", "-c", str(job.command)]
    template = backend.resume_command if resume and backend.resume_command else backend.command
    return [_fill(part, values) for part in template]


def _fill(part: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ValidationError(f"placeholder {{{key}}} has no value for this job")
        return values[key]

    return re.sub(r"\{(prompt|prompt_file|session_id|job_id|result_file)\}", replace, part)


def find_session_id(backend: Backend | None, output: str) -> str | None:
    """The first group of the first match of the backend's session_id_pattern in the output."""
    if backend is None or not backend.session_id_pattern:
        return None
    match = re.search(backend.session_id_pattern, output)
    if not match:
        return None
    return match.group(1) if match.groups() else match.group(0)


def chooses_session_id(backend: Backend | None) -> bool:
    """Whether a fresh run is given its session id up front (the command holds {session_id})."""
    return backend is not None and any("{session_id}" in part for part in backend.command)


def final_message(backend: Backend | None, output: str) -> str | None:
    """The final message: the key named, in the last JSON object of the output that has it."""
    if backend is None or not backend.final_message_key:
        return None
    return json_value(output, backend.final_message_key)


def json_value(output: str, key: str) -> str | None:
    """The text at a dotted key in the last JSON object of the output that has it."""
    path = key.split(".")
    for value in reversed(list(json_objects(output))):
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and value.strip():
            return value
    return None


def json_objects(output: str) -> list[Any]:
    """JSON objects in the output: one per line (JSONL), or one spread over many lines."""
    decoder = json.JSONDecoder()
    found = []
    lines = output.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    position = 0
    for start, line in zip(offsets, lines, strict=False):
        if start < position or not line.lstrip().startswith("{"):
            continue
        try:
            value, end = decoder.raw_decode(output, start + len(line) - len(line.lstrip()))
        except json.JSONDecodeError:
            continue
        found.append(value)
        position = end
    return found


def describe_backends(config: Config) -> list[dict[str, Any]]:
    """Every backend with what it will run, its resume form, and whether its program is here."""
    rows: list[dict[str, Any]] = [
        {
            "name": SHELL,
            "source": "built in",
            "command": ["/bin/sh", "-c", "{command}"],
            "resume_command": None,
            "program": "/bin/sh",
            "installed": True,
        }
    ]
    for name in sorted({*PRESETS, *config.backends}):
        backend = resolve_backend(name, config)
        source = (
            "preset"
            if name not in config.backends
            else "config.yaml"
            if name not in PRESETS
            else "preset, overridden in config.yaml"
        )
        rows.append(
            {
                "name": name,
                "source": source,
                "command": list(backend.command),
                "resume_command": list(backend.resume_command) if backend.resume_command else None,
                "stdin": backend.stdin,
                "session_id": "chosen up front"
                if chooses_session_id(backend)
                else f"read with {backend.session_id_pattern}"
                if backend.session_id_pattern
                else "not captured",
                "final_message_key": backend.final_message_key,
                "program": backend.command[0],
                "installed": shutil.which(backend.command[0]) is not None,
            }
        )
    return rows
