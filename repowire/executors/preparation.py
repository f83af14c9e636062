"""Preparing one attempt of a job: its worker folder, environment, argv and log header."""

from __future__ import annotations

import functools
import os
import tempfile
import uuid
from datetime import datetime
from pathlib import Path

from repowire.backends.presets import (
    Backend,
    build_argv,
    chooses_session_id,
    read_prompt,
    resolve_backend,
)
from repowire.errors import RepowireError, ValidationError
from repowire.executors.contract import Launch, base_environment
from repowire.executors.slurm import merge_options
from repowire.record.job import SHELL, Job
from repowire.store.config import Config
from repowire.store.records import Store
from repowire.times import format_time

__all__ = [
    "prepare_launch",
    "worker_folder",
    "environment",
    "log_header",
    "start_error",
    "HEADER",
]

HEADER = "=== repowire: "  # starts the line that heads each attempt in <id>.log


@functools.lru_cache(maxsize=16)
def _real(root: Path) -> Path:
    """A root's real path, found once: a runner takes it as fixed (Store.root_ref does too)."""
    return root.resolve()


def worker_folder(store: Store, config: Config, job: Job, tree: Path | None = None) -> Path:
    """The job's path, checked against allowed_paths; a ValidationError names path and policy.
    With `tree` (the root's place in a worktree run's tree), the same path inside the tree."""
    root = _real(store.root)
    path = job.path or "."
    folder = root if path == "." else (root / path).resolve()
    allowed = [root if a == "." else (root / a).resolve() for a in config.allowed_paths]
    if not any(folder == a or folder.is_relative_to(a) for a in allowed):
        raise ValidationError(
            f"path {job.path or '(the root)'} is outside the allowed paths "
            f"({', '.join(config.allowed_paths)}; config.yaml allowed_paths)"
        )
    if tree is not None:
        folder = tree / folder.relative_to(root)
        if not folder.is_dir():
            branch = job.worktree.branch if job.worktree else "?"
            raise ValidationError(
                f"path {job.path or '.'} is not in the worktree of branch {branch} "
                "(commit it, or choose a path that is)"
            )
    if not folder.is_dir():
        raise ValidationError(f"path {job.path} does not exist or is not a folder")
    return folder


def environment(
    store: Store, job: Job, backend: Backend | None, resume: bool, tree: Path | None = None
) -> dict[str, str]:
    """What an executor (or a job's precondition) sees: ours, the backend's and the job's
    variables, and the REPOWIRE_* ones."""
    env = base_environment()
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
    env.pop("REPOWIRE_WORKTREE", None)
    if tree is not None:
        env["REPOWIRE_WORKTREE"] = str(tree)
    if resume and job.session_id:
        env["REPOWIRE_SESSION_ID"] = job.session_id
    return env


def prepare_launch(
    store: Store, config: Config, job: Job, resume_session: str | None, tree: Path | None = None
) -> Launch:
    """Everything needed to start this attempt (in `tree`, the root's place in its worktree,
    for a worktree run); ValidationError when it cannot start."""
    cwd = worker_folder(store, config, job, tree)
    name = job.effective_backend
    backend = None if name == SHELL else resolve_backend(str(name), config)
    resume = bool(resume_session) and (backend is None or backend.resume_command is not None)
    env = environment(store, job, backend, resume, tree)
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
    return Launch(
        job_id=job.id,
        argv=build_argv(job, backend, values, resume),
        cwd=cwd,
        env=env,
        log=store.sibling(job.id, ".log"),
        exit_file=store.sibling(job.id, ".exit"),
        stdin=stdin,
        session_id=chosen,  # the runner records it with the handle
        slurm=merge_options(config.slurm, job.slurm),
    )


def _prompt_on_disk(store: Store, prompt: str) -> Path:
    """The prompt in a private temp file, for an executor that reads it on stdin."""
    fd, name = tempfile.mkstemp(dir=store.locks_dir, prefix=".prompt-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(prompt)
    return Path(name)


def log_header(job: Job, argv: list[str], at: datetime) -> str:
    """The line that heads each attempt's output in <id>.log."""
    shown = " ".join(argv)
    return f"{HEADER}{job.id} attempt {job.attempt} started {format_time(at)}: {shown[:300]}\n"


def start_error(exc: Exception) -> str:
    """Why an attempt could not start, as one sentence."""
    if isinstance(exc, FileNotFoundError) and not exc.filename:
        return str(exc)  # "codex: command not found on PATH"
    if isinstance(exc, OSError):
        return f"could not start: {exc.strerror or exc}"
    if isinstance(exc, RepowireError):
        return str(exc)
    return f"could not start: {exc}".splitlines()[0][:500]
