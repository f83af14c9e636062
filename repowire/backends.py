"""Backends turn a job into an argv: the built-in shell, and agent CLIs from presets or config.

Pure: no processes, no files but the prompt file a job names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Config
from .errors import ValidationError
from .model import SHELL, Job

__all__ = ["Backend", "PRESETS", "resolve_backend", "build_argv", "find_session_id", "read_prompt"]


@dataclass(frozen=True)
class Backend:
    """An agent CLI: argv templates with {prompt}, {prompt_file}, {session_id}, {job_id}."""

    name: str
    command: tuple[str, ...]
    resume_command: tuple[str, ...] | None = None
    stdin: bool = False
    session_id_pattern: str | None = None
    env: dict[str, str] = field(default_factory=dict)


# Built-in agent presets; a later version fills these in. config.yaml can declare any of them.
PRESETS: dict[str, Backend] = {}


def resolve_backend(name: str, config: Config) -> Backend:
    """The backend a job names: config.yaml's entry (over a preset's), else the preset."""
    preset = PRESETS.get(name)
    spec = config.backends.get(name)
    if spec is None:
        if preset is None:
            known = ", ".join([SHELL, *sorted({*PRESETS, *config.backends})])
            raise ValidationError(f"unknown backend {name!r}; known backends: {known}")
        return preset
    base: dict[str, Any] = {} if preset is None else preset.__dict__.copy()
    merged = {**base, **spec, "name": name}
    if "command" not in merged:
        raise ValidationError(f"backend {name}: config.yaml must give its command")
    merged["command"] = tuple(merged["command"])
    if merged.get("resume_command") is not None:
        merged["resume_command"] = tuple(merged["resume_command"])
    merged["env"] = {k: str(v) for k, v in (merged.get("env") or {}).items()}
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
        return path.read_text(encoding="utf-8")
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

    return re.sub(r"\{(prompt|prompt_file|session_id|job_id)\}", replace, part)


def find_session_id(backend: Backend | None, output: str) -> str | None:
    """The first group of the first match of the backend's session_id_pattern in the output."""
    if backend is None or not backend.session_id_pattern:
        return None
    match = re.search(backend.session_id_pattern, output)
    if not match:
        return None
    return match.group(1) if match.groups() else match.group(0)
