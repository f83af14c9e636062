"""Executors on a Slurm cluster: sbatch, squeue, scontrol and scancel behind the executor interface.

The .repowire/ folder must be on storage the compute nodes share: the batch script appends to
<id>.log and writes <id>.exit there, as the local wrapper does.
"""

from __future__ import annotations

import secrets
import shlex
import subprocess
from pathlib import Path
from typing import Any

from repowire.errors import RepowireError
from repowire.executors.contract import HOST, Launch
from repowire.record.handle import Handle, RootRef
from repowire.record.job import SLURM_OPTIONS as OPTION_KEYS

__all__ = ["SlurmExecutor", "OPTION_KEYS", "merge_options", "batch_script"]

_ACTIVE = {
    "PENDING",
    "CONFIGURING",
    "RUNNING",
    "COMPLETING",
    "SUSPENDED",
    "REQUEUED",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
    "STOPPED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
}


def merge_options(*layers: dict[str, Any] | None) -> dict[str, Any]:
    """config.yaml's slurm options, then the template's, then the job's: the last one wins."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k: v for k, v in (layer or {}).items() if k in OPTION_KEYS})
    return merged


def _comment(token: str) -> str:
    """The Slurm job comment that names the root an attempt was submitted for."""
    return f"repowire-root:{token}"


def _sbatch_args(launch: Launch, claim: Handle) -> list[str]:
    options = launch.slurm
    args = [
        "sbatch",
        "--parsable",
        f"--job-name=repowire-{launch.job_id}",
        f"--comment={_comment(claim.root_token)}",
        f"--chdir={launch.cwd}",
        f"--output={launch.log}",
        "--open-mode=append",
        "--export=ALL",
    ]
    if options.get("partition"):
        args.append(f"--partition={options['partition']}")
    if options.get("time_limit"):
        args.append(f"--time={options['time_limit']}")
    if options.get("cpus"):
        args.append(f"--cpus-per-task={int(options['cpus'])}")
    if options.get("memory"):
        args.append(f"--mem={options['memory']}")
    args += [str(a) for a in options.get("extra_args") or []]
    return args


def batch_script(launch: Launch) -> str:
    """The same work as the local wrapper: run the argv (or shell string), record the status."""
    if len(launch.argv) == 3 and launch.argv[:2] == ["/bin/sh", "-c"]:
        command = f"(eval {shlex.quote(launch.argv[2])})"
    else:
        command = " ".join(shlex.quote(a) for a in launch.argv)
    if launch.stdin is not None:  # the prompt travels inside the script: nodes have no stdin
        marker = f"REPOWIRE_PROMPT_{secrets.token_hex(8)}"
        command += f" <<'{marker}'\n{launch.stdin.read_text(encoding='utf-8')}\n{marker}"
    exit_file = shlex.quote(str(launch.exit_file))
    return (
        "#!/bin/sh\n"
        f"{command}\n"
        "rc=$?\n"
        "set -C\n"
        f"printf '%s\\n' \"$rc\" > {exit_file}.tmp.$$ && mv -f {exit_file}.tmp.$$ {exit_file}\n"
        'exit "$rc"\n'
    )


def _run(args: list[str], env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(
            args, input=stdin, capture_output=True, text=True, env=env, timeout=30
        )
    except FileNotFoundError:
        raise RepowireError(f"{args[0]}: command not found on PATH (is Slurm installed?)") from None
    except subprocess.TimeoutExpired:
        raise RepowireError(f"{args[0]} did not answer within 30 s") from None
    if done.returncode != 0:
        words = (done.stderr or done.stdout).strip().splitlines()
        raise RepowireError(f"{args[0]} failed: {words[-1] if words else done.returncode}")
    return done.stdout


class SlurmExecutor:
    """Each attempt is a Slurm batch job; the handle keeps its Slurm job id."""

    kind = "slurm"

    def start(self, launch: Launch, claim: Handle) -> Handle:
        _clear_exit_file(launch)
        out = _run(_sbatch_args(launch, claim), env=launch.env, stdin=batch_script(launch))
        slurm_id = out.strip().split(";")[0]
        if not slurm_id.isdigit():
            raise RepowireError(f"sbatch printed no job id: {out.strip()!r}")
        return claim._replace(kind=self.kind, host=HOST, slurm_job_id=int(slurm_id))

    def owns(self, handle: Handle) -> bool:
        return handle.kind == self.kind  # Slurm job ids hold across the cluster

    def state(self, handle: Handle) -> tuple[str, str]:
        """Slurm's JobState and Reason for the job ("" when Slurm no longer knows it)."""
        try:
            out = _run(["scontrol", "show", "job", "-o", str(handle.slurm_job_id)])
        except RepowireError:
            return "", ""
        fields = dict(part.split("=", 1) for part in out.split() if "=" in part)
        return fields.get("JobState", ""), fields.get("Reason", "")

    def is_same(self, handle: Handle) -> bool:
        return self.alive(handle)  # a Slurm job id is never reused while Slurm knows the job

    def alive(self, handle: Handle) -> bool:
        return self.state(handle)[0] in _ACTIVE

    def release(self, handle: Handle, force: bool) -> None:
        args = ["scancel", str(handle.slurm_job_id)]
        if not force:
            args[1:1] = ["--signal=TERM", "--full"]
        try:
            _run(args)
        except RepowireError:
            pass  # already gone

    def exit_status(self, handle: Handle) -> int | None:
        return None  # the batch script's exit file is the status

    def lost_reason(self, handle: Handle) -> str | None:
        state, reason = self.state(handle)
        if not state:
            return None
        return f"slurm job {handle.slurm_job_id} ended {state}" + (
            f" ({reason})" if reason and reason != "None" else ""
        )

    def find(self, job_id: str, exit_file: Path, root: RootRef) -> Handle | None:
        """A Slurm job submitted for this job of this root but never recorded (its runner died
        mid-start); another root's job of the same id has another comment."""
        try:
            out = _run(["squeue", "-h", "-n", f"repowire-{job_id}", "-o", "%i %k"])
        except RepowireError:
            return None
        ids = []
        for line in out.splitlines():
            slurm_id, _, comment = line.strip().partition(" ")
            if slurm_id.isdigit() and comment.strip() == _comment(root.token):
                ids.append(int(slurm_id))
        if not ids:
            return None
        return Handle(
            kind=self.kind, host=HOST, root=root.path, root_token=root.token, slurm_job_id=ids[-1]
        )

    def forget(self, handle: Handle) -> None:
        return None


def _clear_exit_file(launch: Launch) -> None:
    try:
        launch.exit_file.unlink()
    except FileNotFoundError:
        pass
