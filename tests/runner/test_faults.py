"""Faults and hostile files: each way the core's promises broke, reproduced with real files,
processes and locks, and held now (issue: twelve ways it breaks)."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psutil
import pytest
import yaml
from conftest import assert_clean_error, rw, rw_process, wait_for
from runner_helpers import RunnerProcess, kill_executors, read, run_once, state, write_job

from repowire import clock
from repowire.executors.contract import Launch, base_environment
from repowire.executors.local_processes import (
    Gate,
    LocalExecutor,
    SpawnClock,
    group_alive,
    process_identity,
    same_process,
)
from repowire.record.handle import Handle
from repowire.runner.loop import Runner
from repowire.runner.starter import Starter

BOMB = """\
name:
  - &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
  - &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  - &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  - &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  - &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  - &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  - &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
  - &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
  - &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
command: "true"
"""


def _limited(*args: str, cwd: Path, memory_mb: int = 600) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess whose address space is capped, with a deadline."""
    import resource

    def cap() -> None:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "repowire", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=cap,
    )


# --- high --------------------------------------------------------------------------------------


class _HoldLockAfterSpawn:
    """Right after an executor is spawned, another process holds the job's lock for a while,
    so the runner cannot write the executor's handle (as a full disk would refuse it)."""

    def __init__(self, root: Path, seconds: float) -> None:
        self.root, self.seconds = root, seconds
        self.holder: subprocess.Popen[str] | None = None

    def wrap(self, launch):  # type: ignore[no-untyped-def]
        def launched(starter: Starter, record, claim, session, now):  # type: ignore[no-untyped-def]
            result = launch(starter, record, claim, session, now)
            path = self.root / ".repowire/locks" / f"{record.id}.lock"
            code = (
                "import filelock, sys, time; lock = filelock.FileLock(sys.argv[1]); "
                "lock.acquire(); print('held', flush=True); time.sleep(float(sys.argv[2]))"
            )
            self.holder = subprocess.Popen(
                [sys.executable, "-c", code, str(path), str(self.seconds)],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self.holder.stdout is not None and self.holder.stdout.readline() == "held\n"
            return result

        return launched

    def close(self) -> None:
        if self.holder is not None:
            self.holder.wait(timeout=30)
            self.holder.stdout.close()  # type: ignore[union-attr]


@pytest.fixture
def held(root, monkeypatch):
    holder = _HoldLockAfterSpawn(root, 1.5)
    monkeypatch.setattr(Starter, "_launch", holder.wrap(Starter._launch))
    yield holder
    holder.close()
    kill_executors(root)


def test_a_handle_that_cannot_be_written_is_held_and_recorded_later(root, held):
    """(A run with a precondition is claimed, then started, then its handle recorded.)"""
    counter = root / "count"
    write_job(root, "once", command=f"echo ran >> {counter}; sleep 0.5", run_if="true")
    out = io.StringIO()
    runner = Runner(root, log=out)
    runner.store.lock_timeout = 0.2
    wait_for(lambda: runner.step() is not None and "once" in runner.supervisor.active)  # its
    assert "could not record pid" in out.getvalue()  # run_if answered off the loop, then this
    assert runner.supervisor.active["once"].recorded is False
    wait_for(lambda: runner.step() is not None and state(root, "once") == "succeeded", timeout=20)
    assert counter.read_text() == "ran\n"  # started once, finished once
    assert read(root, "once")["executor"]["pid"] > 0
    assert run_once(root) and counter.read_text() == "ran\n"  # a fresh runner runs it no more


def test_a_claim_that_cannot_be_written_runs_nothing(root, monkeypatch):
    """A local run is claimed and recorded in one write, its wrapper waiting until that write
    is durable: when the write fails (a full disk), the wrapper ends without running the
    command, and the job is still queued for a later step, which runs it once."""
    counter = root / "count"
    write_job(root, "once", command=f"echo ran >> {counter}")
    out = io.StringIO()
    runner = Runner(root, log=out)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", full)
        runner.step()
    assert "No space left on device" in out.getvalue() and state(root, "once") == "queued"
    local = runner.supervisor.executors["local"]
    for proc in local.children.values():  # type: ignore[attr-defined]
        proc.wait(timeout=15)  # the wrapper that was never told to go has ended
    assert not counter.exists() and not (root / ".repowire/jobs/once.exit").exists()
    wait_for(lambda: runner.step() is not None and state(root, "once") == "succeeded")
    assert counter.read_text() == "ran\n"


def test_a_gated_wrapper_runs_only_when_told_or_named_by_its_record(tmp_path):
    """The runner says go once the record naming the wrapper is durable; if it stops before
    saying it, the wrapper runs the command only if the record names it as running."""
    local, record = LocalExecutor(), tmp_path / "record.yaml"
    record.write_text("state: queued\n")

    def start(name: str) -> tuple[int, Gate]:
        marker = tmp_path / name
        argv = ["/bin/sh", "-c", f"echo ran > {marker}"]
        log, exit_file = tmp_path / f"{name}.log", tmp_path / f"{name}.exit"
        launch = Launch(name, argv, tmp_path, base_environment(), log, exit_file)
        handle, gate = local.start_gated(launch, Handle(kind="local"), record)
        assert handle.pid and not marker.exists()
        assert handle.start_time == process_identity(handle.pid)
        return handle.pid, gate

    def ended(pid: int) -> int:
        return local.children[pid].wait(timeout=15)

    told, gate = start("told")
    gate.open()
    assert ended(told) == 0 and (tmp_path / "told").exists()
    unnamed, gate = start("unnamed")
    gate.close()  # the runner stopped before its write: the record does not name it
    assert ended(unnamed) == -signal.SIGKILL and not (tmp_path / "unnamed").exists()
    assert not (tmp_path / "unnamed.exit").exists()
    named, gate = start("named")
    record.write_text(f"state: running\nexecutor:\n  kind: local\n  pid: {named}\n")
    gate.close()  # the runner stopped after its write, before its word
    assert ended(named) == 0 and (tmp_path / "named").exists()
    assert (tmp_path / "named.exit").read_text() == "0\n"

    indented, gate = start("indented")  # however the record is indented, it names the pid
    record.write_text(f"state: running\nexecutor:\n    kind: local\n    pid: {indented}\n")
    gate.close()
    assert ended(indented) == 0 and (tmp_path / "indented").exists()


def test_a_spawned_process_start_time_is_what_proc_gives(monkeypatch):
    """The executor takes a child's start time from the clock ticks between two readings
    around its spawn (no read of /proc while it execs): it must be what psutil reads, since
    a later runner tells the process from one that reused its pid by it."""
    clock = SpawnClock()
    children = []
    try:
        for _ in range(40):
            before = clock.now()
            child = subprocess.Popen(["/bin/sh", "-c", "read x"], stdin=subprocess.PIPE)
            after = clock.now()
            children.append(child)
            assert clock.identity(child.pid, before, after) == process_identity(child.pid)
            assert same_process(child.pid, clock.identity(child.pid, before, after))
        assert clock.ticks or sys.platform != "linux"  # Linux counts in ticks: predicted there
        assert clock.agrees is (True if clock.ticks else None)  # read at the first, then known
        a_tick = 10**9 // clock.ticks if clock.ticks else 1
        far = clock.identity(children[0].pid, before - a_tick, after)  # a tick began meanwhile
        assert far == process_identity(children[0].pid)
        wrong, boot_time = SpawnClock(), psutil.boot_time
        monkeypatch.setattr(psutil, "boot_time", lambda: boot_time() + 1)  # counts otherwise
        before = wrong.now()
        child = subprocess.Popen(["/bin/sh", "-c", "read x"], stdin=subprocess.PIPE)
        after = wrong.now()
        children.append(child)
        for _ in range(2):
            assert wrong.identity(child.pid, before, after) == process_identity(child.pid)
        assert wrong.agrees is not True
    finally:
        for child in children:
            child.communicate(b"\n", timeout=15)


def test_a_cancel_while_the_handle_is_unwritten_still_releases_the_executor(root, held):
    write_job(root, "long", command="sleep 60", run_if="true")
    runner = Runner(root, log=io.StringIO())
    runner.store.lock_timeout = 0.2
    wait_for(lambda: runner.step() is not None and "long" in runner.supervisor.active)
    pid = runner.supervisor.active["long"].handle.pgid
    assert pid and group_alive(pid)
    held.close()  # the lock is free again; a person cancels
    rw("jobs", "cancel", "long")
    wait_for(lambda: runner.step() is not None and not group_alive(pid), what="the release")
    record = read(root, "long")
    assert record["state"] == "canceled" and record["executor"]["pid"] == pid


def test_a_record_cannot_grow_past_what_can_be_read(root):
    job_id = rw("jobs", "create", "A", "--command", "echo done").stdout.strip()
    note = "x" * 120_000
    refused = None
    for _ in range(9):
        result = rw("jobs", "update", job_id, "--note", note, ok=False)
        if result.exit_code:
            refused = result
            break
    assert refused is not None
    assert_clean_error(refused, says="would grow past 512 KiB")
    size = (root / f".repowire/jobs/{job_id}.yaml").stat().st_size
    assert size < 512 * 1024
    run_once(root)
    assert state(root, job_id) == "succeeded"  # the runner still records its outcome


def test_an_alias_bomb_costs_little_anywhere(root):
    (root / ".repowire/jobs/bomb.yaml").write_text(BOMB)
    write_job(root, "fine", command="echo fine")
    started = time.monotonic()
    for args in (["validate"], ["jobs", "list"], ["jobs", "list", "--json"], ["runner", "--once"]):
        done = _limited(*args, cwd=root)
        assert "MemoryError" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert time.monotonic() - started < 50
    listing = json.loads(_limited("jobs", "list", "--json", cwd=root).stdout)
    bomb = next(j for j in listing["jobs"] if j["id"] == "bomb")
    assert bomb["state"] == "invalid" and "aliases" in bomb["error"] and len(bomb["error"]) < 300
    assert state(root, "fine") == "succeeded"


CRASHERS = {
    "year1": {"command": "true", "due_at": "0001-01-01T00:00:00+05:00"},
    "year9999": {"command": "true", "due_at": "9999-12-31T23:00:00-05:00"},
    "note-year1": {"command": "true", "notes": [{"at": "0001-01-01T00:00:00+05:00", "text": "x"}]},
    "nul-command": {"command": "echo a\0b"},
    "nul-env": {"command": "true", "env": {"A": "b\0c"}},
    "pid-text": {"command": "true", "state": "running", "executor": {"pid": "abc"}},
}


def test_files_that_crashed_the_runner_are_invalid_and_the_rest_is_served(root):
    for job_id, keys in CRASHERS.items():
        write_job(root, job_id, **keys)
    (root / "prompt.txt").write_bytes(b"\xff\xfe not utf-8")
    write_job(root, "bad-prompt", backend="claude", prompt_file="prompt.txt")
    write_job(root, "fine", command="echo fine")
    done = rw_process("runner", "--once", cwd=root, timeout=60)
    assert "Traceback" not in done.stderr, done.stderr
    assert state(root, "fine") == "succeeded"
    record = read(root, "bad-prompt")
    assert record["state"] == "failed" and "not UTF-8" in record["error"]
    problems = rw("validate", ok=False).stderr
    for job_id in CRASHERS:
        assert f"{job_id}.yaml" in problems, (job_id, problems)
    listing = json.loads(rw("jobs", "list", "--json").stdout)
    states = {j["id"]: j["state"] for j in listing["jobs"]}
    assert all(states[job_id] == "invalid" for job_id in CRASHERS), states
    for args in (["jobs", "show", "year1"], ["jobs", "status", "nul-env"]):
        assert_clean_error(rw(*args, ok=False))
    assert_clean_error(
        rw("jobs", "create", "far", "--command", "true", "--due-at", "9999999d", ok=False),
        says="ten years",
    )


def test_a_broken_state_yaml_or_exit_file_never_stops_the_runner(root):
    folder = root / ".repowire/agents/tick"
    folder.mkdir(parents=True)
    (folder / "job.yaml").write_text("cron: '@daily'\ncommand: 'true'\n")
    for text in ("skipped_total: lots\n", "skipped: 7\n", "last_slot: 0001-01-01T00:00:00+05:00\n"):
        (folder / "state.yaml").write_text(text)
        run_id = rw("jobs", "run", "tick").stdout.strip()
        log = run_once(root)
        assert "Traceback" not in log and state(root, run_id) == "succeeded", log
        time.sleep(1.05)  # the next manual run gets its own second
    write_job(
        root,
        "garbled",
        command="sleep 0.2",
        state="running",
        attempt=1,
        executor={
            "kind": "local",
            "pid": 999999,
            "pgid": 999999,
            "start_time": 1.0,
            "host": os.uname().nodename,
        },
    )
    (root / ".repowire/jobs/garbled.exit").write_bytes(b"\xff\xfe")
    assert "Traceback" not in run_once(root)
    assert state(root, "garbled") == "failed"


# --- medium ------------------------------------------------------------------------------------


def test_a_fifo_or_a_folder_at_a_records_name_stops_nothing(root):
    os.mkfifo(root / ".repowire/jobs/f.yaml")
    (root / ".repowire/jobs/d.yaml").mkdir()
    (root / "pipe.txt").parent.mkdir(exist_ok=True)
    os.mkfifo(root / "pipe.txt")
    write_job(root, "piped", backend="claude", prompt_file="pipe.txt")
    write_job(root, "fine", command="echo fine")
    for args in (["jobs", "list", "--json"], ["validate"], ["runner", "--once"]):
        done = rw_process(*args, cwd=root, timeout=30)
        assert "Traceback" not in done.stderr, done.stderr
    listing = json.loads(rw_process("jobs", "list", "--json", cwd=root).stdout)
    states = {j["id"]: j["state"] for j in listing["jobs"]}
    assert states["f"] == "invalid" and states["d"] == "invalid" and states["fine"] == "succeeded"
    assert state(root, "piped") == "failed" and "regular file" in read(root, "piped")["error"]


def test_a_file_named_by_no_valid_id_is_listed_as_invalid_and_stops_nothing(root):
    """A record file whose name is not an id (a space, a leading dot-dash) once made every
    listing and the runner stop with 'not a valid job id'."""
    for name in ("we ird", "-dash", "a" * 129):
        (root / f".repowire/jobs/{name}.yaml").write_text("command: 'true'\n")
    write_job(root, "fine", command="echo fine")
    done = rw_process("runner", "--once", cwd=root, timeout=60)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert state(root, "fine") == "succeeded"
    for limit in ([], ["--limit", "10"]):
        listing = json.loads(rw("jobs", "list", "--json", *limit).stdout)
        found = {j["id"]: j for j in listing["jobs"]}
        assert found["we ird"]["state"] == "invalid" and "rename it" in found["we ird"]["error"]
        assert found["-dash"]["state"] == found["a" * 129]["state"] == "invalid"
    assert "we ird.yaml" in rw("validate", ok=False).stderr
    assert_clean_error(rw("jobs", "show", "we ird", ok=False))


@pytest.mark.parametrize("folder", ["cache", "jobs", "locks", "agents"])
def test_linked_runtime_folders_are_refused(root, tmp_path, folder):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "index.json").write_text("precious")
    target = root / ".repowire" / folder
    if target.exists():
        os.rename(target, tmp_path / f"old-{folder}")
    target.symlink_to(elsewhere)
    assert_clean_error(rw("jobs", "list", ok=False), says="symbolic link")
    assert_clean_error(
        rw("jobs", "create", "A", "--command", "true", ok=False), says="symbolic link"
    )
    assert (elsewhere / "index.json").read_text() == "precious"
    assert sorted(p.name for p in elsewhere.iterdir()) == ["index.json"]


