"""Work that waits for other work: whether a queued job's dependencies let it start. Pure.

A job with `after: [ids]` starts only when each job it names has succeeded. When one fails or
is canceled, the dependent is canceled naming it (`on_dependency_failure: cancel`, the default)
or starts anyway (`run`). A dependency that is queued or running keeps it waiting; one the
runner has found missing for a while (REMOVED: removed with `jobs rm`, or never written) counts
as ended badly. A retried dependency that later succeeds releases dependents still queued.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from repowire.record.states import ENDED_BADLY

__all__ = ["Readiness", "readiness", "find_cycle", "REMOVED"]

REMOVED = "removed"  # the state the runner gives a dependency whose record stays missing
_ENDED_BADLY = (*ENDED_BADLY, REMOVED)


@dataclass(frozen=True)
class Readiness:
    """What a job's dependencies say: it may start, it waits, or it is to be canceled."""

    ready: bool
    waiting_for: tuple[str, ...] = ()
    failed: str | None = None  # the dependency whose failure cancels it

    @property
    def cancel(self) -> bool:
        return self.failed is not None


def readiness(after: list[str], policy: str | None, states: Mapping[str, str]) -> Readiness:
    """Decide from the dependencies' states (id -> state, or REMOVED; a missing id waits)."""
    waiting = []
    for dep in after:
        state = states.get(dep)
        if state in _ENDED_BADLY and (policy or "cancel") == "cancel":
            return Readiness(False, failed=dep)
        if state not in ("succeeded", *_ENDED_BADLY):
            waiting.append(dep)
    return Readiness(not waiting, tuple(waiting))


def find_cycle(graph: Mapping[str, list[str]]) -> list[str] | None:
    """A cycle of ids in the `after` graph (each id -> the ids it waits for), or None."""
    done: set[str] = set()
    for start in graph:
        path: list[str] = []
        on_path: set[str] = set()
        stack = [(start, iter(graph.get(start, [])))]
        if start in done:
            continue
        path.append(start)
        on_path.add(start)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
            elif child in on_path:
                return path[path.index(child) :] + [child]
            elif child not in done and child in graph:
                stack.append((child, iter(graph.get(child, []))))
                path.append(child)
                on_path.add(child)
    return None
