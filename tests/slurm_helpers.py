"""Helpers for the tests that use the one-node Slurm cluster .ci/slurm-up starts."""

from __future__ import annotations

import shutil
import subprocess

from runner_helpers import read


def cluster_up() -> bool:
    if not shutil.which("sbatch"):
        return False
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10
        ).stdout
    except (subprocess.TimeoutExpired, OSError):
        return False
    down = ("down", "drain", "fail", "unk", "not_resp", "inval", "future", "maint")
    return any(s.strip() and not s.strip().startswith(down) for s in out.splitlines())


def in_queue(slurm_id: int) -> bool:
    out = subprocess.run(
        ["squeue", "-h", "-j", str(slurm_id), "-o", "%T"], capture_output=True, text=True
    ).stdout
    return bool(out.strip())


def slurm_id_of(root, job_id):
    handle = read(root, job_id).get("executor")
    return handle.get("slurm_job_id") if isinstance(handle, dict) else None
