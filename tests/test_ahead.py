"""Files made ahead of need (repowire/ahead.py): spare temp files for record writes, and the
lock files and logs of the jobs next in line, made on a thread of their own."""

from __future__ import annotations

import io
import os
import time

from conftest import wait_for
from runner_helpers import read, state, write_job

from repowire.ahead import Ahead, spares_dir
from repowire.files import name_temp
from repowire.housekeeping import remove_stale_temp_files
from repowire.model import Job
from repowire.runner import Runner
from repowire.store import Store


def _spares(store: Store) -> list[str]:
    return sorted(p.name for p in spares_dir(store.base).iterdir())


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def test_a_record_and_its_lock_are_made_from_spares_and_read_the_same(root):
    store = Store(root)
    ahead = Ahead(store.jobs_dir, spares_dir(store.base), keep=2)
    ahead.start()
    try:
        wait_for(lambda: len(_spares(store)) == 2, what="two spares")
        ready = _spares(store)
        store.spares = ahead.take
        store.create_job(Job(id="a", command="true"))
        os.chmod(store.job_file("a"), 0o640)
        store.transition("a", lambda job: setattr(job, "name", "through a spare") or True)
        assert read(root, "a")["name"] == "through a spare"
        lock = store.lock_file("a")  # the other spare
        assert lock.read_bytes() == b"" and lock.stat().st_mode & 0o777 == 0o644 & ~_umask()
        assert _spares(store) == []  # made again when the runner asks (after its step)
        store.transition("a", lambda job: setattr(job, "name", "no spare left") or True)
        assert read(root, "a")["name"] == "no spare left"
        assert oct(store.job_file("a").stat().st_mode & 0o777) == oct(0o640)
        ahead.refill()
        wait_for(lambda: len(_spares(store)) == 2, what="the spares taken made again")
        assert not set(ready) & set(_spares(store))
        assert not [p for p in store.jobs_dir.iterdir() if p.name.startswith(".")]
    finally:
        ahead.close()
    assert _spares(store) == []  # what was not taken is removed


def test_a_spare_given_a_name_never_replaces_what_is_there(root, tmp_path):
    """A new job's lock and log are named from spares; whatever is at the name already (a
    log of an earlier attempt, a link planted there) stays as it is, and the spare goes."""
    store = Store(root)
    ahead = Ahead(store.jobs_dir, spares_dir(store.base), keep=2)
    ahead.start()
    try:
        wait_for(lambda: len(_spares(store)) == 2, what="two spares")
        log, planted, target = store.sibling("a", ".log"), store.lock_file("b"), tmp_path / "t"
        log.write_text("earlier attempt\n")
        planted.symlink_to(target)
        name_temp(ahead.take(store.jobs_dir), log)
        name_temp(ahead.take(store.jobs_dir), planted)
        assert log.read_text() == "earlier attempt\n"
        assert planted.is_symlink() and not target.exists()
        assert _spares(store) == []  # both spares' names are gone
        name_temp(None, store.lock_file("c"))  # no spare: the caller's open makes it
        assert not store.lock_file("c").exists()
    finally:
        ahead.close()


def test_a_spare_removed_under_the_writer_is_not_used(root):
    """Another runner's start removes temp files older than a minute: a spare may be gone
    when it is taken. The write makes its own temp file instead, and loses nothing."""
    store = Store(root)
    store.create_job(Job(id="a", command="true"))
    ahead = Ahead(store.jobs_dir, spares_dir(store.base), keep=1)
    ahead.start()
    try:
        wait_for(lambda: len(_spares(store)) == 1, what="a spare")
        old, names = time.time() - 120, _spares(store)
        for name in names:
            os.utime(spares_dir(store.base) / name, (old, old))
        assert [p.name for p in remove_stale_temp_files(store)] == names
        assert _spares(store) == []
        store.spares = ahead.take
        store.transition("a", lambda job: setattr(job, "name", "still written") or True)
        assert read(root, "a")["name"] == "still written"
    finally:
        ahead.close()
    assert not [p for p in store.jobs_dir.iterdir() if p.name.startswith(".")]


def test_prepared_files_are_made_empty_and_existing_ones_left_alone(root, tmp_path):
    store = Store(root)
    kept = tmp_path / "kept.log"
    kept.write_text("earlier attempt\n")
    (tmp_path / "link.log").symlink_to(tmp_path / "elsewhere")
    ahead = Ahead(store.jobs_dir, spares_dir(store.base), keep=0)
    ahead.start()
    try:
        ahead.prepare([tmp_path / "new.lock", kept, tmp_path / "link.log", tmp_path / "no/x"])
        wait_for(lambda: (tmp_path / "new.lock").exists(), what="the lock file made")
    finally:
        ahead.close()
    assert (tmp_path / "new.lock").read_text() == ""
    assert kept.read_text() == "earlier attempt\n"
    assert not (tmp_path / "elsewhere").exists()  # never through a link
    assert not (tmp_path / "no").exists()


def test_the_runner_makes_the_lock_and_log_of_the_jobs_next_in_line(root):
    for name in ("a", "b", "c"):
        write_job(root, name, command="sleep 0.3")
    store = Store(root)
    runner = Runner(root, max_concurrency=1, log=io.StringIO())
    runner.ahead.start()
    try:
        runner.step()
        assert [j.id for j in runner.chooser.next_up] == ["b", "c"]
        for name in ("b", "c"):
            wait_for(lambda n=name: store.lock_file(n).exists(), what=f"{name}'s lock file")
            wait_for(lambda n=name: store.sibling(n, ".log").exists(), what=f"{name}'s log")
        assert state(root, "b") == "queued" and store.sibling("b", ".log").read_text() == ""
    finally:
        runner.ahead.close()
    runner.run(once=True)
    assert [state(root, name) for name in ("a", "b", "c")] == ["succeeded"] * 3
    assert "=== repowire: " in store.sibling("b", ".log").read_text()
    assert _spares(store) == []
