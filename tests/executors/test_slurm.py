"""The Slurm executor, through a real single-node Slurm (.ci/slurm-up starts one).

Skipped, with the reason, where no Slurm cluster answers (a laptop)."""

from __future__ import annotations

import signal
import subprocess

import pytest
from conftest import rw, wait_for
from runner_helpers import (
    RunnerProcess,
    kill_executors,
    read,
    run_once,
    set_config,
    state,
    write_job,
)
from slurm_helpers import cluster_up, in_queue, slurm_id_of

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not cluster_up(), reason="no Slurm cluster answers here (bash .ci/slurm-up starts one)"
    ),
]


@pytest.fixture
def cluster(root):
    set_config(root, "kill_grace: 2s\nslurm:\n  max_jobs: 4\n")
    yield root
    kill_executors(root)


def test_jobs_succeed_and_fail_with_their_exit_code(cluster):
    write_job(cluster, "ok", command="echo on $(hostname); echo done", executor="slurm")
    write_job(
        cluster,
        "three",
        command="exit 3",
        executor="slurm",
        slurm={"cpus": 1, "memory": "100M", "extra_args": ["--comment=repowire-test"]},
    )
    run_once(cluster)
    ok = read(cluster, "ok")
    assert ok["state"] == "succeeded" and ok["executor"]["kind"] == "slurm"
    assert ok["executor"]["slurm_job_id"] > 0 and ok["result_summary"] == "done"
    assert "on " in (cluster / ".repowire/jobs/ok.log").read_text()
    three = read(cluster, "three")
    assert three["state"] == "failed" and three["exit_code"] == 3
    assert three["error"] == "exit status 3"
    shown = subprocess.run(
        ["scontrol", "show", "job", "-o", str(three["executor"]["slurm_job_id"])],
        capture_output=True,
        text=True,
    ).stdout
    assert "Comment=repowire-test" in shown and "NumCPUs=1" in shown


def test_cancel_a_running_slurm_job(cluster):
    runner = RunnerProcess(cluster)
    try:
        write_job(cluster, "long", command="sleep 120", executor="slurm")
        wait_for(lambda: slurm_id_of(cluster, "long"), timeout=30, what="submission")
        slurm_id = slurm_id_of(cluster, "long")
        wait_for(lambda: state(cluster, "long") == "running", what="start")
        rw("jobs", "cancel", "long", "--reason", "not needed")
        wait_for(lambda: not in_queue(slurm_id), timeout=30, what="scancel")
        assert state(cluster, "long") == "canceled"
    finally:
        runner.stop()


def test_timeout_on_slurm(cluster):
    write_job(cluster, "slow", command="sleep 120", executor="slurm", timeout="3s")
    run_once(cluster)
    record = read(cluster, "slow")
    assert record["state"] == "failed" and record["error"] == "timed out after 3s"
    assert not in_queue(record["executor"]["slurm_job_id"])


def test_killed_by_the_scheduler_fails_with_slurms_reason(cluster):
    runner = RunnerProcess(cluster)
    try:
        write_job(cluster, "victim", command="sleep 120", executor="slurm")
        wait_for(lambda: slurm_id_of(cluster, "victim"), timeout=30, what="submission")
        slurm_id = slurm_id_of(cluster, "victim")
        subprocess.run(["scancel", str(slurm_id)], check=True)  # as an admin or preemption would
        wait_for(lambda: state(cluster, "victim") == "failed", timeout=30, what="the failure")
        assert f"slurm job {slurm_id} ended CANCELLED" in read(cluster, "victim")["error"]
    finally:
        runner.stop()


def test_template_fires_onto_slurm(cluster):
    folder = cluster / ".repowire/agents/nightly"
    folder.mkdir(parents=True)
    (folder / "job.yaml").write_text(
        "cron: '@daily'\ncommand: echo from the template\nexecutor: slurm\nslurm:\n  cpus: 1\n"
    )
    run_id = rw("jobs", "run", "nightly").stdout.strip()
    run_once(cluster)
    record = read(cluster, run_id)
    assert record["state"] == "succeeded" and record["executor"]["kind"] == "slurm"
    assert record["result_summary"] == "from the template"


def test_runner_killed_while_a_slurm_job_runs_adopts_it(cluster):
    marker, counter = cluster / "go", cluster / "count"
    first = RunnerProcess(cluster)
    write_job(
        cluster,
        "survivor",
        executor="slurm",
        command=f"echo run >> {counter}; while [ ! -f {marker} ]; do sleep 0.2; done",
    )
    wait_for(lambda: slurm_id_of(cluster, "survivor"), timeout=30, what="submission")
    wait_for(lambda: counter.exists(), timeout=30, what="the job to start on the node")
    first.stop(signal.SIGKILL)
    second = RunnerProcess(cluster)
    try:
        wait_for(lambda: "adopted survivor" in second.output(), timeout=30, what="adoption")
        marker.touch()
        wait_for(lambda: state(cluster, "survivor") == "succeeded", timeout=60, what="finish")
        assert counter.read_text() == "run\n"
    finally:
        second.stop()
