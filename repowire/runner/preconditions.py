"""Preconditions: `run_if`, a shell command run before a job starts. Exit 0 runs the job, any
other status skips it (a template's slot is recorded as skipped); a command that cannot be run
or outlasts its timeout fails the run instead. The runner runs them on threads of their own,
never on its loop: a slow one holds up only its own job (which waits queued), not the timeouts,
starts and stops of the others.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from repowire.errors import ValidationError
from repowire.executors.preparation import environment, worker_folder
from repowire.record.job import Job
from repowire.runner.settings import LiveSettings
from repowire.store.config import Config
from repowire.store.records import Store
from repowire.times import parse_duration

__all__ = ["Verdict", "evaluate", "check", "DEFAULT_TIMEOUT", "Preconditions", "RUNNING"]

RUNNING: set[subprocess.Popen[bytes]] = set()  # preconditions running now, ended at a stop
_LOCK = threading.Lock()

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
    with _LOCK:
        RUNNING.add(proc)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return Verdict(None, f"run_if did not answer within {timeout:g}s")
    finally:
        with _LOCK:
            RUNNING.discard(proc)
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
    """The `run_if` of jobs, each run on a thread of its own under the config the runner serves
    with at the time; `ask` answers None while one runs, and its verdict once it has answered."""

    def __init__(
        self, store: Store, settings: LiveSettings, wake: Callable[[], None] = lambda: None
    ) -> None:
        self.store, self.settings = store, settings
        self.wake = wake  # a verdict wakes the runner's loop to act on it
        self.pending: dict[Hashable, Future[Verdict]] = {}

    def ask(self, key: Hashable, job: Job, last_success: str | None = None) -> Verdict | None:
        """The verdict of the precondition named `key`: None while it runs (the first ask
        starts it), then its verdict, once (the key is forgotten)."""
        future = self.pending.get(key)
        if future is None:
            future = self.pending[key] = Future()
            threading.Thread(
                target=self._check,
                args=(future, job, last_success),
                daemon=True,
                name=f"repowire-run-if-{job.id}",
            ).start()
            return None
        if not future.done():
            return None
        del self.pending[key]
        return future.result()

    def _check(self, future: Future[Verdict], job: Job, last_success: str | None) -> None:
        try:
            verdict = check(self.store, self.settings.config, job, last_success)
        except Exception as exc:  # noqa: BLE001 - whatever it was, the job is told why
            verdict = Verdict(None, f"run_if could not be run: {exc}")
        future.set_result(verdict)
        self.wake()

    @property
    def busy(self) -> bool:
        return any(not future.done() for future in self.pending.values())

    def close(self) -> None:
        """End the preconditions still running (their jobs wait, queued, for the next runner)."""
        with _LOCK:
            running = list(RUNNING)
        for proc in running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
