"""One attempt of a job: preparing its launch, and turning how it ended into the record's state."""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from .backends import (
    Backend,
    build_argv,
    chooses_session_id,
    final_message,
    find_session_id,
    json_value,
    read_prompt,
    resolve_backend,
)
from .config import Config
from .errors import ValidationError
from .executor import Launch, describe_status
from .files import atomic_write, read_tail
from .model import SHELL, Job, Note, State, enter_state
from .store import Store
from .values import format_duration, format_time

__all__ = ["prepare_launch", "record_outcome", "log_header", "SUMMARY_LIMIT"]

SUMMARY_LIMIT = 500
_TAIL_BYTES = 64 * 1024
_HEADER = "=== repowire: "


def _worker_folder(store: Store, config: Config, job: Job) -> Path:
    """The job's path, checked against allowed_paths; a ValidationError names path and policy."""
    root = store.root.resolve()
    folder = (root / (job.path or ".")).resolve()
    allowed = [(root / a).resolve() for a in config.allowed_paths]
    if not any(folder == a or folder.is_relative_to(a) for a in allowed):
        raise ValidationError(
            f"path {job.path} is outside the allowed paths ({', '.join(config.allowed_paths)}; "
            "config.yaml allowed_paths)"
        )
    if not folder.is_dir():
        raise ValidationError(f"path {job.path} does not exist or is not a folder")
    return folder


def _environment(store: Store, job: Job, backend: Backend | None, resume: bool) -> dict[str, str]:
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)  # so `repowire` works inside the executor
    if bin_dir not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = os.pathsep.join(filter(None, [bin_dir, env.get("PATH")]))
    env.update(backend.env if backend else {})
    env.update(job.env)
    env.update(
        REPOWIRE_ROOT=str(store.root),
        REPOWIRE_JOB_ID=job.id,
        REPOWIRE_JOB_FILE=str(store.job_file(job.id)),
        REPOWIRE_RESULT_FILE=str(store.sibling(job.id, ".result.md")),
        REPOWIRE_ATTEMPT=str(job.attempt),
    )
    env.pop("REPOWIRE_SESSION_ID", None)
    if resume and job.session_id:
        env["REPOWIRE_SESSION_ID"] = job.session_id
    return env


def prepare_launch(store: Store, config: Config, job: Job, resume_session: str | None) -> Launch:
    """Everything needed to start this attempt; ValidationError when it cannot start."""
    cwd = _worker_folder(store, config, job)
    name = job.effective_backend
    backend = None if name == SHELL else resolve_backend(str(name), config)
    resume = bool(resume_session) and (backend is None or backend.resume_command is not None)
    env = _environment(store, job, backend, resume)
    stdin = None
    chosen = None if resume or not chooses_session_id(backend) else str(uuid.uuid4())
    values = {
        "job_id": job.id,
        "session_id": (resume_session if resume else chosen) or "",
        "result_file": str(store.sibling(job.id, ".result.md")),
    }
    if backend is not None:
        prompt = read_prompt(job, cwd)
        values["prompt"] = prompt
        values["prompt_file"] = str(cwd / job.prompt_file) if job.prompt_file else ""
        if backend.stdin:
            stdin = _prompt_on_disk(store, prompt)
    argv = build_argv(job, backend, values, resume)
    launch = Launch(argv, cwd, env, store.sibling(job.id, ".log"), store.sibling(job.id, ".exit"))
    launch.stdin = stdin
    if chosen:
        launch.extra["session_id"] = chosen  # the runner records it with the executor
    return launch


def _prompt_on_disk(store: Store, prompt: str) -> Path:
    """The prompt in a private temp file, for an executor that reads it on stdin."""
    fd, name = tempfile.mkstemp(dir=store.locks_dir, prefix=".prompt-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(prompt)
    return Path(name)


def log_header(job: Job, argv: list[str], at: datetime) -> str:
    shown = " ".join(argv)
    return (
        f"=== repowire: {job.id} attempt {job.attempt} started {format_time(at)}: {shown[:300]}\n"
    )


def _attempt_output(store: Store, job: Job, limit: int = _TAIL_BYTES) -> str:
    """What the latest attempt printed (at most its last `limit` bytes), after its header."""
    try:
        text = read_tail(store.sibling(job.id, ".log"), limit)
    except ValidationError:
        return ""  # a link planted at the log's name: nothing is read through it
    return text.rsplit(_HEADER, 1)[-1].split("\n", 1)[-1] if _HEADER in text else text


def _last_output_line(store: Store, job: Job) -> str | None:
    lines = [line.strip() for line in _attempt_output(store, job).splitlines() if line.strip()]
    return lines[-1] if lines else None


def _summary(store: Store, job: Job, fall_back_to_output: bool = True) -> str | None:
    try:
        text = read_tail(store.sibling(job.id, ".result.md"), _TAIL_BYTES)
    except ValidationError:
        text = ""
    lines = [line.strip().lstrip("#").strip() for line in text.splitlines()]
    first = next((line for line in lines if line), None)
    if first is None and fall_back_to_output:
        first = _last_output_line(store, job)
    if first and len(first) > SUMMARY_LIMIT:
        first = first[: SUMMARY_LIMIT - 1] + "…"
    return first


def record_outcome(
    store: Store,
    job: Job,
    code: int | None,
    error: str | None,
    backend: Backend | None,
    now: datetime,
) -> None:
    """Apply how an attempt ended: succeeded, failed, or queued again when retries are left."""
    output = _attempt_output(store, job, 4 * _TAIL_BYTES)
    found = find_session_id(backend, output)
    if found:
        job.session_id = found
    message = final_message(backend, output)
    result_file = store.sibling(job.id, ".result.md")
    if message and not result_file.exists():
        atomic_write(result_file, message if message.endswith("\n") else message + "\n")
    if job.result_summary is None:
        reads_message = backend is not None and backend.final_message_key is not None
        job.result_summary = _summary(store, job, fall_back_to_output=not reads_message)
    job.exit_code = code
    if code == 0 and error is None:
        if backend and backend.final_message_key and not message and not result_file.exists():
            job.notes.append(Note(now, "the agent ended without a final message"))
        enter_state(job, State.SUCCEEDED, "exit status 0", now)
        return
    job.error = error or describe_status(code if code is not None else -9)
    if backend is not None and error is None:  # the agent CLI's own words for what went wrong
        why = message or json_value(output, "error.message") or _last_output_line(store, job)
        if why:
            job.error = f"{job.error}: {' '.join(why.split())[:SUMMARY_LIMIT]}"
    if job.attempt <= job.retries:
        delay = job.retry_delay_seconds * (2 ** (job.attempt - 1))
        job.due_at = now + timedelta(seconds=delay)
        retry_no = job.attempt
        enter_state(
            job,
            State.QUEUED,
            f"attempt {job.attempt} failed ({job.error}); retry "
            f"{retry_no} of {job.retries} in {format_duration(delay)}",
            now,
            actor="runner",
        )
        job.result_summary = None
        return
    enter_state(job, State.FAILED, job.error, now)
