"""Reliability suites: a crash loop, contention, injected write faults and hostile files.

Figures (jobs, kills, writers, faults) are module constants; docs/reliability.md quotes them.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml
from conftest import assert_clean_error, rw, wait_for
from runner_helpers import (
    RunnerProcess,
    kill_executors,
    read,
    run_once,
    set_config,
    state,
    write_job,
)

from repowire.api import library as api
from repowire.record.states import TRANSITIONS, State
from repowire.store.config import is_trusted

pytestmark = pytest.mark.slow  # a long reliability suite: ./dev test -m 'not slow' leaves it out

CRASH_JOBS = 200
CRASH_KILLS = 12
WRITERS = 16
WRITER_OPS = 25


def test_crash_loop_runs_every_job_and_slot_exactly_once(root):
    set_config(root, "kill_grace: 1s\nmax_concurrency: 8\n")
    runs = root / "runs"
    runs.mkdir()
    rng = random.Random(20261126)
    ids = [f"c{n:03}" for n in range(CRASH_JOBS)]
    for job_id in ids:
        pause = rng.choice(["0", "0.02", "0.1", "0.3"])
        write_job(root, job_id, command=f"echo $$ >> {runs}/$REPOWIRE_JOB_ID; sleep {pause}")
    tick = root / ".repowire/agents/tick"
    tick.mkdir(parents=True)
    (tick / "job.yaml").write_text(
        f"cron: '* * * * * *'\ncommand: echo $$ >> {runs}/$REPOWIRE_JOB_ID\noverlap: allow\n"
    )
    try:
        for _ in range(CRASH_KILLS):
            proc = RunnerProcess(root)
            time.sleep(rng.uniform(0.05, 0.8))  # mid-claim, mid-spawn, mid-finish: anywhere
            proc.stop(signal.SIGKILL)
        (tick / "job.yaml").write_text((tick / "job.yaml").read_text() + "enabled: false\n")
        final = RunnerProcess(root)
        wait_for(
            lambda: all(state(root, j) == "succeeded" for j in ids),
            timeout=120,
            what="every job to finish",
        )
        wait_for(
            lambda: (
                not any(
                    state(root, p.stem) in ("queued", "running")
                    for p in (root / ".repowire/jobs").glob("tick-*.yaml")
                )
            ),
            timeout=30,
            what="every tick run to finish",
        )
        final.stop()
    finally:
        kill_executors(root)
    for job_id in ids:
        assert len((runs / job_id).read_text().split()) == 1, job_id
    ticks = sorted(p.stem for p in (root / ".repowire/jobs").glob("tick-*.yaml"))
    assert ticks, "the per-second template never fired"
    slots = [read(root, t)["scheduled_for"] for t in ticks]
    assert len(slots) == len(set(slots))
    for run_id in ticks:
        record = read(root, run_id)
        assert record["state"] == "succeeded", record
        assert len((runs / run_id).read_text().split()) == 1, run_id
    assert not list((root / ".repowire/jobs").glob("*.exit"))


WRITER = r"""
import json, random, sys
from pathlib import Path
from repowire.api import library as api
from repowire.errors import RepowireError
root, who, ops, ids = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4].split(",")
rng = random.Random(who)
done = []
for n in range(ops):
    job_id = rng.choice(ids)
    action = rng.choice(["note", "note", "cancel", "retry", "running"])
    try:
        if action == "note":
            api.add_note(root, job_id, f"{who}-{n}")
            done.append(f"{who}-{n}")
        elif action == "cancel":
            api.cancel(root, job_id, f"{who}-{n}")
        elif action == "retry":
            api.retry(root, job_id)
        else:
            api.update_job(root, job_id, state="running")
    except RepowireError:
        pass  # refused: the state was not right for it
