"""A copy of a root (git clone, cp -R) never adopts, waits on or signals the original's attempts.

Two real roots on one machine: the original's runner starts an executor; a copy taken while it
runs carries the `running` record; the copy's runner settles that record as lost, and the
original's process (or Slurm job) runs on untouched until its own runner ends it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import rw_process, wait_for
from runner_helpers import RunnerProcess, kill_executors, read, set_config, state, write_job
from slurm_helpers import cluster_up, in_queue, slurm_id_of

from repowire.executors.local_processes import group_alive

pytestmark = pytest.mark.slow  # a long reliability suite: ./dev test -m 'not slow' leaves it out

SMALL = {"memory": "64M", "cpus": 1}  # so two jobs fit the one-node test cluster at once
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]


def _pgid(root: Path, job_id: str) -> int | None:
    handle = read(root, job_id).get("executor")
    return handle.get("pgid") if isinstance(handle, dict) else None


def _clone(original: Path, copy: Path) -> None:
    """Commit the .repowire/ folder as a user would, then clone it."""
    subprocess.run(["git", "init", "-q"], cwd=original, check=True)
    subprocess.run(["git", "add", ".repowire"], cwd=original, check=True)
    subprocess.run([*GIT, "commit", "-qm", "wip"], cwd=original, check=True)
    subprocess.run(["git", "clone", "-q", str(original), str(copy)], check=True)


def _copy(kind: str, original: Path, copy: Path) -> None:
    if kind == "clone":
        _clone(original, copy)
    else:
        shutil.copytree(original, copy, symlinks=True)  # cp -R: runtime files come along
    assert rw_process("trust", cwd=copy).returncode == 0


@pytest.fixture
def original(root: Path):
    """A root whose runner is running `sleep 45` as job `longrun`; yields the root and its pgid."""
    set_config(root, "kill_grace: 1s\n")
    runner = RunnerProcess(root)
    write_job(root, "longrun", command="sleep 45")
    wait_for(lambda: _pgid(root, "longrun"), what="the original's executor")
    yield root, _pgid(root, "longrun")
    runner.stop()
    kill_executors(root)


@pytest.mark.parametrize("kind", ["clone", "cp"])
def test_a_copy_never_signals_the_originals_executor(original, tmp_path, kind):
    root, pgid = original
    copy = tmp_path / f"copy-{kind}"
    _copy(kind, root, copy)

    assert rw_process("jobs", "cancel", "longrun", cwd=copy).returncode == 0
    done = rw_process("runner", "--once", cwd=copy, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "SIGTERM" not in done.stderr
    assert group_alive(pgid) and state(root, "longrun") == "running"
    assert state(copy, "longrun") == "canceled"


@pytest.mark.parametrize("kind", ["clone", "cp"])
def test_a_copy_settles_the_copied_running_record_as_lost(original, tmp_path, kind):
    root, pgid = original
    copy = tmp_path / f"copy-{kind}"
    _copy(kind, root, copy)

    done = rw_process("runner", "--once", cwd=copy, timeout=30)  # does not wait 45 s on it
    assert done.returncode == 0, done.stderr
    record = read(copy, "longrun")
    assert record["state"] == "failed"
    assert record["error"] == f"executor lost: it was started for another root ({root})"
    assert "adopted" not in done.stderr and "not touched" in done.stderr
    assert group_alive(pgid) and state(root, "longrun") == "running"

    assert rw_process("jobs", "cancel", "longrun", cwd=root).returncode == 0
    wait_for(lambda: not group_alive(pgid), what="the original's own release")


def test_a_copied_claim_goes_back_to_the_queue_in_the_copy(root, tmp_path):
    """A claim whose runner (alive, on this host) belongs to the original is not waited on."""
    write_job(root, "claimed", command="echo ran in the copy")
    done = rw_process("runner", "--once", cwd=root)
    assert done.returncode == 0
    record = read(root, "claimed")
    handle = record["executor"]
    write_job(
        root,
        "claimed",
        command="echo ran in the copy",
        state="running",
        attempt=1,
        executor={k: handle[k] for k in ("kind", "runner", "host", "root", "root_token")},
    )
    copy = tmp_path / "copy"
    _copy("cp", root, copy)
    done = rw_process("runner", "--once", cwd=copy)
    assert done.returncode == 0, done.stderr
    record = read(copy, "claimed")
    assert record["state"] == "succeeded" and record["attempt"] == 1
    assert any("claimed by a runner of another root" in n["text"] for n in record["notes"])


@pytest.mark.skipif(not cluster_up(), reason="no Slurm cluster answers here")
def test_a_copy_never_touches_the_originals_slurm_job(root, tmp_path):
    set_config(root, "kill_grace: 2s\nslurm:\n  max_jobs: 4\n")
    runner = RunnerProcess(root)
    try:
        write_job(root, "remote", command="sleep 60", executor="slurm")
        wait_for(lambda: slurm_id_of(root, "remote"), timeout=30, what="the submission")
        slurm_id = slurm_id_of(root, "remote")
        copy = tmp_path / "copy"
        _copy("cp", root, copy)
        assert rw_process("jobs", "cancel", "remote", cwd=copy).returncode == 0
        write_job(copy, "remote2", command="sleep 60", executor="slurm", state="running")
        done = rw_process("runner", "--once", cwd=copy, timeout=60)
        assert done.returncode == 0, done.stderr
        assert in_queue(slurm_id) and state(root, "remote") == "running"
        assert state(copy, "remote") == "canceled"
    finally:
        runner.stop()
        kill_executors(root)


@pytest.mark.skipif(not cluster_up(), reason="no Slurm cluster answers here")
def test_a_copys_runner_does_not_find_the_originals_unrecorded_slurm_job(root, tmp_path):
    """Recovery finds a submitted-but-unrecorded Slurm job by name and root, not name alone."""
    set_config(root, "kill_grace: 2s\n")
    runner = RunnerProcess(root)
    try:
        write_job(root, "twin", command="sleep 60", executor="slurm", slurm=SMALL)
        wait_for(lambda: slurm_id_of(root, "twin"), timeout=30, what="the submission")
        slurm_id = slurm_id_of(root, "twin")
        copy = tmp_path / "copy"
        _copy("clone", root, copy)
        locks = copy / ".repowire/locks"
        locks.mkdir(exist_ok=True)
        (locks / "root.token").write_text("copy-token\n")
        claim = {  # the copy's own claim, by a runner of the copy that died mid-submit
            "kind": "slurm",
            "host": read(root, "twin")["executor"]["host"],
            "runner": f"{read(root, 'twin')['executor']['host']}:999997:1.0",
            "root": str(copy.resolve()),
            "root_token": "copy-token",
        }
        write_job(
            copy, "twin", command="true", executor=claim, slurm=SMALL, state="running", attempt=1
        )
        done = rw_process("runner", "--once", cwd=copy, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "adopted" not in done.stderr
        assert in_queue(slurm_id) and state(root, "twin") == "running"
        assert read(copy, "twin")["state"] == "succeeded"  # requeued and run in the copy
    finally:
        runner.stop()
        kill_executors(root)
