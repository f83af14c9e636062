"""The watcher wakes the runner for changes that matter, and only for those, through watchdog's
public observer asked for the events that change a folder (real file events)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from conftest import wait_for

from repowire.watch.watcher import Watcher


@pytest.fixture
def watched(tmp_path):
    jobs, agents = tmp_path / "jobs", tmp_path / "agents"
    woken = threading.Event()
    watcher = Watcher([jobs, agents], woken)
    assert watcher.start(), watcher.error
    assert watcher.healthy() and not watcher.stale()
    yield jobs, agents, woken, watcher
    watcher.stop()


def _drop(folder: Path, name: str, text: str = "command: 'true'\n") -> None:
    temp = folder / f".tmp-{name}"
    temp.write_text(text)
    os.replace(temp, folder / name)


def _quiet(woken: threading.Event) -> bool:
    """No wake-up within a quarter of a second (events arrive in milliseconds)."""
    return not woken.wait(0.25)


def test_records_templates_and_exit_files_wake_it(watched):
    jobs, agents, woken, _ = watched
    for change in (
        lambda: _drop(jobs, "a.yaml"),
        lambda: (jobs / "a.yaml").write_text("command: 'false'\n"),  # an in-place edit
        lambda: _drop(jobs, "a.exit", "0\n"),
        lambda: (jobs / "a.yaml").unlink(),
        lambda: (agents / "nightly").mkdir(),
        lambda: (agents / "nightly" / "job.yaml").write_text("cron: '@daily'\n"),
    ):
        woken.clear()
        change()
        wait_for(woken.is_set, 5, "a wake-up")


def test_it_tells_which_records_changed_for_an_incremental_step(watched):
    jobs, agents, woken, watcher = watched
    assert watcher.changes.take() is None  # at first: look at everything
    _drop(jobs, "a.yaml")
    (jobs / "b.yaml").write_text("command: 'true'\n")  # in place
    (agents / "c.yaml").write_text("x")  # not a record
    seen: set[str] = set()

    def told() -> bool:
        seen.update(watcher.changes.take() or ())
        return {"a.yaml", "b.yaml"} <= seen

    wait_for(told, 5, "the changed names")
    assert "c.yaml" not in seen
    watcher.stop()
    assert watcher.changes.take() is None  # events may have been lost: everything again


def test_its_own_reads_temp_files_and_state_files_do_not(watched):
    jobs, agents, woken, watcher = watched
    _drop(jobs, "a.yaml")
    (agents / "nightly").mkdir()
    wait_for(woken.is_set, 5, "the set-up's wake-up")
    while woken.wait(0.25):  # until the set-up's last event has come
        woken.clear()
    for _ in range(20):
        (jobs / "a.yaml").read_text()
    (jobs / ".tmp-half").write_text("x")
    (agents / "nightly" / "state.yaml").write_text("last_slot: x\n")
    assert _quiet(woken)  # reads raise no event: none is asked for


def test_a_replaced_folder_makes_it_stale(watched, tmp_path):
    jobs, _, _, watcher = watched
    os.rename(jobs, tmp_path / "old-jobs")
    jobs.mkdir()
    wait_for(watcher.stale, 5, "the watcher to notice")
    assert watcher.restart() and not watcher.stale()
