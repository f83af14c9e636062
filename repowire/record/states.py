"""The five states of a job and who may move a job between them: the transition table as data."""

from __future__ import annotations

from enum import Enum

from repowire.errors import TransitionRefused

__all__ = [
    "State",
    "TERMINAL",
    "TERMINAL_NAMES",
    "ENDED_BADLY",
    "TRANSITIONS",
    "check_transition",
]


class State(str, Enum):
    """The five states of a job."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    def __str__(self) -> str:
        return self.value


TERMINAL = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELED})
# As records spell them, in this order: succeeded, failed, canceled.
TERMINAL_NAMES = tuple(state.value for state in State if state in TERMINAL)
ENDED_BADLY = tuple(name for name in TERMINAL_NAMES if name != State.SUCCEEDED.value)

# Who may move a job from one state to another. "any" is every writer (CLI, MCP, dashboard, an
# executor reporting on itself, the runner); "runner" is the runner alone; "retry" is retry alone.
TRANSITIONS: dict[tuple[State, State], str] = {
    (State.QUEUED, State.RUNNING): "any",
    (State.QUEUED, State.CANCELED): "any",
    (State.RUNNING, State.SUCCEEDED): "any",
    (State.RUNNING, State.FAILED): "any",
    (State.RUNNING, State.CANCELED): "any",
    (State.RUNNING, State.QUEUED): "runner",
    (State.FAILED, State.QUEUED): "retry",
    (State.CANCELED, State.QUEUED): "retry",
}


def check_transition(job_id: str, old: State, new: State, actor: str = "any") -> None:
    """Raise TransitionRefused unless `actor` may move job `job_id` from `old` to `new`."""
    if old == new:
        return  # repeating the current state only adds notes or a summary
    allowed = TRANSITIONS.get((old, new))
    if allowed == "any" or allowed == actor:
        return
    if allowed == "retry":
        raise TransitionRefused(
            f"job {job_id} is {old}; use 'repowire jobs retry {job_id}' to queue it again"
        )
    if old in TERMINAL:
        raise TransitionRefused(
            f"job {job_id} is {old}, a terminal state; it cannot become {new} "
            "(only failed or canceled jobs can be retried)"
        )
    raise TransitionRefused(f"job {job_id} cannot go from {old} to {new}")
