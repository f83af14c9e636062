"""The store: atomic writes, exclusive creates, locks, and concurrent writers."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import rw, wait_for

from repowire.api import library as api
from repowire.errors import ValidationError
from repowire.files import atomic_write, create_exclusive
from repowire.store.records import Store


def test_atomic_write_keeps_mode_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.yaml"
    target.write_text("old\n")
    os.chmod(target, 0o640)
    atomic_write(target, "new\n")
    assert target.read_text() == "new\n"
    assert oct(target.stat().st_mode & 0o777) == oct(0o640)
    assert [p.name for p in tmp_path.iterdir()] == ["a.yaml"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "a.yaml"
    target.write_text("old\n")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.yaml"]


def test_create_exclusive_never_overwrites(tmp_path):
    target = tmp_path / "slot.yaml"
    assert create_exclusive(target, "first\n")
    assert not create_exclusive(target, "second\n")
    assert target.read_text() == "first\n"
    assert [p.name for p in tmp_path.iterdir()] == ["slot.yaml"]


def test_symlinked_job_file_is_refused(root, tmp_path):
    outside = tmp_path / "outside.yaml"
    outside.write_text("command: echo secret\n")
    (root / ".repowire" / "jobs" / "link.yaml").symlink_to(outside)
    listing = api.list_all(root)
    assert "is a symbolic link; refusing to follow it" in listing.jobs[0].error
    with pytest.raises(ValidationError):
        Store(root).transition("link", lambda job: None)
    assert outside.read_text() == "command: echo secret\n"


def test_huge_file_is_refused_before_parsing(root):
    path = root / ".repowire" / "jobs" / "huge.yaml"
    path.write_text("command: x\nname: " + "a" * (2 << 20) + "\n")
    assert "larger than" in api.list_all(root).jobs[0].error


def test_record_stays_readable_yaml_with_multiline_text(root):
    job_id = rw("jobs", "create", "A", "--command", "true").stdout.strip()
    api.update_job(root, job_id, note="line one\nline two", result_summary="ok: done")
    text = (root / ".repowire" / "jobs" / f"{job_id}.yaml").read_text()
    assert "|" in text and "created_at: 2026" in text or "created_at: 20" in text
    assert api.get_job(root, job_id).notes[-1].text == "line one\nline two"


NOTER = """
import sys
from pathlib import Path
from repowire.api import library as api
root, job_id, who, count = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
for i in range(count):
    api.add_note(root, job_id, f"{who}-{i}")
