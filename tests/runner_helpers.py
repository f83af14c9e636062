"""Helpers for runner tests: jobs written by hand, a runner in-process or as a subprocess."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from conftest import wait_for

from repowire.runner.loop import Runner
from repowire.runner.table import JobTable
from repowire.store.records import Store


def write_job(root: Path, job_id: str, **keys: Any) -> Path:
    path = root / ".repowire" / "jobs" / f"{job_id}.yaml"
    tmp = path.with_name(f".tmp-{job_id}")
    tmp.write_text(yaml.safe_dump(keys, sort_keys=False))
    os.replace(tmp, path)  # dropped in whole, as an editor's atomic save would
    return path


def read(root: Path, job_id: str) -> dict[str, Any]:
    return yaml.safe_load((root / ".repowire" / "jobs" / f"{job_id}.yaml").read_text())


def state(root: Path, job_id: str) -> str:
    try:
        return str(read(root, job_id).get("state", "queued"))
    except (FileNotFoundError, yaml.YAMLError):
        return "?"


def set_config(root: Path, text: str) -> None:
    (root / ".repowire" / "config.yaml").write_text(text)


def run_once(root: Path, **options: Any) -> str:
    """`runner --once` in-process; returns its log."""
    out = io.StringIO()
    Runner(root, log=out, **options).run(once=True)
    return out.getvalue()


class RunnerProcess:
    """A real `repowire runner` subprocess, stopped (and its executors killed) at the end."""

    def __init__(self, root: Path, *args: str) -> None:
        self.root = root
        self.log_path = root / f"runner-{os.getpid()}-{id(self)}.log"
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "repowire", "runner", *args],
            cwd=root,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: "serving" in self.log_path.read_text(), what="runner start")

    def output(self) -> str:
        return self.log_path.read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=15)
        self.log_file.close()
        return code


def kill_executors(root: Path) -> None:
    """Kill every executor group (or Slurm job) recorded under root (test cleanup)."""
    store = Store(root)
    for item in JobTable(store).jobs().values():
        handle = getattr(item, "handle", None)
        if handle is None:
            continue
        if handle.slurm_job_id:
            subprocess.run(["scancel", str(handle.slurm_job_id)], capture_output=True)
        elif handle.pgid:
            try:
                os.killpg(handle.pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def in_process_runner(root: Path) -> tuple[Runner, io.StringIO]:
    """A Runner of root in this process, stepped by the test; its log in a string."""
    out = io.StringIO()
    return Runner(root, log=out), out
