"""How an attempt ended: gather the facts (exit status, output, result file), then decide.

`decide` is a pure function of the record, the facts and the time, tested like `plan_catchup`;
`record_outcome` gathers, decides and applies the decision to the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from repowire.backends.presets import PRESETS, Backend, final_message, find_session_id, json_value
from repowire.backends.usage import add_usage, less, priced, read_usage
from repowire.errors import ValidationError
from repowire.executors.contract import describe_status
from repowire.executors.preparation import HEADER
from repowire.files import atomic_write, read_tail
from repowire.record.job import Job, Note, enter_state
from repowire.record.states import State
from repowire.store.records import Store
from repowire.times import format_duration

__all__ = [
    "Facts",
    "Decision",
    "gather",
    "decide",
    "apply",
    "record_outcome",
    "SUMMARY_LIMIT",
    "QUIET_MARK",
]

SUMMARY_LIMIT = 500
_TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class Facts:
    """What is known about an ended attempt, read from its files; nothing decided yet."""

    code: int | None  # the exit status; None when there is none (lost, timed out)
    reason: str | None = None  # the runner's account when it ended the attempt or lost it
    agent: bool = False  # an agent backend ran it (not the shell)
    reads_message: bool = False  # the backend's final message is read from its output
    message: str | None = None  # that final message
    session_id: str | None = None  # a session id found in the output
    result_text: str | None = None  # the start of <id>.result.md, None when there is none
    last_line: str | None = None  # the attempt's last line of output
    agent_error: str | None = None  # an `error.message` in the agent's JSON output
    usage: dict[str, Any] | None = None  # tokens and cost the agent CLI reported (usage.py)


@dataclass(frozen=True)
class Decision:
    """What follows an attempt: the next state, and what the record says about it."""

    state: State
    note: str
    error: str | None = None
    retry_at: datetime | None = None  # when a retry may start
    summary: str | None = None  # the result summary, when the record has none yet
    write_message: bool = False  # the final message becomes <id>.result.md
    remarks: tuple[str, ...] = ()  # notes that come before the state's note


QUIET_MARK = "<!-- repowire: quiet -->"  # a result file that starts so has nothing to report


def _first_line(text: str | None) -> str | None:
    lines = (line.strip().lstrip("#").strip() for line in (text or "").splitlines())
    return next((line for line in lines if line and not line.startswith("<!--")), None)


def _clip(text: str | None) -> str | None:
    if text and len(text) > SUMMARY_LIMIT:
        return text[: SUMMARY_LIMIT - 1] + "…"
    return text


def _summary(facts: Facts, write_message: bool) -> str | None:
    """The result file's first line (the final message once written), else the last output
    line, unless the backend's final message was expected and is missing."""
    source = facts.message if write_message else facts.result_text
    first = _first_line(source)
    if first is None and not facts.reads_message:
        first = facts.last_line
    return _clip(first)


def _failure(facts: Facts) -> str:
    error = facts.reason or describe_status(facts.code if facts.code is not None else -9)
    if facts.agent and facts.reason is None:  # the agent CLI's own words for what went wrong
        why = facts.message or facts.agent_error or facts.last_line
        if why:
            error = f"{error}: {' '.join(why.split())[:SUMMARY_LIMIT]}"
    return error


def decide(job: Job, facts: Facts, now: datetime) -> Decision:
    """Succeeded, failed, or queued again for a retry with exponential backoff. Pure."""
    write = bool(facts.message) and facts.result_text is None
    summary = _summary(facts, write) if job.result_summary is None else None
    if facts.code == 0 and facts.reason is None:
        silent = facts.reads_message and not facts.message and facts.result_text is None
        remarks = ("the agent ended without a final message",) if silent else ()
        return Decision(State.SUCCEEDED, "exit status 0", None, None, summary, write, remarks)
    error = _failure(facts)
    if job.attempt <= job.retries:
        delay = job.retry_delay_seconds * (2 ** (job.attempt - 1))
        note = (
            f"attempt {job.attempt} failed ({error}); retry "
            f"{job.attempt} of {job.retries} in {format_duration(delay)}"
        )
        return Decision(State.QUEUED, note, error, now + timedelta(seconds=delay), None, write)
    return Decision(State.FAILED, error, error, None, summary, write)