print(json.dumps(done))
"""


def _legal_history(notes: list[dict]) -> bool:
    current = State.QUEUED
    for note in notes:
        if not note.get("state"):
            continue
        new = State(note["state"])
        if new != current and (current, new) not in TRANSITIONS:
            return False
        current = new
    return True


def test_contention_loses_no_update_and_applies_no_refused_transition(root):
    set_config(root, "kill_grace: 1s\n")
    ids = [f"shared-{n}" for n in range(4)]
    for job_id in ids:
        rw("jobs", "create", job_id, "--command", "sleep 0.2", "--id", job_id)
    bad: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            for path in (root / ".repowire/jobs").glob("*.yaml"):
                try:
                    data = yaml.safe_load(path.read_text())
                except FileNotFoundError:
                    continue
                except yaml.YAMLError as exc:
                    bad.append(f"{path.name}: {exc}")
                if not isinstance(data, dict):
                    bad.append(f"{path.name}: {data!r}")

    watcher = threading.Thread(target=reader)
    watcher.start()
    runners = [RunnerProcess(root), RunnerProcess(root)]
    try:
        writers = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, str(root), f"w{n}", str(WRITER_OPS), ",".join(ids)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for n in range(WRITERS)
        ]
        written = []
        for proc in writers:
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0
            written += json.loads(out)
        wait_for(
            lambda: all(state(root, j) in ("succeeded", "failed", "canceled") for j in ids),
            timeout=60,
            what="the shared jobs to settle",
        )
    finally:
        stop.set()
        watcher.join()
        for runner in runners:
            runner.stop()
        kill_executors(root)
    assert bad == []
    notes = {n["text"] for j in ids for n in read(root, j)["notes"]}
    assert set(written) <= notes, sorted(set(written) - notes)[:5]
    for job_id in ids:
        assert _legal_history(read(root, job_id)["notes"]), read(root, job_id)["notes"]


FAULTS = [
    ("replace", errno.ENOSPC, "No space left on device"),  # a crash between temp file and rename
    ("fsync", errno.EIO, "Input/output error"),
    ("fsync", errno.ENOSPC, "No space left on device"),  # a full disk shows at the flush
]


@pytest.mark.parametrize("call, code, words", FAULTS)
def test_injected_write_fault_keeps_the_old_record(root, monkeypatch, call, code, words):
    job_id = rw("jobs", "create", "A", "--command", "true").stdout.strip()
    path = root / f".repowire/jobs/{job_id}.yaml"
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, call, broken)
    result = rw("jobs", "update", job_id, "--note", "never written", ok=False)
    monkeypatch.undo()
    assert_clean_error(result, says=words)
    assert len(result.stderr.strip().splitlines()) == 1
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    api.add_note(root, job_id, "the lock was released")  # would time out if it were not
    assert read(root, job_id)["notes"][-1]["text"] == "the lock was released"


def test_crash_between_temp_file_and_rename_is_cleaned_at_next_start(root):
    job_id = rw("jobs", "create", "A", "--command", "true").stdout.strip()
    path = root / f".repowire/jobs/{job_id}.yaml"
    leftover = path.parent / ".tmp-abc123"
    leftover.write_text("state: succeeded\n")
    old = time.time() - 3600
    os.utime(leftover, (old, old))
    young = path.parent / ".tmp-inflight"
    young.write_text("a writer at work")
    assert "removed .tmp-abc123" in run_once(root)
    assert not leftover.exists() and young.exists()  # a live writer's temp file is left alone
    young.unlink()
    assert read(root, job_id)["state"] == "succeeded"


def test_symlinks_planted_at_runtime_names_are_not_followed(root, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    jobs = root / ".repowire/jobs"
    (jobs / "logged.log").symlink_to(outside)
    write_job(root, "logged", command="echo overwrite")
    (root / ".repowire/locks/locked.lock").symlink_to(outside)
    write_job(root, "locked", command="echo hi")
    write_job(root, "result", command="true")
    (jobs / "result.result.md").symlink_to(outside)
    write_job(root, "exitname", command="true")
    (jobs / "exitname.exit").symlink_to(outside)  # an earlier status is removed, not followed
    run_once(root)
    assert outside.read_text() == "precious\n"
    assert state(root, "exitname") == "succeeded"
    assert state(root, "logged") == "failed" and "symbolic link" in read(root, "logged")["error"]
    assert state(root, "locked") == "queued"  # its lock cannot be taken: left for a person
    assert_clean_error(rw("jobs", "update", "locked", "--note", "x", ok=False), says="remove it")
    assert read(root, "result").get("result_summary") is None
    assert_clean_error(rw("jobs", "result", "result", ok=False), says="symbolic link")


def test_worker_folder_symlinked_out_of_the_root_is_refused(root, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "job.yaml").write_text("cron: '@daily'\ncommand: touch owned\n")
    (root / ".repowire/agents/sneaky").symlink_to(elsewhere)
    listing = json.loads(rw("jobs", "list", "--json").stdout)
    assert listing["templates"][0]["state"] == "invalid"
    assert_clean_error(rw("jobs", "run", "sneaky", ok=False), says="symbolic link")
    assert not (elsewhere / "owned").exists()


def test_a_fresh_clone_is_not_trusted(root, tmp_path):
    clone = tmp_path / "clone"
    (clone / ".repowire/jobs").mkdir(parents=True)
    (clone / ".repowire/jobs/evil.yaml").write_text("command: touch pwned\n")
    assert not is_trusted(clone)
    done = subprocess.run(
        [sys.executable, "-m", "repowire", "runner", "--once"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "repowire trust" in done.stderr
    assert "Traceback" not in done.stderr and not (clone / "pwned").exists()
