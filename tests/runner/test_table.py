"""A runner keeps only the state of finished one-off records it has nothing more to do for
(a long history costs it little), and still serves everything that depends on them."""

from __future__ import annotations

import io
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from conftest import rw, wait_for
from runner_helpers import RunnerProcess, read, set_config, state, write_job

from repowire.executors.contract import HOST
from repowire.executors.local_processes import group_alive
from repowire.record.states import State
from repowire.runner.loop import Runner
from repowire.store.records import Store

FILLERS = 70  # more than the table reads one by one, so they go through the index


def _finished(root: Path, count: int) -> list[str]:
    ids = [f"old-{n:03}" for n in range(count)]
    for job_id in ids:
        write_job(
            root,
            job_id,
            command="true",
            state="succeeded",
            created_at="2026-01-01T00:00:00Z",
            updated_at="2026-01-01T00:00:01Z",
            finished_at="2026-01-01T00:00:01Z",
        )
    return ids


def _indexed(root: Path, count: int) -> None:
    """Wait until a listing has put every record, as its file is now, in the index (a file
    is indexed once it has not changed for 50 ms)."""

    def held() -> bool:
        store = Store(root)
        store.list_rows()
        keys = {e[0]: e[1] for e in store.entries()}
        with store.index.session():
            rows, _gone = store.index.rows(keys)
        return len(rows) == len(keys) == count

    wait_for(held, what="an index of every record")


def _resting(runner: Runner) -> set[str]:
    return {i for i, (_key, item) in runner.table.objects.items() if isinstance(item, State)}


def test_finished_records_rest_and_still_answer_for_dependencies_and_edits(root):
    old = _finished(root, FILLERS)
    write_job(root, "bad", command="false", state="failed", updated_at="2026-01-01T00:00:01Z")
    write_job(root, "after-ok", command="true", after=[old[3]])
    write_job(root, "after-bad", command="true", after=["bad"])
    _indexed(root, FILLERS + 3)
    runner = Runner(root, log=io.StringIO())
    runner.run(once=True)
    assert state(root, "after-ok") == "succeeded"  # its dependency rests, and succeeded
    assert state(root, "after-bad") == "canceled" and "bad" in read(root, "after-bad")["error"]
    assert {*old, "bad"} <= _resting(runner)
    assert old[0] not in runner.table.jobs(True, ())
    assert runner.table.state_of(old[0]) == "succeeded"
    rw("jobs", "retry", "bad")  # a change to a resting record brings it back
    runner.run(once=True)
    assert state(root, "bad") == "failed" and read(root, "bad")["exit_code"] == 1
    runner.step()  # a serving runner's next step: recovery has looked at it
    assert "bad" in _resting(runner)  # and once it ended again, it rests again


def test_a_finished_record_whose_attempt_lives_is_released_not_rested(root):
    _finished(root, FILLERS)
    write_job(root, "long", command="sleep 60")
    first = RunnerProcess(root)
    wait_for(lambda: (read(root, "long").get("executor") or {}).get("pid"), what="its pid")
    first.stop()  # SIGTERM: its executor is left running for the next runner
    group = read(root, "long")["executor"]["pgid"]
    assert group_alive(group)
    path = root / ".repowire/jobs/long.yaml"
    path.write_text(path.read_text().replace("state: running", "state: canceled"))  # by hand
    _indexed(root, FILLERS + 1)
    runner = Runner(root, log=io.StringIO())
    wait_for(lambda: runner.step() is not None and not group_alive(group), what="a release")
    assert state(root, "long") == "canceled" and set(_resting(runner)) >= {"old-000"}


def test_a_recent_failure_is_still_told_under_the_default_notify(root, tmp_path):
    told = tmp_path / "told"
    set_config(root, f"notify:\n  - command: echo $REPOWIRE_JOB_ID >> {told}\n")
    _finished(root, FILLERS)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    write_job(root, "boom", command="false", state="failed", updated_at=now, finished_at=now)
    _indexed(root, FILLERS + 1)
    runner = Runner(root, log=io.StringIO())
    runner.run(once=True)
    assert told.read_text().split() == ["boom"]  # its row was not let rest untold
    assert "old-000" in _resting(runner)


def test_an_exit_file_left_as_a_runner_was_killed_mid_finish_is_removed(root):
    """A finished record whose exit file is still there (its runner was killed between
    recording the outcome and removing the file) is looked at, and the file removed."""
    old = _finished(root, FILLERS)
    ended = subprocess.Popen(["true"])
    ended.wait()
    here = Store(root).root_ref()
    handle = {"kind": "local", "host": HOST, "root": here.path, "root_token": here.token}
    handle.update(pid=ended.pid, pgid=ended.pid, start_time=1.0)
    write_job(root, "done", command="true", state="succeeded", executor=handle)
    left = root / ".repowire/jobs/done.exit"
    left.write_text("0\n")
    _indexed(root, FILLERS + 1)
    runner = Runner(root, log=io.StringIO())
    runner.step()
    assert not left.exists() and state(root, "done") == "succeeded"
    assert {old[0], "done"} <= _resting(runner)
