"""The everyday commands: rm, prune, rerun, logs --tail and -f, and their bad input."""

from __future__ import annotations

import os
import time

from conftest import assert_clean_error, rw
from runner_helpers import read, run_once, state, write_job


def _files(root, job_id):
    return sorted(p.name for p in (root / ".repowire/jobs").glob(f"{job_id}.*"))


def test_rm_removes_finished_jobs_whole_and_refuses_the_others(root):
    write_job(root, "done", command="echo out; echo result > $REPOWIRE_RESULT_FILE")
    run_once(root)
    write_job(root, "waiting", command="true", due_at="2099-01-01T00:00:00Z")
    assert _files(root, "done") == ["done.log", "done.result.md", "done.yaml"]
    assert_clean_error(rw("jobs", "rm", "done", "waiting", ok=False), says="only finished jobs")
    assert_clean_error(rw("jobs", "rm", "nope", ok=False), says="no job nope")
    assert _files(root, "done") and state(root, "waiting") == "queued"  # nothing removed
    assert rw("jobs", "rm", "done", "--dry-run").stdout == "would remove done\n"
    assert _files(root, "done")
    rw("jobs", "rm", "done")
    assert _files(root, "done") == []
    rw("jobs", "rm", "waiting", "--force")
    assert _files(root, "waiting") == []


def test_prune_removes_old_finished_jobs_only(root):
    for job_id in ("old-ok", "old-bad", "new-ok"):
        write_job(root, job_id, command="exit 1" if "bad" in job_id else "true")
    run_once(root)
    write_job(root, "queued", command="true", due_at="2099-01-01T00:00:00Z")
    for job_id in ("old-ok", "old-bad"):
        record = (root / f".repowire/jobs/{job_id}.yaml").read_text()
        year_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86400 * 365))
        lines = [
            f"finished_at: '{year_ago}'" if line.startswith("finished_at") else line
            for line in record.splitlines()
        ]
        (root / f".repowire/jobs/{job_id}.yaml").write_text("\n".join(lines) + "\n")
    dry = rw("jobs", "prune", "--older-than", "7d", "--dry-run").stdout
    assert dry.splitlines() == ["would remove old-bad", "would remove old-ok"]
    assert (
        rw("jobs", "prune", "--older-than", "7d", "--state", "failed").stdout == "removed old-bad\n"
    )
    rw("jobs", "prune")
    assert [p.stem for p in (root / ".repowire/jobs").glob("*.yaml")] == ["queued"]
    assert_clean_error(rw("jobs", "prune", "--older-than", "soon", ok=False), code=2)
    assert_clean_error(rw("jobs", "prune", "--state", "queued", ok=False), code=2)


def test_rerun_queues_a_copy_of_any_finished_job(root):
    write_job(root, "once", command="echo again", retries=1)
    run_once(root)
    new_id = rw("jobs", "rerun", "once").stdout.split()[0]
    record = read(root, new_id)
    assert record["state"] == "queued" and record["command"] == "echo again"
    assert (
        record["retries"] == 1 and "rerun of once (which succeeded)" in record["notes"][0]["text"]
    )
    assert_clean_error(rw("jobs", "rerun", new_id, ok=False), says="only finished jobs")
    run_once(root)
    assert state(root, new_id) == "succeeded"


def test_logs_tail_and_follow_say_how_it_ended(root):
    write_job(root, "chatty", command="for i in 1 2 3 4 5; do echo line $i; done; exit 2")
    run_once(root)
    assert rw("jobs", "logs", "chatty", "--tail", "2").stdout == "line 4\nline 5\n"
    assert rw("jobs", "logs", "chatty", "--tail", "0").stdout == ""
    assert "=== repowire" in rw("jobs", "logs", "chatty", "--tail", "100").stdout
    followed = rw("jobs", "logs", "chatty", "-f", "--tail", "1")
    assert followed.stdout == "line 5\n" and "--- chatty failed: exit status 2" in followed.stderr
    assert_clean_error(rw("jobs", "logs", "chatty", "--tail", "-1", ok=False), code=2)


def test_logs_follow_stops_quietly_on_ctrl_c(root):
    import signal
    import subprocess
    import sys

    write_job(root, "slow", command="true", due_at="2099-01-01T00:00:00Z")
    proc = subprocess.Popen(
        [sys.executable, "-m", "repowire", "jobs", "logs", "slow", "-f"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)  # let it start following; the signal is what is tested
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 130 and "Traceback" not in err
