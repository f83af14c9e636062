"""Preconditions: `run_if`, a shell command run before a job starts. Exit 0 runs the job, any
other status skips it (a template's slot is recorded as skipped); a command that cannot be run
or outlasts its timeout fails the run instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from repowire.errors import ValidationError
from repowire.executors.preparation import environment, worker_folder
from repowire.record.job import Job
from repowire.runner.settings import LiveSettings
from repowire.store.config import Config
from repowire.store.records import Store
from repowire.times import parse_duration

__all__ = ["Verdict", "evaluate", "check", "DEFAULT_TIMEOUT", "Preconditions"]

DEFAULT_TIMEOUT = 30.0  # the runner waits for a precondition: keep it quick


@dataclass(frozen=True)
class Verdict:
    """What a precondition said: met (True), not met (False), or it could not say (None)."""

    met: bool | None
    reason: str


def evaluate(command: str, cwd: Path, env: dict[str, str], timeout: float) -> Verdict:
    """Run the command in its own process group; its status is the verdict."""
    try:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        return Verdict(None, f"run_if could not be run: {exc.strerror or exc}")
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return Verdict(None, f"run_if did not answer within {timeout:g}s")
    with contextlib.suppress(ProcessLookupError, PermissionError):  # it has answered: what
        os.killpg(proc.pid, signal.SIGKILL)  # it left running in the background ends with it
    if code == 0:
        return Verdict(True, "run_if exited 0")
    if code in (126, 127):
        return Verdict(None, f"run_if could not be run (exit status {code}: command not found)")
    return Verdict(False, f"run_if exited {code}")


def check(store: Store, config: Config, job: Job, last_success: str | None) -> Verdict:
    """A job's `run_if`, in its worker folder, with its environment and REPOWIRE_LAST_SUCCESS
    (when the job's template last succeeded; empty when it never did)."""
    try:
        cwd = worker_folder(store, config, job)
    except ValidationError as exc:
        return Verdict(None, str(exc))
    env = environment(store, job, None, False)
    env["REPOWIRE_LAST_SUCCESS"] = last_success or ""
    limit = DEFAULT_TIMEOUT if job.run_if_timeout is None else parse_duration(job.run_if_timeout)
    return evaluate(str(job.run_if), cwd, env, limit)


class Preconditions:
    """The `run_if` of jobs, run under the config the runner serves with at the time."""

    def __init__(self, store: Store, settings: LiveSettings) -> None:
        self.store, self.settings = store, settings

    def __call__(self, job: Job, last_success: str | None = None) -> Verdict:
        return check(self.store, self.settings.config, job, last_success)
