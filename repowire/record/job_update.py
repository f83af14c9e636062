"""`jobs update`: what a person, a script or an agent may change on a job in one locked step."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from repowire.errors import UsageProblem
from repowire.ids import validate_id
from repowire.record.job import Job, Note, enter_state
from repowire.record.states import State

__all__ = ["JobUpdate"]


@dataclass(frozen=True)
class JobUpdate:
    """A state, a note, a result summary, a session id, or the quiet mark (nothing to report:
    no inbox entry, and only notifications whose `when` names the state)."""

    state: str | State | None = None
    note: str | None = None
    result_summary: str | None = None
    session_id: str | None = None
    quiet: bool | None = None

    def __post_init__(self) -> None:
        if all(getattr(self, k) is None for k in self.__dataclass_fields__):
            raise UsageProblem(
                "give at least one change: a state, a note, a result summary, a session id or quiet"
            )
        if self.state is not None:
            State(self.state)  # an unknown state is refused before the record is read
        if self.session_id is not None:
            validate_id(self.session_id, "session id")

    def apply(self, job: Job, now: datetime) -> None:
        if self.state is not None:
            new = State(self.state)
            enter_state(job, new, self.note, now)
            if new in (State.FAILED, State.CANCELED) and not job.error:
                job.error = self.note or f"{new} by request"  # why it ended, in words
        elif self.note:
            job.notes.append(Note(now, self.note))
        if self.result_summary is not None:
            job.result_summary = self.result_summary
        if self.session_id is not None:
            job.session_id = self.session_id
        if self.quiet is not None:
            job.quiet = self.quiet
