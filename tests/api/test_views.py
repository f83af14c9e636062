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


def test_filters_only_jobs_have_leave_the_templates_out(root):
    """--ready, --blocked, --since and --limit filter jobs: the templates are not listed with
    them, and a filter that matches nothing says so (not "No jobs or templates yet")."""
    rw("jobs", "create", "nightly", "--cron", "@daily", "--command", "true")
    rw("jobs", "create", "one", "--command", "true", "--id", "one")
    for flags in (["--ready"], ["--blocked"], ["--since", "1h"], ["--limit", "5"]):
        data = json.loads(rw("jobs", "list", *flags, "--json").stdout)
        assert data["templates"] == [], flags
    assert [t["id"] for t in json.loads(rw("jobs", "list", "--json").stdout)["templates"]] == [
        "nightly"
    ]
    shown = rw("jobs", "list", "--blocked").stdout
    assert "Nothing matches these filters" in shown and "yet" not in shown