"""


def test_six_processes_appending_notes_lose_none(root):
    job_id = rw("jobs", "create", "A", "--command", "true").stdout.strip()
    count = 25
    procs = [
        subprocess.Popen([sys.executable, "-c", NOTER, str(root), job_id, f"w{n}", str(count)])
        for n in range(6)
    ]
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    data = json.loads(rw("jobs", "show", job_id, "--json").stdout)
    texts = sorted(n["text"] for n in data["notes"])
    assert texts == sorted(f"w{n}-{i}" for n in range(6) for i in range(count))
    leftovers = [p.name for p in (root / ".repowire" / "jobs").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_python_api_is_importable_from_the_package(root):
    import repowire

    job = repowire.create_job(root, "From a script", command=["echo", "hi"])
    assert repowire.get_job(root, job.id).command == ["echo", "hi"]
    repowire.cancel(root, job.id, "not needed")
    assert repowire.retry(root, job.id).state == repowire.State.QUEUED


def test_lock_files_are_kept(root):
    job_id = rw("jobs", "create", "A", "--command", "true").stdout.strip()
    api.add_note(root, job_id, "x")
    assert (root / ".repowire" / "locks" / f"{job_id}.lock").exists()


def test_dot_and_temp_files_are_ignored(root):
    jobs = root / ".repowire" / "jobs"
    (jobs / ".tmp-abc").write_text("garbage")
    (jobs / ".hidden.yaml").write_text("garbage")
    (jobs / "notes.txt").write_text("garbage")
    assert api.list_all(root).jobs == []


def test_store_paths_refuse_unsafe_ids(root):
    with pytest.raises(ValidationError):
        Store(root).job_file("../../etc/passwd")
    assert not Path("/etc/passwd.yaml").exists()


def _listed(root):
    return {j["id"]: j for j in json.loads(rw("jobs", "list", "--json").stdout)["jobs"]}


def _indexed(index):
    import sqlite3

    if not index.exists():
        return {}
    with contextlib.closing(sqlite3.connect(index)) as db:
        return dict(db.execute("SELECT id, state FROM records").fetchall())


def test_listing_index_is_derived_and_never_stale(root):
    job_id = rw("jobs", "create", "A", "--command", "true").stdout.strip()
    index = root / ".repowire/cache/index.sqlite3"
    wait_for(
        lambda: _listed(root) and job_id in _indexed(index),
        what="the index to hold the settled record",
    )
    path = root / f".repowire/jobs/{job_id}.yaml"
    path.write_text(path.read_text().replace("name: A", "name: B"))  # in place, same size
    assert _listed(root)[job_id]["name"] == "B"
    api.update_job(root, job_id, note="atomic write, new inode")
    assert _listed(root)[job_id]["notes"][-1]["text"] == "atomic write, new inode"
    for suffix in ("-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    index.write_text("not a database at all")
    assert _listed(root)[job_id]["name"] == "B"  # a damaged index is dropped...
    assert _listed(root)[job_id]["name"] == "B"
    wait_for(lambda: _listed(root) and job_id in _indexed(index), what="...and built again")
    path.unlink()
    assert job_id not in _listed(root)
    assert job_id not in _indexed(index)  # a record gone from the folder leaves the index


def test_forged_index_rows_do_not_match_real_files(root):
    import sqlite3

    job_id = rw("jobs", "create", "A", "--command", "true").stdout.strip()
    index = root / ".repowire/cache/index.sqlite3"
    wait_for(lambda: _listed(root) and job_id in _indexed(index), what="the index")
    forged = json.dumps({"id": job_id, "state": "succeeded"})
    with contextlib.closing(sqlite3.connect(index)) as db, db:
        db.execute("UPDATE records SET ino = 1, state = 'succeeded', data = ?", (forged,))
    assert _listed(root)[job_id]["state"] == "queued"
    with contextlib.closing(sqlite3.connect(index)) as db, db:
        db.execute("PRAGMA user_version = 999")  # another version's index: built again
    assert _listed(root)[job_id]["state"] == "queued"


def test_listing_without_a_usable_index_reads_the_files(root):
    job_id = rw("jobs", "create", "A", "--command", "true").stdout.strip()
    cache = root / ".repowire/cache"
    cache.mkdir(exist_ok=True)
    (cache / "index.sqlite3").mkdir()  # cannot be opened as a database file
    assert _listed(root)[job_id]["state"] == "queued"
    limited = json.loads(rw("jobs", "list", "--json", "--limit", "1").stdout)["jobs"]
    assert [j["id"] for j in limited] == [job_id]
    assert rw("usage").exit_code == 0


def test_list_json_prints_one_job_a_line(root):
    ids = [rw("jobs", "create", n, "--command", "true").stdout.strip() for n in ("A", "B")]
    lines = rw("jobs", "list", "--json").stdout.splitlines()
    assert {json.loads(line.strip().rstrip(","))["id"] for line in lines[3:5]} == set(ids)
    assert json.loads("\n".join(lines))["templates"] == []


def test_a_record_this_process_wrote_is_not_parsed_again_but_a_hand_edit_is(root, monkeypatch):
    from repowire.record.job import Note
    from repowire.store import records as store_module

    store = Store(root)
    job = api.create_job(root, "cached", command="true")
    store.transition(job.id, lambda j: j.notes.append(Note(j.created_at, "first")))
    parsed = []
    real_parse = store_module.parse_job
    monkeypatch.setattr(
        store_module, "parse_job", lambda *a, **k: parsed.append(a) or real_parse(*a, **k)
    )
    again = store.read_job(job.id)
    assert parsed == [] and again.notes[-1].text == "first"  # its own write: not parsed
    again.notes.append(Note(job.created_at, "only in memory"))  # a copy: the next read is clean
    again.labels.append("mine")
    again.env["SEEN"] = "1"
    clean = store.read_job(job.id)
    assert [n.text for n in clean.notes] == ["first"] and not clean.labels and not clean.env
    path = store.job_file(job.id)
    path.write_text(path.read_text().replace("first", "fixed"))  # an edit in place, same size
    assert store.read_job(job.id).notes[-1].text == "fixed" and len(parsed) == 1


def test_a_record_read_back_as_this_process_wrote_it_is_not_parsed_again(root, monkeypatch):
    """The store keeps the bytes it last wrote to a record: read back unchanged, the record
    is made from what was written, not parsed; a file replaced by anyone else is parsed."""
    from repowire.runner.table import JobTable
    from repowire.store import records as store_module

    store = Store(root)
    job_id = api.create_job(root, "a", command="true").id
    table = JobTable(store)
    table.jobs(True, None)
    parsed = []
    real = store_module.parse_job
    monkeypatch.setattr(
        store_module, "parse_job", lambda i, *a, **k: parsed.append(i) or real(i, *a, **k)
    )
    store.transition(job_id, lambda job: setattr(job, "name", "mine") or True)
    parsed.clear()  # the transition parsed what another process wrote
    assert table.jobs(True, {f"{job_id}.yaml"})[job_id].name == "mine" and parsed == []
    path = store.job_file(job_id)
    other = path.with_name(".other")
    other.write_text(path.read_text().replace("mine", "theirs"))
    os.replace(other, path)  # another writer, right after this one
    assert table.jobs(True, {f"{job_id}.yaml"})[job_id].name == "theirs" and parsed == [job_id]


def test_an_incremental_listing_looks_again_only_at_what_events_named(root):
    """The runner's listing: after a full look, only the files named (and those changed too
    recently to trust their identity) are looked at again."""
    from repowire.runner.table import JobTable

    store = Store(root)
    table = JobTable(store)
    a = api.create_job(root, "a", command="true")
    b = api.create_job(root, "b", command="true")
    assert set(table.jobs(True)) == {a.id, b.id}
    wait_for(lambda: table.jobs(True, ()) and not table.unsettled, what="settled files")
    path = store.job_file(b.id)
    path.write_text(path.read_text().replace("name: b", "name: c"))  # in place, same size
    assert table.jobs(True, ())[b.id].name == "b"  # no event named it: not looked at
    assert table.jobs(True, [f"{b.id}.yaml"])[b.id].name == "c"
    store.job_file(a.id).unlink()
    (store.jobs_dir / "new.yaml").write_text("command: 'true'\n")
    (store.jobs_dir / ".hidden.yaml").write_text("command: 'true'\n")
    names = [f"{a.id}.yaml", "new.yaml", ".tmp-x", ".hidden.yaml", f"{b.id}.log"]
    assert list(table.jobs(True, names)) == sorted([b.id, "new"])
    assert list(table.jobs(True)) == sorted([b.id, "new"])  # a full look agrees
    store.transition(b.id, lambda job: setattr(job, "name", "d"))  # this process's own write
    assert table.jobs(True, ())[b.id].name == "d"  # known at once, before its event comes


def _varied_records(root, store):
    """A template with a run, a job, a hand-written record without times, a broken file: the
    ids of the first job and of the run."""
    api.create_template(root, "nightly", "0 3 * * *", command="true")
    first = api.create_job(root, "first", command="true")
    run = api.create_job(root, "run", command="true")
    text = store.job_file(run.id).read_text()
    store.job_file(run.id).write_text(f"{text}template: nightly\n")
    hand = store.jobs_dir / "by-hand.yaml"
    hand.write_text("command: 'true'\n")  # no times: placed by its file's
    os.utime(hand, (1_000_000_000, 1_000_000_000))
    (store.jobs_dir / "broken.yaml").write_text("command: [unclosed\n")
    return first.id, run.id


def test_a_limited_listing_reads_what_it_shows_and_agrees_with_a_whole_one(root, monkeypatch):
    """`jobs list --limit N` comes from the index once the folder shows no file added,
    removed or replaced since the index held them all; it is the whole listing's tail."""
    from repowire.store.index import folder_mark

    store = Store(root)
    first, _run = _varied_records(root, store)
    waiting = api.create_job(root, "waiting", command="true", after=[first])
    hand = store.jobs_dir / "by-hand.yaml"
    whole_looks = []
    real_entries = Store.entries
    monkeypatch.setattr(
        Store, "entries", lambda self, *a, **k: whole_looks.append(1) or real_entries(self, *a, **k)
    )

    def agree(count, whole_first=True):
        full = json.loads(rw("jobs", "list", "--json").stdout) if whole_first else None
        whole_looks.clear()
        part = json.loads(rw("jobs", "list", "--json", "--limit", str(count)).stdout)
        served = not whole_looks
        full = full or json.loads(rw("jobs", "list", "--json").stdout)
        tail = full["jobs"][max(0, len(full["jobs"]) - count) :]
        assert part["jobs"] == tail, [j["id"] for j in full["jobs"]]
        assert part["templates"] == []  # --limit is a filter of jobs: no templates
        return served  # from the index

    wait_for(
        lambda: agree(3) and store.index.mark() == folder_mark(store.jobs_dir), what="the mark"
    )
    assert agree(2) and agree(0) and agree(10)
    assert json.loads(rw("jobs", "list", "--json").stdout)["jobs"][0]["id"] == "by-hand"
    api.update_job(root, first, note="replaced: a new inode")  # the folder changed: its
    assert agree(6, whole_first=False)  # names and inodes are compared with the index's
    newer = api.create_job(root, "newer", command="true")
    assert agree(1, whole_first=False)
    store.job_file(newer.id).unlink()
    assert agree(2, whole_first=False)
    hand.write_text("command: 'true'\nname: edited\n")  # in place, at the top now
    assert agree(1)
    path = store.job_file(waiting.id)
    path.write_text(path.read_text().replace("name: waiting", "name: edited"))  # in place
    assert agree(3)
    stamp = json.loads(rw("jobs", "show", waiting.id, "--json").stdout)["created_at"]
    path.write_text(path.read_text().replace(stamp, "2001-01-01T00:00:00Z"))  # moved back
    assert not agree(9, whole_first=False)  # another may belong in its place: all are read


