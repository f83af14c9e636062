"""A job record as plain data (its definition and its state), its timeline, and serialising.

Pure: no I/O. Parsing and validation of files live in parsing.py."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from repowire.record.handle import Handle, handle_from_dict
from repowire.record.states import TERMINAL, State, check_transition
from repowire.times import format_time, parse_duration

__all__ = [
    "Note",
    "Job",
    "Definition",
    "Status",
    "DEFINITION_FIELDS",
    "STATUS_FIELDS",
    "Invalid",
    "enter_state",
    "job_to_dict",
    "with_text_times",
    "job_from_record",
    "plain",
    "split_executor",
    "SHELL",
    "AGENT_PRESETS",
    "EXECUTORS",
    "SLURM_OPTIONS",
    "Worktree",
]

SHELL = "shell"
EXECUTORS = ("local", "slurm")
SLURM_OPTIONS = ("partition", "time_limit", "cpus", "memory", "extra_args")
AGENT_PRESETS = ("codex", "claude", "gemini", "opencode")


def enter_state(job: Job, new: State, text: str | None, at: datetime, actor: str = "any") -> None:
    """Apply a checked state change to a record in memory, with its timeline note."""
    old = job.state
    check_transition(job.id, old, new, actor)
    if old != new:
        job.state = new
        if new == State.RUNNING:
            job.attempt += 1
            job.started_at = at
            job.finished_at = None
        elif new in TERMINAL:
            job.finished_at = at
    if text or old != new:
        job.notes.append(Note(at, text or f"{old} -> {new}", new if old != new else None))


class Note(NamedTuple):
    """One entry of a job's timeline."""

    at: datetime
    text: str
    state: State | None = None


@dataclass(eq=False, repr=False, kw_only=True)
class Definition:
    """What the file's author wrote: a person, a script, an agent, or the scheduler for a
    template's run. People own these keys; the runner never changes them."""

    id: str
    name: str | None = None
    backend: str | None = None
    command: str | list[str] | None = None
    prompt: str | None = None
    prompt_file: str | None = None
    path: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    timeout: str | float | None = None
    retries: int = 0
    retry_delay: str | float | None = None
    due_at: datetime | None = None
    continuity: str | None = None
    where: str | None = None  # `executor:` as written: "local" or "slurm"
    slurm: dict[str, Any] | None = None
    after: list[str] = field(default_factory=list)  # jobs that must succeed before it starts
    on_dependency_failure: str | None = None  # cancel (default) or run
    priority: int = 0  # higher starts first; equal priorities, oldest first
    labels: list[str] = field(default_factory=list)
    run_if: str | None = None  # a shell command; the job starts only when it exits 0
    run_if_timeout: str | float | None = None
    stall_timeout: str | float | None = None  # fail it when its log has not grown this long
    workspace: str | None = None  # inplace (default) or worktree: a git worktree per run
    base: str | None = None  # the commit a worktree run starts from (default: HEAD)
    keep_worktree: bool = False  # keep a worktree run's folder when it ends
    notify: list[dict[str, Any]] = field(default_factory=list)  # where its end is told
    # a template's run: written by the scheduler when it fires the run, never changed after
    template: str | None = None
    scheduled_for: datetime | None = None
    triggered_by: str | None = None  # the run whose end fired this one (a template's `then`)


@dataclass(eq=False, repr=False, kw_only=True)
class Status:
    """What the transitions maintain: the state and its timeline, the attempt and what it left.
    The runner and `jobs update` (through Store.transition) write these keys."""

    state: State = State.QUEUED
    attempt: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    retry_at: datetime | None = None  # the runner's backoff before an automatic retry
    notes: list[Note] = field(default_factory=list)
    result_summary: str | None = None
    error: str | None = None
    exit_code: int | None = None
    session_id: str | None = None
    handle: Handle | None = None  # once claimed, what was started; written as `executor:`
    worktree: Worktree | None = None  # where a worktree run works, and what it left
    usage: dict[str, Any] | None = None  # tokens and cost its attempts used (backends/usage.py)
    notified: list[dict[str, Any]] = field(default_factory=list)  # each try to tell it
    quiet: bool = False  # nothing to report: no inbox entry, only explicit notifications


DEFINITION_FIELDS = tuple(f.name for f in dataclasses.fields(Definition))
STATUS_FIELDS = tuple(f.name for f in dataclasses.fields(Status))


@dataclass(eq=False, repr=False, kw_only=True)  # compared by identity
class Job(Status, Definition):
    """One job record (docs/file-format.md): its definition, and its status."""

    @property
    def runs_on(self) -> str:
        """The executor kind that runs it: the handle's, else the definition's, else local."""
        return self.handle.kind if self.handle is not None else self.where or "local"

    @property
    def effective_backend(self) -> str | None:
        """The backend that will run it: the one named, else shell when a command is set."""
        return self.backend or (SHELL if self.command is not None else None)

    @property
    def not_before(self) -> datetime | None:
        """When it may start: its own due time, or the runner's retry backoff, the later."""
        times = [t for t in (self.due_at, self.retry_at) if t is not None]
        return max(times) if times else None

    def is_due(self, now: datetime) -> bool:
        return self.not_before is None or self.not_before <= now

    @property
    def timeout_seconds(self) -> float | None:
        return None if self.timeout is None else parse_duration(self.timeout)

    @property
    def retry_delay_seconds(self) -> float:
        return 10.0 if self.retry_delay is None else parse_duration(self.retry_delay)

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL

    def definition(self) -> dict[str, Any]:
        """The definition's keys as they are now (a copy of the lists and mappings)."""
        return {name: copy.copy(getattr(self, name)) for name in DEFINITION_FIELDS}

    def __repr__(self) -> str:
        return f"Job({self.id!r}, {self.state.value})"


