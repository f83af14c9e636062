"""A runner you can see: its presence file, `repowire status`, and warnings where they help."""

from __future__ import annotations

import json
import signal
from datetime import timedelta

from conftest import rw, rw_process, wait_for
from runner_helpers import RunnerProcess, kill_executors, write_job

from repowire import clock
from repowire.executors.contract import HOST
from repowire.files import atomic_write, dump_yaml
from repowire.runner.presence import serving

NO_RUNNER = "no runner is serving this root; start one with 'repowire runner'"


def _status(root):
    done = rw_process("status", "--json", cwd=root)
    return done.returncode, json.loads(done.stdout)


def test_status_without_a_runner_exits_3_and_says_so(root):
    write_job(root, "a", command="true")
    (root / ".repowire/jobs/broken.yaml").write_text("retries: [\n")
    code, data = _status(root)
    assert code == 3 and data["served"] is False and data["runners"] == []
    assert data["trusted"] is True and data["counts"]["queued"] == 1
    assert data["invalid"][0]["path"] == ".repowire/jobs/broken.yaml"
    text = rw("status", ok=False)
    assert text.exit_code == 3 and NO_RUNNER in text.stdout


def test_a_serving_runner_is_seen_and_a_dead_one_told_apart(root):
    rw("jobs", "create", "nightly", "--cron", "@daily", "--command", "true")
    runner = RunnerProcess(root)
    try:
        write_job(root, "long", command="sleep 30")
        wait_for(lambda: _status(root)[1]["running"], what="the running job in status")
        code, data = _status(root)
        assert code == 0 and data["runners"][0]["pid"] == runner.proc.pid
        assert data["runners"][0]["host"] == HOST and data["next_fires"][0]["template"] == "nightly"
        human = rw("status").stdout
        assert f"pid {runner.proc.pid} on {HOST}" in human and "running  long" in human
        assert rw("jobs", "create", "b", "--command", "true").stderr == ""
        runner.stop(signal.SIGKILL)
        assert _status(root)[0] == 3  # the file is left, but its pid is gone
        assert len(list((root / ".repowire/locks/runners").iterdir())) == 1
        created = rw("jobs", "create", "c", "--command", "true")
        assert created.stderr.strip() == f"Warning: {NO_RUNNER}"
        second = RunnerProcess(root)
        second.stop()
        assert list((root / ".repowire/locks/runners").iterdir()) == []  # stale one removed
    finally:
        kill_executors(root)


def test_a_runner_on_another_host_is_judged_by_its_heartbeat(root):
    folder = root / ".repowire/locks/runners"
    folder.mkdir(parents=True)
    now = clock.now()
    record = {"pid": 7, "host": "elsewhere", "started_at": now, "version": "x"}
    atomic_write(folder / "elsewhere-7.yaml", dump_yaml({**record, "heartbeat": now}))
    assert [r.alive for r in serving(root, HOST)] == [True]
    old = now - timedelta(minutes=5)
    atomic_write(folder / "elsewhere-7.yaml", dump_yaml({**record, "heartbeat": old}))
    assert [r.alive for r in serving(root, HOST)] == [False]
    (folder / "half.yaml").write_text("pid: [\n")
    assert len(serving(root, HOST)) == 1  # a broken file is no runner


def test_warnings_where_they_help(root):
    job_id = rw("jobs", "create", "a", "--command", "true").stdout.strip()
    rw("jobs", "create", "tick", "--cron", "@daily", "--command", "true")
    for args in (["jobs", "run", "tick"], ["jobs", "wait", job_id, "--timeout", "0.1s"]):
        result = rw(*args, ok=False)
        assert f"Warning: {NO_RUNNER}" in result.stderr, args
    assert "Warning" not in rw("jobs", "cancel", job_id).stderr  # queued: canceled at once
    assert "Warning" not in rw("jobs", "list").stderr


def test_the_dashboard_says_whether_a_runner_serves(root):
    from dashboard_helpers import Dashboard

    board = Dashboard(root)
    try:
        assert board.client.get("/api/state").json()["runners"] == []
        before = board.client.get("/api/version").json()["version"]
        runner = RunnerProcess(root)
        try:
            wait_for(lambda: board.client.get("/api/state").json()["runners"], what="runner")
            assert board.client.get("/api/version").json()["version"] != before
        finally:
            runner.stop()
    finally:
        board.close()
