"""A runner killed with SIGKILL again and again leaves every job run exactly once, and each
dependent job after the job it waits for."""

from __future__ import annotations

import random
import signal
import time

import pytest
from conftest import wait_for
from runner_helpers import (
    RunnerProcess,
    kill_executors,
    read,
    run_once,
    set_config,
    state,
    write_job,
)

pytestmark = pytest.mark.slow  # a long reliability suite: ./dev test -m 'not slow' leaves it out


def test_repeated_sigkill_runs_every_job_exactly_once(root):
    set_config(root, "kill_grace: 1s\nmax_concurrency: 4\n")
    runs = root / "runs"
    runs.mkdir()
    rng = random.Random(7)
    ids = [f"c{n:02}" for n in range(24)]
    order = root / "order"
    for n, job_id in enumerate(ids):
        pause = rng.choice(["0", "0.05", "0.2", "0.5"])
        # each executor records its own run in a file of its own (append is atomic per line),
        # and every third job waits for the one before it
        after = {"after": [ids[n - 1]]} if n % 3 == 2 else {}
        command = f"echo $$ >> {runs}/{job_id}; sleep {pause}; echo {job_id} >> {order}"
        write_job(root, job_id, command=command, **after)
    try:
        for _ in range(6):
            proc = RunnerProcess(root)
            time.sleep(rng.uniform(0.05, 0.6))  # a random moment: mid-claim, mid-spawn, mid-run
            proc.stop(signal.SIGKILL)
        run_once(root)
    finally:
        kill_executors(root)
    wait_for(lambda: all(state(root, j) in ("succeeded", "failed") for j in ids), what="all end")
    for job_id in ids:
        record = read(root, job_id)
        assert record["state"] == "succeeded", (job_id, record)
        assert len((runs / job_id).read_text().split()) == 1, job_id
    assert not list((root / ".repowire/jobs").glob("*.exit"))
    finished = order.read_text().split()
    for n, job_id in enumerate(ids):
        if n % 3 == 2:  # a dependent ran after the job it waits for had finished
            assert finished.index(ids[n - 1]) < finished.index(job_id), (job_id, finished)