class Worktree(NamedTuple):
    """Where a `workspace: worktree` run works and what it left: its branch, the commit it
    started from, the branch's commit when it ended ("" when it changed nothing; None while
    it runs), its folder from the root, and how many files it changed."""

    branch: str
    base: str
    path: str
    head: str | None = None
    files_changed: int | None = None

    @property
    def pending(self) -> bool:
        """Whether the run's work is not yet committed and its folder not yet let go of."""
        return self.head is None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self._asdict().items() if v is not None}


class Invalid(NamedTuple):
    """A job file or template that could not be read or validated: listed, never rewritten."""

    id: str
    path: str
    error: str
    kind: str = "job"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "state": "invalid", "path": self.path, "error": self.error}


# --- serialising ----------------------------------------------------------------------------


def plain(value: Any, times_as_text: bool = True) -> Any:
    if isinstance(value, datetime):
        return format_time(value) if times_as_text else value.replace(microsecond=0)
    if isinstance(value, State):
        return value.value
    if isinstance(value, list):
        return [plain(v, times_as_text) for v in value]
    if isinstance(value, dict):
        return {k: plain(v, times_as_text) for k, v in value.items()}
    return value


_ZERO_DEFAULTS = ("retries", "priority", "keep_worktree", "quiet")  # left out when 0 or false
# The order of a record's keys in its file: what a person reads first, the timeline after.
RECORD_ORDER = (
    "name", "backend", "command", "prompt", "prompt_file", "path", "env", "timeout", "retries",
    "retry_delay", "due_at", "continuity", "template", "scheduled_for", "triggered_by", "state",
    "attempt", "created_at", "updated_at", "started_at", "finished_at", "retry_at", "notes",
    "result_summary", "error", "exit_code", "session_id", "where", "handle", "slurm", "after",
    "on_dependency_failure", "priority", "labels", "run_if", "run_if_timeout", "stall_timeout",
    "workspace", "base", "keep_worktree", "worktree", "usage", "notify", "notified", "quiet",
)  # fmt: skip


def job_to_dict(job: Job, *, with_id: bool = False, times_as_text: bool = True) -> dict[str, Any]:
    """The record as plain data in key order, empty keys left out; times as ISO-8601 Z text
    (or, for the YAML writer, as datetimes)."""
    out: dict[str, Any] = {"id": job.id} if with_id else {}
    for key in RECORD_ORDER:
        value = getattr(job, key)
        if key == "where" and job.handle is not None:
            continue  # a started job's `executor:` is its handle
        if key == "notes":
            value = [_note_dict(n) for n in value]
        elif key in ("where", "handle"):
            key, value = "executor", value.to_dict() if isinstance(value, Handle) else value
        elif isinstance(value, Worktree):
            value = value.to_dict()
        if value is None or value == {} or value == [] or (key in _ZERO_DEFAULTS and not value):
            continue
        out[key] = plain(value, times_as_text)
    out.setdefault("state", State.QUEUED.value)
    return out


def with_text_times(record: dict[str, Any], job_id: str) -> dict[str, Any]:
    """job_to_dict(job, with_id=True) made from job_to_dict(job, times_as_text=False): the
    times, the only values that differ, as text."""
    out = {"id": job_id, **record}
    for key in _TIME_KEYS:
        if key in out:
            out[key] = format_time(out[key])
    if "notes" in out:
        out["notes"] = [{**note, "at": format_time(note["at"])} for note in out["notes"]]
    return out


def _note_dict(note: Note) -> dict[str, Any]:
    out: dict[str, Any] = {"at": note.at, "text": note.text}
    if note.state is not None:
        out["state"] = note.state
    return out


_TIME_KEYS = (
    "due_at",
    "scheduled_for",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "retry_at",
)


def _from_text(value: str) -> datetime:
    return datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)


def job_from_record(record: dict[str, Any]) -> Job:
    """A Job from what job_to_dict(with_id=True) made of one, without validating it again.

    For records this program wrote or validated itself (the listing index), never for files."""
    values = dict(record)
    for key in _TIME_KEYS:
        if key in values:
            values[key] = _from_text(values[key])
    values["state"] = State(values.get("state", "queued"))
    values["notes"] = [
        Note(_from_text(n["at"]), n["text"], State(n["state"]) if n.get("state") else None)
        for n in values.get("notes", [])
    ]
    values.update(split_executor(values.pop("executor", None)))
    if "worktree" in values:
        values["worktree"] = Worktree(**values["worktree"])
    return Job(**values)


def split_executor(value: str | dict[str, Any] | Handle | None) -> dict[str, Any]:
    """`executor:` as the Job's fields: where it runs (text), or the handle (a mapping, or one
    already parsed)."""
    if isinstance(value, Handle):
        return {"handle": value}
    if isinstance(value, dict):
        return {"handle": handle_from_dict(value)}
    return {"where": value} if value is not None else {}