def test_a_json_listing_agrees_with_the_records(root):
    """`jobs list --json` with no filter gives the same listing as the records after edits by
    hand, new and removed files, broken ones and a template's runs."""
    from repowire.api import views

    store = Store(root)
    first, run = _varied_records(root, store)
    hand = store.jobs_dir / "by-hand.yaml"

    def agree():
        printed = json.loads(rw("jobs", "list", "--json").stdout)
        assert printed == json.loads(json.dumps(views.filtered(store).as_json(store), default=str))
        return True

    agree()
    assert json.loads(rw("jobs", "list", "--json").stdout)["templates"][0]["recent_runs"]
    hand.write_text("command: 'true'\nname: edited\n")  # in place: read, indexed, shown
    assert agree() and "edited" in rw("jobs", "list", "--json").stdout
    api.update_job(root, first, note="a new inode")
    store.job_file(run).unlink()
    newer = api.create_job(root, "newer", command="true")
    assert agree()
    api.create_job(root, "waiting", command="true", after=[newer.id])
    assert agree()


def test_a_limited_listing_does_not_trust_a_listing_that_numbers_files_otherwise(root, monkeypatch):
    """Overlay file systems may give a directory's entries inode numbers that stat does not:
    then every file would look replaced, and the whole folder is read instead."""
    store = Store(root)
    ids = [api.create_job(root, n, command="true").id for n in ("a", "b", "c")]
    indexed = lambda: rw("jobs", "list") and len(store.index.fetch("inodes") or ()) == 3  # noqa: E731
    wait_for(indexed, what="the index to hold every record")
    api.update_job(root, ids[0], note="the folder changed")  # the mark no longer matches

    class Renumbered:  # a real entry, numbered as an overlay's listing may number it
        def __init__(self, entry):
            self._entry, self.name = entry, entry.name

        def inode(self):
            return self._entry.inode() + 1_000_000

        def stat(self, follow_symlinks=True):
            return self._entry.stat(follow_symlinks=follow_symlinks)

    real = Store.record_entries
    monkeypatch.setattr(Store, "record_entries", lambda self: map(Renumbered, real(self)))
    whole_looks = []
    real_entries = Store.entries
    monkeypatch.setattr(
        Store, "entries", lambda self, *a, **k: whole_looks.append(1) or real_entries(self, *a, **k)
    )
    part = json.loads(rw("jobs", "list", "--json", "--limit", "2").stdout)["jobs"]
    assert whole_looks  # not trusted: the whole folder was read
    assert part == json.loads(rw("jobs", "list", "--json").stdout)["jobs"][-2:]


