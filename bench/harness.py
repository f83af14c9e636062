"""Shared pieces of the benchmark suite: scratch roots, a runner process, statistics."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PYTHON = sys.executable


def summary(values: list[float]) -> dict[str, float]:
    """Median, p99 and spread (min, max) of a sample."""
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return {
        "n": len(values),
        "p50": statistics.median(ordered),
        "p99": p99,
        "min": ordered[0],
        "max": ordered[-1],
    }


_LEFT: list[Path] = []  # scratch folders, removed when the suite ends


def scratch_folder(prefix: str = "repowire-bench-") -> Path:
    """A temp folder removed when the suite ends, not when its workload does. On ext4 without
    a journal (this machine's disk), a new file's inode is placed past every inode freed in
    the last minute (six while its inode table is not yet written back), each looked at:
    deleting one workload's 100,000 records made every file the next workloads (and the
    peers) created cost up to a millisecond of CPU. (Each workload starts after a sync, so what
    the last one wrote is not being written back meanwhile.) Runs of the suite that follow one
    another within minutes still meet the files the last one removed."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    _LEFT.append(path)
    return path


@atexit.register
def _remove_scratch() -> None:
    for path in _LEFT:
        shutil.rmtree(path, ignore_errors=True)
    os.sync()  # the inode table written back: the freed inodes are passed over for a minute only


@contextmanager
def scratch_root(config: str = "") -> Iterator[Path]:
    """A trusted root in a temp folder, with its own trust store."""
    base = scratch_folder()
    root = base / "root"
    root.mkdir()
    env_backup = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(base / "config")
    try:
        cli("init", root=root)
        if config:
            (root / ".repowire/config.yaml").write_text(config)
        yield root
    finally:
        if env_backup is None:
            os.environ.pop("XDG_CONFIG_HOME", None)
        else:
            os.environ["XDG_CONFIG_HOME"] = env_backup


def cli(*args: str, root: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "repowire", "--root", str(root), *args],
        capture_output=True,
        text=True,
        check=check,
    )


def drop(root: Path, job_id: str, text: str) -> float:
    """Write a job file by atomic rename, as an editor or script would; return the time."""
    jobs = root / ".repowire/jobs"
    tmp = jobs / f".drop-{job_id}"
    tmp.write_text(text)
    moment = time.time()
    os.replace(tmp, jobs / f"{job_id}.yaml")
    return moment


def wait_until(condition: Callable[[], Any], timeout: float, step: float = 0.001) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        time.sleep(step)


class Runner:
    """A `repowire runner` subprocess."""

    def __init__(self, root: Path, *args: str) -> None:
        self.log = root.parent / "runner.log"
        self.handle = open(self.log, "w")
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "repowire", "--root", str(root), "runner", *args],
            stdout=self.handle,
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: "serving" in self.log.read_text(), 60, 0.01)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.handle.close()


def record_text(command: str, state: str | None = None) -> str:
    body = f"command: {json.dumps(command)}\n"
    if state:
        body += (
            f"state: {state}\nattempt: 1\ncreated_at: 2026-11-26T00:00:00Z\n"
            "updated_at: 2026-11-26T00:00:01Z\nstarted_at: 2026-11-26T00:00:00Z\n"
            "finished_at: 2026-11-26T00:00:01Z\nexit_code: 0\nresult_summary: done\n"
            "notes:\n- at: 2026-11-26T00:00:00Z\n  text: started\n  state: running\n"
        )
    return body


def have(program: str) -> bool:
    return shutil.which(program) is not None
