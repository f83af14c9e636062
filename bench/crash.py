"""The crash loop at scale: 1,000 jobs, a runner SIGKILLed 200 times at random instants, for
several seeds; every job must run exactly once and none be left running. Run it with
`python -m bench --only crash` (it is not part of the test run; a smaller variant is,
tests/test_crash.py)."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path
from typing import Any

import yaml

from .harness import Runner, cli, drop, record_text, scratch_root

__all__ = ["crash_loop"]


def _jobs(root: Path, count: int, chance: random.Random) -> list[str]:
    runs = root.parent / "runs"
    runs.mkdir(exist_ok=True)
    ids = []
    for n in range(count):
        job_id = f"k{n:04}"
        pause = chance.choice(["0", "0", "0", "0.01", "0.05", "0.2"])
        drop(root, job_id, record_text(f"echo $$ >> {runs}/{job_id}; sleep {pause}"))
        ids.append(job_id)
    return ids


def _check(root: Path, ids: list[str]) -> dict[str, int]:
    """Jobs not succeeded, jobs run other than once, leftover exit files."""
    runs = root.parent / "runs"
    not_done = ran_twice = never = 0
    for job_id in ids:
        record = yaml.safe_load((root / f".repowire/jobs/{job_id}.yaml").read_text())
        not_done += record.get("state") != "succeeded"
        path = runs / job_id
        count = len(path.read_text().split()) if path.exists() else 0
        ran_twice += count > 1
        never += count == 0
    exits = len(list((root / ".repowire/jobs").glob("*.exit")))
    return {
        "not_succeeded": not_done,
        "ran_more_than_once": ran_twice,
        "never_ran": never,
        "exit_files_left": exits,
    }


def _one_seed(seed: int, count: int, kills: int) -> dict[str, Any]:
    chance = random.Random(seed)
    with scratch_root("max_concurrency: 4\nkill_grace: 1s\n") as root:
        ids = _jobs(root, count, chance)
        started = time.monotonic()
        for _ in range(kills):
            runner = Runner(root)
            time.sleep(chance.uniform(0.0, 0.3))  # mid-claim, mid-spawn, mid-record, mid-run
            runner.proc.send_signal(signal.SIGKILL)
            runner.proc.wait(timeout=30)
            runner.handle.close()
        cli("runner", "--once", root=root)
        elapsed = time.monotonic() - started
        return {
            "seed": seed,
            "jobs": count,
            "kills": kills,
            "seconds": round(elapsed, 1),
            **_check(root, ids),
        }


def crash_loop(
    count: int = 1000, kills: int = 200, seeds: tuple[int, ...] = (1, 2, 3)
) -> dict[str, Any]:
    """Each seed's figures; every violation count must be 0."""
    return {"runs": [_one_seed(seed, count, kills) for seed in seeds]}
