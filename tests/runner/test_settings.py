"""The settings a running runner serves with: config.yaml reread at every step, and trust."""

from __future__ import annotations

from conftest import rw, wait_for
from runner_helpers import in_process_runner, read, set_config, state, write_job


def test_a_live_runner_rereads_its_config(root):
    runner, out = in_process_runner(root)
    runner.step()
    set_config(root, "max_concurrency: 2\nbackends:\n  mine:\n    command: [echo, '{prompt}']\n")
    write_job(root, "custom", backend="mine", prompt="from my backend")
    wait_for(lambda: runner.step() is not None and state(root, "custom") == "succeeded")
    assert (
        runner.max_concurrency == 2 and read(root, "custom")["result_summary"] == "from my backend"
    )
    set_config(root, "max_concurrency: zero\n")
    runner.step()
    runner.step()
    assert out.getvalue().count("keeping the last good settings") == 1
    assert runner.max_concurrency == 2


def test_a_revoked_root_starts_nothing_until_trusted_again(root):
    runner, out = in_process_runner(root)
    runner.step()
    rw("trust", "--revoke")
    write_job(root, "after", command="true")
    runner.step()
    assert state(root, "after") == "queued" and "no longer trusted" in out.getvalue()
    rw("trust")
    wait_for(lambda: runner.step() is not None and state(root, "after") == "succeeded")
