"""The runner's notifications: due deliveries are tried on worker threads (a hook never blocks
the loop, and each has its own timeout), each try is noted on the job under its lock, and a
failed one is tried again with backoff, at most MAX_TRIES times."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from datetime import datetime, timedelta
from typing import Any

from repowire.errors import RepowireError
from repowire.executors.preparation import environment
from repowire.files import open_file
from repowire.notify.targets import (
    BACKOFF,
    HOOKS,
    MAX_TRIES,
    Delivery,
    deliver,
    describe,
    due,
    stop_group,
)
from repowire.record.job import Invalid, Job, job_to_dict
from repowire.store.records import Store
from repowire.times import format_time

__all__ = ["Notifier"]

Outcome = tuple[bool, str, bool]


class Notifier:
    """Delivers what `notify` asks for, for the jobs of one root."""

    def __init__(
        self, store: Store, log: Callable[[str], None], wake: Callable[[], None] = lambda: None
    ) -> None:
        self.store = store
        self.log = log
        self.wake = wake  # a try that ends wakes the runner's loop to note it
        self.running: dict[tuple[str, int, str], tuple[Delivery, Future[Outcome]]] = {}
        self.waiting: dict[tuple[str, int, str], datetime] = {}  # tried, failed: next try at
        self.settled: set[tuple[str, int, str]] = set()  # delivered or given up, in this life
        self.told_desktop = False
        # The records to look at for what is due: the runner adds those that changed; one
        # with nothing due leaves until its record changes again (nothing becomes due later).
        self.looking: set[str] = set()
        self._default: list[dict[str, Any]] | None = None

    @property
    def busy(self) -> bool:
        return bool(self.running)

    def step(
        self, jobs: dict[str, Job | Invalid], default: list[dict[str, Any]], now: datetime
    ) -> list[float]:
        """Record the tries that ended, start the ones due; seconds until the next retry."""
        self._collect(now)
        for delivery in self._due(jobs, default, now):
            self._start(delivery, now)
        return [max(0.0, (at - now).total_seconds()) for at in self.waiting.values()]

    def pending(
        self, jobs: Mapping[str, Job | Invalid], default: list[dict[str, Any]], now: datetime
    ) -> bool:
        """Whether a try is due now and not waiting out a backoff (`runner --once` waits for
        such tries, not for retries)."""
        keys = (d.key for d in self._due(jobs, default, now))
        return any(k not in self.waiting and k not in self.settled for k in keys)

    def _due(
        self, jobs: Mapping[str, Job | Invalid], default: list[dict[str, Any]], now: datetime
    ) -> list[Delivery]:
        """The notifications due for the records looked at (of jobs with targets, once they
        have ended)."""
        if default != self._default:  # config.yaml's default changed: every job again
            self._default = default
            self.looking.update(jobs)
        found = []
        for job_id in sorted(self.looking):
            item = jobs.get(job_id)
            deliveries = []
            if isinstance(item, Job) and item.is_terminal and (item.notify or default):
                deliveries = due(item, default, now)
            if not deliveries:
                self.looking.discard(job_id)
            found += deliveries
        return found

    def _start(self, delivery: Delivery, now: datetime) -> None:
        key = delivery.key
        if key in self.running or key in self.settled or self.waiting.get(key, now) > now:
            return  # (the step's listing may predate the note of a try that just ended)
        self.waiting.pop(key, None)
        try:
            record = self.store.read_job(delivery.job_id)
        except Exception:  # gone or being edited: looked at again next step
            return
        payload = job_to_dict(record, with_id=True)  # the record as `jobs show --json` prints it
        env = _hook_env(self.store, record)
        future: Future[Outcome] = Future()
        self.running[key] = (delivery, future)
        # A daemon thread per try: one that hangs never holds up the loop or the runner's exit
        # (a try cut short by a stop is made again by the next runner).
        threading.Thread(
            target=self._try,
            args=(delivery, payload, env, future),
            daemon=True,
            name=f"repowire-notify-{delivery.job_id}",
        ).start()

    def _try(
        self,
        delivery: Delivery,
        payload: dict[str, Any],
        env: dict[str, str],
        future: Future[Outcome],
    ) -> None:
        log = None
        if "command" in delivery.target:  # its output goes to the job's log
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
            with contextlib.suppress(OSError, RepowireError):
                log = open_file(self.store.sibling(delivery.job_id, ".log"), flags)
        try:
            future.set_result(deliver(delivery, payload, env, log))
        except Exception as exc:  # a bug in one try must not stop the others
            future.set_result((False, f"error: {exc}", False))
        finally:
            if log is not None:
                log.close()
            self.wake()

    def _collect(self, now: datetime) -> None:
        for key, (delivery, future) in list(self.running.items()):
            if not future.done():
                continue
            del self.running[key]
            ok, status, final = future.result()
            self._note(delivery, ok, status, final, now)

    def _note(self, delivery: Delivery, ok: bool, status: str, final: bool, now: datetime) -> None:
        tries = delivery.tries + 1
        name = describe(delivery.target)
        last = ok or final or tries >= MAX_TRIES
        entry = {
            "target": name,
            "attempt": delivery.attempt,
            "at": format_time(now),
            "status": status if not last or ok else f"{status}; not tried again",
            "ok": ok,
            "tries": MAX_TRIES if final and not ok else tries,
        }

        def change(record: Job) -> bool:
            record.notified.append(entry)
            return True

        try:
            self.store.transition(delivery.job_id, change)
        except Exception as exc:
            self.log(f"{delivery.job_id}: could not note the notification ({exc})")
        desktop_missing = status.startswith("no desktop notifier")
        if not desktop_missing or not self.told_desktop:  # said once in the runner's log
            verb = "notified" if ok else "notification failed for"
            self.log(f"{verb} {delivery.job_id}: {name}: {entry['status']}")
        self.told_desktop = self.told_desktop or desktop_missing
        if last:
            self.settled.add(delivery.key)
        else:
            self.waiting[delivery.key] = now + timedelta(seconds=BACKOFF[delivery.tries])

    def close(self) -> None:
        """Stop: hook commands still running are stopped; their tries, not noted, are made
        again by the next runner."""
        for proc in list(HOOKS):
            stop_group(proc)


def _hook_env(store: Store, job: Job) -> dict[str, str]:
    env = environment(store, job, None, False)
    env.update(
        REPOWIRE_STATE=job.state.value,
        REPOWIRE_SUMMARY=job.result_summary or job.error or "",
    )
    return env
