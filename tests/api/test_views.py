"""What the faces list: filters over both tables, and the order of the jobs."""

from __future__ import annotations

import json
import os
import time

from conftest import assert_clean_error, rw
from runner_helpers import run_once, write_job


def test_filters_apply_to_both_tables(root):
    rw("jobs", "create", "nightly", "--cron", "@daily", "--command", "true")
    write_job(root, "bad", command="exit 1")
    run_once(root)
    failed = json.loads(rw("jobs", "list", "--state", "failed", "--json").stdout)
    assert failed["templates"] == [] and [j["id"] for j in failed["jobs"]] == ["bad"]
    enabled = json.loads(rw("jobs", "list", "--state", "enabled", "--json").stdout)
    assert [t["id"] for t in enabled["templates"]] == ["nightly"] and enabled["jobs"] == []
    assert_clean_error(rw("jobs", "list", "--template", "nosuch", ok=False), says="no template")


def test_hand_written_jobs_are_ordered_by_file_time(root):
    rw("jobs", "create", "made", "--command", "true", "--id", "made")
    old = write_job(root, "old", command="true")
    past = time.time() - 3600
    os.utime(old, (past, past))
    write_job(root, "new", command="true")
    order = [j["id"] for j in json.loads(rw("jobs", "list", "--json").stdout)["jobs"]]
    assert order.index("old") < order.index("made") < order.index("new")
