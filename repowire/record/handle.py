"""What a runner started for one attempt of a job: an immutable, typed handle that knows its root.

The record's `executor:` key holds either where a job runs (`local`, `slurm`: the definition) or,
once a runner claimed it, the handle. The model keeps the two apart: `Job.where` and
`Job.handle`. Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from repowire.errors import ValidationError, shown
from repowire.times import format_time, parse_time

__all__ = ["Handle", "RootRef", "handle_from_dict"]


class RootRef(NamedTuple):
    """Which root a runner serves: its resolved path, and a token that copies of it do not share.

    A `git clone`, `cp -R` or worktree of a root is another root: its path differs, or (a clone
    put where the original stood) its token does."""

    path: str
    token: str


class Handle(NamedTuple):
    """A claim (no identity yet) or a started attempt: a local process group or a Slurm job."""

    kind: str  # "local" or "slurm"
    runner: str = ""  # host:pid:start_time of the runner that claimed it
    host: str = ""
    root: str = ""  # RootRef.path of the root it was started for
    root_token: str = ""  # RootRef.token of that root
    claimed_at: datetime | None = None
    pid: int | None = None
    pgid: int | None = None
    start_time: float | None = None  # the leader's start time, which tells a reused pid apart
    slurm_job_id: int | None = None

    @property
    def identity(self) -> int | None:
        """What tells one started attempt from another: a pid or a Slurm job id; None: a claim."""
        return self.pid or self.slurm_job_id

    @property
    def started(self) -> bool:
        return self.identity is not None

    def describe(self) -> str:
        """'pid 123' or 'slurm job 42', for log lines."""
        if self.kind == "slurm":
            return f"slurm job {self.slurm_job_id}"
        return f"pid {self.pid}"

    def started_for(self, here: RootRef, host: str) -> bool:
        """Whether this handle was made for the root `here` (a copy of it does not count).

        A handle written before handles named their root is taken to be this root's. On
        another host the path may differ (a shared file system mounted elsewhere), so there the
        token alone decides."""
        if not self.root_token:
            return True
        if self.root_token != here.token:
            return False
        return self.host != host or self.root == here.path

    def to_dict(self) -> dict[str, Any]:
        """The `executor:` mapping of the record, empty fields left out."""
        out: dict[str, Any] = {}
        for name, value in self._asdict().items():
            if value is None or value == "":
                continue
            out[name] = format_time(value) if isinstance(value, datetime) else value
        return out


_INTS = ("pid", "pgid", "slurm_job_id")
_TEXTS = ("kind", "runner", "host", "root", "root_token")


def handle_from_dict(data: dict[str, Any]) -> Handle:
    """The Handle an `executor:` mapping stands for; a ValidationError names a bad field."""
    values: dict[str, Any] = {}
    for key, value in data.items():
        if value is None:
            continue
        if key in _INTS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValidationError(f"{key}: expected a whole number, got {shown(value)}")
        elif key in _TEXTS:
            if not isinstance(value, str):
                raise ValidationError(f"{key}: expected text, got {shown(value)}")
        elif key == "start_time":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValidationError(f"start_time: expected a number, got {shown(value)}")
            value = float(value)
        elif key == "claimed_at":
            value = parse_time(value)
        else:
            raise ValidationError(f"unknown key {shown(key)}")
        values[key] = value
    values.setdefault("kind", "local")
    if values["kind"] not in ("local", "slurm"):
        raise ValidationError(f"kind: expected local or slurm, got {shown(values['kind'])}")
    return Handle(**values)
