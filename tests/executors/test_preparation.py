"""Preparing an attempt: its worker folder, within the allowed paths, and its environment."""

from __future__ import annotations

from runner_helpers import read, run_once, set_config, write_job


def test_the_root_is_named_in_the_allowed_paths_error(root):
    (root / "sub").mkdir()
    set_config(root, "allowed_paths: [sub]\n")
    write_job(root, "top", command="true")
    run_once(root)
    assert "path (the root) is outside the allowed paths" in read(root, "top")["error"]
    assert "None" not in read(root, "top")["error"]