def _attempt_output(store: Store, job: Job) -> str:
    """What the latest attempt printed (at most its last 256 KiB), after its header."""
    try:
        text = read_tail(store.sibling(job.id, ".log"), 4 * _TAIL_BYTES)
    except ValidationError:
        return ""  # a link planted at the log's name: nothing is read through it
    return text.rsplit(HEADER, 1)[-1].split("\n", 1)[-1] if HEADER in text else text


def gather(
    store: Store,
    job: Job,
    code: int | None,
    reason: str | None,
    backend: Backend | None,
    prices: Mapping[str, Mapping[str, float]] | None = None,
    earlier: dict[str, Any] | None = None,
) -> Facts:
    """Read what the attempt left: its output, final message, session id, result file, and
    what the agent used (priced from config.yaml's prices when its CLI gives no cost)."""
    output = _attempt_output(store, job)
    result_file = store.sibling(job.id, ".result.md")
    try:
        result_text = read_tail(result_file, _TAIL_BYTES) if result_file.exists() else None
    except ValidationError:
        result_text = ""  # something that is not a plain file sits at the name: leave it
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return Facts(
        code=code,
        reason=reason,
        agent=backend is not None,
        reads_message=backend is not None and backend.final_message_key is not None,
        message=final_message(backend, output),
        session_id=find_session_id(backend, output),
        result_text=result_text,
        last_line=lines[-1] if lines else None,
        agent_error=json_value(output, "error.message") if backend is not None else None,
        usage=_usage_of(backend, output, prices or {}, earlier),
    )


def _usage_of(
    backend: Backend | None,
    output: str,
    prices: Mapping[str, Mapping[str, float]],
    earlier: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """What the attempt used, less what the session's earlier runs recorded (`earlier`, given
    for a CLI that reports its session's running total)."""
    if backend is None:
        return None
    preset = backend.name if backend.name in PRESETS else None
    used = less(read_usage(preset, backend.usage_keys, output), earlier)
    return priced(used, prices, backend.name)


def apply(store: Store, job: Job, facts: Facts, decision: Decision, now: datetime) -> None:
    """Change the record (and write the result file) as the decision says."""
    if facts.session_id:
        job.session_id = facts.session_id
    job.usage = add_usage(job.usage, facts.usage)
    if (facts.result_text or "").lstrip().startswith(QUIET_MARK):
        job.quiet = True
    if decision.write_message and facts.message:
        text = facts.message
        atomic_write(
            store.sibling(job.id, ".result.md"), text if text.endswith("\n") else text + "\n"
        )
    if job.result_summary is None:
        job.result_summary = decision.summary
    job.exit_code = facts.code
    job.error = decision.error
    job.notes.extend(Note(now, remark) for remark in decision.remarks)
    if decision.state == State.QUEUED:
        job.retry_at = decision.retry_at  # the runner's own delay; the job's due_at stays
        job.result_summary = None
    enter_state(job, decision.state, decision.note, now, actor="runner")


def record_outcome(
    store: Store,
    job: Job,
    code: int | None,
    reason: str | None,
    backend: Backend | None,
    now: datetime,
    prices: Mapping[str, Mapping[str, float]] | None = None,
    earlier: dict[str, Any] | None = None,
) -> Decision:
    """Gather, decide and apply: how an attempt ended becomes the record's next state.
    `earlier`: what the session's earlier runs used (for a CLI that reports totals)."""
    facts = gather(store, job, code, reason, backend, prices, earlier)
    decision = decide(job, facts, now)
    apply(store, job, facts, decision, now)
    return decision