def test_a_record_from_memory_is_the_same_as_from_the_file(root):
    """What this process wrote comes back from memory, anything else is parsed, and both give
    the same job; the one from memory is a copy that a caller may change."""
    from repowire.record.job import Note, job_to_dict
    from repowire.record.states import State

    store = Store(root)
    job = api.create_job(root, "brief", command="true", labels=["x"], env={"A": "1"})

    def finish(record):
        record.state = State.SUCCEEDED
        record.notes.append(Note(record.created_at, "done"))
        record.usage = {"input_tokens": 5}

    store.transition(job.id, finish)
    remembered = store.read_job(job.id)
    parsed = Store(root).read_job(job.id)
    assert job_to_dict(remembered) == job_to_dict(parsed)
    assert remembered.labels == ["x"] and remembered.usage == {"input_tokens": 5}
    remembered.usage["input_tokens"] = 9  # a copy: the next read is clean
    remembered.labels.append("y")
    again = store.read_job(job.id)
    assert again.usage == {"input_tokens": 5} and again.labels == ["x"]
    assert again.notes[-1].text == "done"


def test_yml_files_are_listed_with_what_to_do(root):
    (root / ".repowire/jobs/typo.yml").write_text("command: 'true'\n")
    listing = json.loads(rw("jobs", "list", "--json").stdout)
    entry = next(j for j in listing["jobs"] if j["id"] == "typo.yml")
    assert entry["state"] == "invalid" and "rename it to typo.yaml" in entry["error"]
    assert "rename it to typo.yaml" in rw("validate", ok=False).stderr


def test_a_record_write_raises_one_event_in_jobs_not_four(root):
    """A record's temp file is written in locks/, which no watcher looks at: the runner's
    watcher hears of a write once (its rename or link into jobs/), never of a temp file."""
    import threading

    from repowire.watch.watcher import Watcher

    store = Store(root)
    watcher = Watcher([store.jobs_dir, store.agents_dir], threading.Event())
    assert watcher.start()
    try:
        watcher.changes.take()  # from now on: the names events report
        job = api.create_job(root, "a", command="true")
        api.update_job(root, job.id, note="one")
        api.update_job(root, job.id, note="two")
        seen: set[str] = set()

        def heard() -> bool:
            seen.update(watcher.changes.take() or ())
            return f"{job.id}.yaml" in seen

        wait_for(heard, what="the record's events")
        assert not [name for name in seen if name.startswith(".tmp-")], seen
    finally:
        watcher.stop()
    assert not [p.name for p in store.locks_dir.iterdir() if p.name.startswith(".tmp-")]