def test_a_last_slot_in_the_future_is_clamped_to_now(root):
    from repowire.runner.scheduling import Scheduler
    from repowire.store.records import Store

    folder = root / ".repowire/agents/minutely"
    folder.mkdir(parents=True)
    (folder / "job.yaml").write_text("cron: '* * * * *'\ncommand: 'true'\n")
    now = datetime(2026, 11, 26, 9, 0, 30, tzinfo=timezone.utc)
    ahead = now + timedelta(days=365)
    (folder / "state.yaml").write_text(
        f"last_slot: {ahead.isoformat()}\nfirst_seen: {ahead.isoformat()}\n"
    )
    lines: list[str] = []
    store = Store(root)
    scheduler = Scheduler(store, lines.append)
    scheduler.step({}, now)
    assert any("lies in the future" in line for line in lines)
    _, fired = scheduler.step({}, now + timedelta(minutes=1))
    assert fired and (root / ".repowire/jobs/minutely-20261126T090100Z.yaml").exists()


def test_terminal_escapes_are_shown_escaped_in_human_output(root, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # wide enough that the list shows the name whole
    hostile = "evil\x1b]0;owned\x07\x1b[2J\u202eabc"
    job_id = rw(
        "jobs", "create", hostile, "--command", "printf '\\033]52;c;aGk=\\007done'"
    ).stdout.strip()
    run_once(root)
    for args in (["jobs", "list"], ["jobs", "show", job_id], ["jobs", "result", job_id]):
        out = rw(*args).stdout
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out, args
    assert "\\x1b]0;owned" in rw("jobs", "list").stdout
    assert json.loads(rw("jobs", "show", job_id, "--json").stdout)["name"] == hostile


# --- low ---------------------------------------------------------------------------------------


def test_catch_up_after_a_long_outage_looks_at_the_newest_slots_only(root):
    from repowire.runner.scheduling import Scheduler
    from repowire.store.records import Store

    folder = root / ".repowire/agents/persecond"
    folder.mkdir(parents=True)
    (folder / "job.yaml").write_text("cron: '* * * * * *'\ncommand: 'true'\n")
    now = clock.now().replace(microsecond=0)
    down = now - timedelta(days=30)
    (folder / "state.yaml").write_text(
        f"last_slot: {down.isoformat()}\nfirst_seen: {down.isoformat()}\n"
    )
    started = time.monotonic()
    _, fired = Scheduler(Store(root), lambda line: None).step({}, now)
    assert time.monotonic() - started < 15  # a walk over 2.6 million slots took about a minute
    state_text = yaml.safe_load((folder / "state.yaml").read_text())
    assert fired and "more than 1000 slots missed" in state_text["skipped"][0]["reason"]


def test_a_full_disk_names_the_file_and_leaves_no_worker_folder(root, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", full)
        result = rw("agents", "create", "w", "--cron", "@daily", "--command", "true", ok=False)
    assert_clean_error(result, says="No space left on device")
    assert "AGENTS.md" in result.stderr or "job.yaml" in result.stderr
    assert not (root / ".repowire/agents/w").exists()
    rw("agents", "create", "w", "--cron", "@daily", "--command", "true")


def test_the_watcher_re_arms_when_jobs_is_replaced(root):
    import shutil

    runner = RunnerProcess(root)
    try:
        shutil.rmtree(root / ".repowire/jobs")
        wait_for(lambda: "restarting it" in runner.output(), what="the watcher's restart")
        (root / ".repowire/jobs").mkdir(exist_ok=True)
        write_job(root, "after", command="true")
        wait_for(lambda: state(root, "after") == "succeeded", timeout=10, what="a woken runner")
    finally:
        runner.stop()


def test_edges_give_sentences(root):
    done = subprocess.run(
        [
            sys.executable.encode(),
            b"-m",
            b"repowire",
            b"jobs",
            b"create",
            b"\xff",
            b"--command",
            b"true",
        ],
        cwd=root,
        capture_output=True,
    )
    assert done.returncode == 1 and b"Traceback" not in done.stderr and b"UTF-8" in done.stderr
    (root / ".repowire/locks/locked.lock").symlink_to(root / "nowhere")
    write_job(root, "locked", command="true")
    done = rw_process("runner", "--once", cwd=root)
    assert done.returncode == 1 and "could not be served (locked)" in done.stderr


def test_a_record_broken_by_hand_while_it_runs_still_times_out(root):
    write_job(root, "edited", command="sleep 60", timeout="10m")
    runner = Runner(root, log=io.StringIO())
    start = clock.now()
    runner.step(start)
    pgid = read(root, "edited")["executor"]["pgid"]
    (root / ".repowire/jobs/edited.yaml").write_text("state: [broken\n")
    runner.step(start + timedelta(minutes=10, seconds=1))
    wait_for(
        lambda: runner.step(start + timedelta(minutes=11)) is not None and not group_alive(pgid)
    )


def test_dashboard_log_offset_that_is_not_a_number(root):
    from dashboard_helpers import Dashboard

    job_id = rw("jobs", "create", "A", "--command", "true").stdout.strip()
    board = Dashboard(root)
    try:
        answer = board.client.get(f"/api/jobs/{job_id}/log", params={"offset": "abc"})
        assert answer.status_code == 400 and "whole number" in answer.json()["error"]
    finally:
        board.close()


def test_mcp_errors_always_say_why(root):
    from mcp_helpers import error_text, run_session

    async def body(session):  # type: ignore[no-untyped-def]
        nul = await session.call_tool("job_create", {"name": "x", "command": "echo \u0000"})
        return error_text(nul)

    assert "NUL byte" in run_session(root, body)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MiB tmpfs, mounted for the test (root only; skipped where mounting is refused)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def test_a_real_full_disk(tiny_disk):
    assert rw_process("init", cwd=tiny_disk).returncode == 0
    job_id = rw_process("jobs", "create", "A", "--command", "echo hi", cwd=tiny_disk).stdout.strip()
    filler = _fill(tiny_disk)

    done = rw_process("runner", "--once", cwd=tiny_disk)
    assert done.returncode == 1 and "No space left on device" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and state(tiny_disk, job_id) == "queued"
    made = rw_process(
        "agents", "create", "w", "--cron", "@daily", "--command", "true", cwd=tiny_disk
    )
    assert made.returncode == 1 and "No space left on device" in made.stderr
    assert ".repowire/agents" in made.stderr and not (tiny_disk / ".repowire/agents/w").exists()

    filler.unlink()
    assert rw_process("runner", "--once", cwd=tiny_disk).returncode == 0
    assert state(tiny_disk, job_id) == "succeeded"
