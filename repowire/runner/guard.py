"""One job's part of a step, guarded: whatever one record holds, the others are still served."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from repowire.errors import RepowireError

__all__ = ["Guard", "sentence"]


class Guard:
    """Runs one job's part of the step; an error is logged once and tried again next step."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.failing: set[str] = set()  # jobs whose step raised: logged once, not waited for

    def __call__(self, job_id: str, action: Callable[..., None], *args: Any) -> None:
        try:
            action(*args)
            self.failing.discard(job_id)
        except Exception as exc:  # whatever one record holds, the others are still served
            if job_id not in self.failing:
                self.log(f"error {job_id}: {sentence(exc)}")
            self.failing.add(job_id)


def sentence(exc: Exception) -> str:
    """An error as one line: a library error's own sentence, else its kind and words."""
    if isinstance(exc, (RepowireError, OSError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
