"""What the faces show: records and template views as the JSON every face prints, and listings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from repowire import clock
from repowire.errors import JobNotFound, RepowireError
from repowire.files import MAX_FILE_BYTES, open_file, read_tail
from repowire.record.job import Invalid, Job, job_from_record, job_to_dict
from repowire.record.states import State
from repowire.record.template import Template, template_to_dict
from repowire.store.records import Store

if TYPE_CHECKING:
    from repowire.store.listing_row import Row
from repowire.times import format_time

__all__ = [
    "Listing",
    "listing",
    "filtered",
    "listing_text",
    "as_dict",
    "template_view",
    "overview",
    "result_of",
    "with_waits",
    "dependency_states",
]


@dataclass
class Listing:
    """What `jobs list` shows: templates and job records, broken files among them as invalid."""

    templates: list[Template | Invalid]
    rows: list[Row]  # job records, oldest first
    runs: dict[str, list[Row]]  # each template's runs, whatever the filters

    @property
    def records(self) -> list[dict[str, Any]]:
        return [row.record for row in self.rows]

    @property
    def jobs(self) -> list[Job | Invalid]:
        return [_item(record) for record in self.records]

    def recent(self, limit: int | None, since: float | None, now: datetime) -> Listing:
        """Only the jobs changed in the last `since` seconds (a hand-written record with no
        times: its file's), and of them the newest `limit`."""
        rows = self.rows
        if since is not None:
            cutoff = (now - timedelta(seconds=since)).timestamp()
            rows = [r for r in rows if r.changed_at >= cutoff]
        if limit is not None:
            rows = rows[-limit:] if limit else []
        return Listing(self.templates, rows, self.runs)

    def only(
        self, now: datetime, ready: bool = False, blocked: bool = False, label: str | None = None
    ) -> Listing:
        """Queued jobs that may start now (ready), or that wait for others (blocked), and jobs
        and templates with a label."""
        rows, templates = self.rows, self.templates
        if ready:
            rows = [r for r in rows if r.state == "queued" and _ready(r.record, now)]
        if blocked:
            rows = [r for r in rows if r.state == "queued" and _waits_for_jobs(r.record)]
        if label is not None:
            rows = [r for r in rows if label in (r.record.get("labels") or [])]
            templates = [
                t
                for t in templates
                if isinstance(t, Template) and label in (t.definition.get("labels") or [])
            ]
        return Listing(templates, rows, self.runs)

    def _templates(self, store: Store) -> list[dict[str, Any]]:
        return [
            as_dict(store, t, self.runs.get(getattr(t, "name", ""), [])) for t in self.templates
        ]

    def as_json(self, store: Store) -> dict[str, Any]:
        """`jobs list --json`: {"templates": [...], "jobs": [...]}, secrets masked."""
        return {"templates": self._templates(store), "jobs": [masked(r) for r in self.records]}

    def json_text(self, store: Store) -> str:
        """as_json as text, one template or job a line: the records' text is not decoded."""
        import json  # imported here: most commands print no JSON

        templates = [json.dumps(t, ensure_ascii=False, default=str) for t in self._templates(store)]
        jobs = [_masked_text(row) for row in self.rows]
        return "".join(
            ['{\n  "templates": [', *_lines(templates), '],\n  "jobs": [', *_lines(jobs), "]\n}"]
        )


def _lines(items: list[str]) -> list[str]:
    """One item a line, as the parts of a text joined once (a long listing is large)."""
    return ["\n    ", ",\n    ".join(items), "\n  "] if items else []


def listing(store: Store, state: str | None, template: str | None) -> Listing:
    """Templates, job records (filtered, oldest first) and each template's runs."""
    from repowire.store.listing_row import Row
    from repowire.templates.storage import list_templates

    if state is not None and state not in ("invalid", "enabled", "paused"):
        State(state)  # the faces check choices; scripts get a ValueError
    rows = every = store.list_rows(by_id=False)  # sorted by age below
    runs: dict[str, list[Row]] = {}
    for row in rows:
        if row.template:
            runs.setdefault(row.template, []).append(row)
    templates: list[Template | Invalid] = list_templates(store)
    if template is not None:
        if not any(_name(t) == template for t in templates) and template not in runs:
            raise JobNotFound(f"no template named {template} (see 'repowire jobs list')")
        rows = [r for r in rows if r.template == template]
        templates = [t for t in templates if _name(t) == template]
    if state is not None:  # both tables: a template's state is enabled, paused or invalid
        rows = [r for r in rows if r.state == state]
        templates = [t for t in templates if _template_state(store, t) == state]
    waiting = [row for row in rows if row.state == "queued" and _waits(row.record)]
    if waiting:
        states = {row.id: row.state for row in every}  # before any filter
        for row in waiting:
            row.replace(with_waits(row.record, states))
    Row.sort_by_age(rows)
    return Listing(templates, rows, runs)


def filtered(
    store: Store,
    state: str | None = None,
    template: str | None = None,
    *,
    limit: int | None = None,
    since: float | None = None,
    **only: Any,
) -> Listing:
    """What `jobs list` lists: jobs and templates in `state`, of `template`, changed in the
    last `since` seconds, the newest `limit` of them; `only` as Listing.only takes it. The
    filters only jobs have (limit, since, ready, blocked) leave the templates out."""
    found: Listing | None = None
    if limit is not None and state is None and template is None and since is None:
        if not any(only.values()):
            found = _newest(store, limit)  # at the cost of what it shows
    if found is None:
        found = listing(store, state, template).only(clock.now(), **only)
        found = found.recent(limit, since, clock.now())
    jobs_only = limit is not None or since is not None or only.get("ready") or only.get("blocked")
    return Listing([], found.rows, found.runs) if jobs_only else found


def listing_text(store: Store, *args: Any, **filters: Any) -> str:
    """filtered(...) as JSON text."""
    return filtered(store, *args, **filters).json_text(store)


def _newest(store: Store, limit: int) -> Listing | None:
    """listing(store, None, None).recent(limit, None, now) from the index (newest.py)."""
    from repowire.store.limited_listing import newest
    from repowire.templates.storage import list_templates

    templates: list[Template | Invalid] = list_templates(store)
    found = newest(store, limit, [_name(t) for t in templates if isinstance(t, Template)])
    if found is None:
        return None
    rows, runs = found
    after = {i for row in rows if row.state == "queued" for i in row.record.get("after") or ()}
    if after:
        states = {row.id: row.state for row in store.rows_of(sorted(after))}
        for row in rows:
            if row.state == "queued" and _waits(row.record):
                row.replace(with_waits(row.record, states))
    return Listing(templates, rows, runs)


def _waits(record: dict[str, Any]) -> bool:
    """Whether a queued record may wait for something: other jobs, or its run_if."""
    return bool(record.get("after") or record.get("run_if"))


def _waits_for_jobs(record: dict[str, Any]) -> bool:
    return any(name != "run_if" for name in record.get("waiting_for") or ())


def _ready(record: dict[str, Any], now: datetime) -> bool:
    """May start now: due, and waiting for no other job (a run_if is checked at the start)."""
    return not _waits_for_jobs(record) and job_from_record(record).is_due(now)


def dependency_states(store: Store, job_ids: list[str]) -> dict[str, str]:
    """The states of the named jobs that exist (for one job's `waiting_for`)."""
    loaded = (store.load(job_id) for job_id in job_ids)
    return {job.id: job.state.value for job in loaded if isinstance(job, Job)}


def with_waits(record: dict[str, Any], states: Mapping[str, str]) -> dict[str, Any]:
    """A queued job's record gains `waiting_for`: the jobs of its `after` it still waits for
    (from the states of the jobs it names), then `run_if` when it has a precondition (checked
    by the runner, off its loop, before the job starts)."""
    from repowire.record.dependencies import readiness

    if record["state"] != "queued" or not _waits(record):
        return record
    waiting: list[str] = []
    if record.get("after"):
        found = readiness(record["after"], record.get("on_dependency_failure"), states)
        waiting = list(found.waiting_for)
    if record.get("run_if"):
        waiting.append("run_if")
    return {**record, "waiting_for": waiting}


def _template_state(store: Store, item: Template | Invalid) -> str:
    if isinstance(item, Invalid):
        return "invalid"
    from repowire.templates.budgets import template_state
    from repowire.templates.storage import read_state

    return template_state(item, read_state(store, item.name), clock.now())


def _name(item: Template | Invalid) -> str:
    return item.name if isinstance(item, Template) else item.id


def _item(record: dict[str, Any]) -> Job | Invalid:
    if record["state"] == "invalid":
        return Invalid(record["id"], record.get("path", ""), record.get("error", ""))
    return job_from_record(record)


def _created_key(row: Row) -> tuple[float, str]:
    return (row.created or 0.0, row.id)


SECRET_MASK = "********"


def masked(record: dict[str, Any]) -> dict[str, Any]:
    """A record or template as the faces show it: each webhook's `secret` masked (the record
    keeps it; `secret_env` names a variable, and is shown)."""
    targets = record.get("notify")
    if not isinstance(targets, list) or not any(
        isinstance(t, dict) and "secret" in t for t in targets
    ):
        return record
    hidden = [
        {**t, "secret": SECRET_MASK} if isinstance(t, dict) and "secret" in t else t
        for t in targets
    ]
    return {**record, "notify": hidden}


def _masked_text(row: Row) -> str:
    """A row's JSON text, decoded and masked only when it may carry a secret."""
    if '"secret"' not in row.text:
        return row.text
    import json

    return json.dumps(masked(row.record), ensure_ascii=False, default=str)


def as_dict(
    store: Store, item: Job | Template | Invalid, runs: list[Row] | None = None
) -> dict[str, Any]:
    """The JSON form every face prints: a job record, a template view, or an invalid entry;
    secrets masked."""
    if isinstance(item, Job):
        return masked(job_to_dict(item, with_id=True))
    if isinstance(item, Template):
        return masked(template_view(store, item, runs))
    return item.to_dict()


def template_view(
    store: Store, template: Template, runs: list[Row] | None = None, limit: int = 10
) -> dict[str, Any]:
    """A template as `jobs show` presents it: definition, next fires, recent runs, skipped slots.

    `runs` are the template's runs when the caller has read them already."""
    from repowire.templates.budgets import template_state
    from repowire.templates.cron import describe, next_fires, zone
    from repowire.templates.storage import read_state, template_dir

    tz = zone(template.timezone)
    shift = template.offset  # jitter: the real fire times
    fires = next_fires(template.cron, tz, clock.now() - shift, 5)
    fires = [f + shift for f in fires]
    if runs is None:
        runs = [row for row in store.list_rows() if row.template == template.name]
    state = read_state(store, template.name)
    paused = template_state(template, state, clock.now()) == "paused"
    return {
        "id": template.name,
        "kind": "template",
        "path": str(template_dir(store, template.name).relative_to(store.root)),
        "state": "paused" if paused else "enabled",
        **template_to_dict(template),
        "timezone": template.timezone or str(getattr(tz, "key", None) or tz),
        "schedule": describe(template.cron),
        "next_fires": [
            {"utc": format_time(f), "local": f.astimezone(tz).isoformat()}
            for f in (fires if not paused else [])
        ],
        "recent_runs": [r.record for r in sorted(runs, key=_created_key, reverse=True)[:limit]],
        "last_fire": _text_time(state.get("last_fire")),
        "last_run": state.get("last_run"),
        "session_id": state.get("session_id"),
        "paused_at": _text_time(state.get("paused_at")) if paused else None,
        "paused_reason": state.get("paused_reason") if paused else None,
        "usage": template_spend(template, [r.brief for r in runs]),
        "skipped_total": state.get("skipped_total", 0),
        "skipped": [{k: _text_time(v) for k, v in s.items()} for s in state.get("skipped", [])],
    }


def template_spend(template: Template, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """What a template's runs spent today (in its zone), in the last 7 and 30 days, and in
    its budget's current period."""
    from repowire.backends.usage import period_bounds, spend_of
    from repowire.templates.budgets import spent_in_period
    from repowire.templates.cron import zone

    now = clock.now()
    entries = [(r.get("finished_at"), r.get("usage")) for r in runs]
    today = period_bounds(now, "day", zone(template.timezone))[0]
    out = {
        "today": spend_of(entries, today, now + timedelta(seconds=1)),
        "last_7_days": spend_of(entries, now - timedelta(days=7), now + timedelta(seconds=1)),
        "last_30_days": spend_of(entries, now - timedelta(days=30), now + timedelta(seconds=1)),
    }
    if template.budget:
        spent, start, end = spent_in_period(template, entries, now)
        out["budget"] = {
            **template.budget,
            "spent": spent,
            "period": [_text_time(start), _text_time(end)],
        }
    return out


def _text_time(value: Any) -> Any:
    return format_time(value) if isinstance(value, datetime) else value


def overview(store: Store, trusted: bool, runners: list[dict[str, Any]]) -> dict[str, Any]:
    """`repowire status`: who serves the root, counts by state, what runs, what fires next."""
    from repowire.templates.budgets import budget_paused
    from repowire.templates.cron import next_fires, zone
    from repowire.templates.storage import list_templates, read_state

    records = [row.record for row in store.list_rows()]
    counts: dict[str, int] = {s.value: 0 for s in State}
    counts["invalid"] = 0
    for record in records:
        counts[record["state"]] = counts.get(record["state"], 0) + 1
    fires = []
    invalid = [r for r in records if r["state"] == "invalid"]
    for item in list_templates(store):
        if isinstance(item, Invalid):
            invalid.append(item.to_dict())
        elif item.enabled and not budget_paused(read_state(store, item.name), clock.now()):
            at = next_fires(item.cron, zone(item.timezone), clock.now() - item.offset, 1)[0]
            at += item.offset
            fires.append({"template": item.name, "at": format_time(at)})
    invalid += _config_problem(store)
    return {
        "root": str(store.root),
        "trusted": trusted,
        "served": bool(runners),
        "runners": runners,
        "counts": counts,
        "running": [
            {"id": r["id"], "name": r.get("name", r["id"]), "started_at": r.get("started_at")}
            for r in records
            if r["state"] == "running"
        ],
        "next_fires": sorted(fires, key=lambda f: f["at"])[:5],
        "invalid": [{k: r.get(k) for k in ("id", "path", "error")} for r in invalid],
    }


def _config_problem(store: Store) -> list[dict[str, Any]]:
    """config.yaml as a problem of the root when it cannot be read (a runner keeps its last
    good settings, or does not start)."""
    from repowire.store.config import load_config

    try:
        load_config(store.root)
    except RepowireError as exc:
        error = str(exc).removeprefix(f"{store.base / 'config.yaml'}: ")  # the path is shown
        return [{"id": "config.yaml", "path": ".repowire/config.yaml", "error": error}]
    return []


def result_of(store: Store, job: Job) -> dict[str, Any]:
    """`jobs result --json`: the summary and the result file's text, with state and error."""
    path = store.sibling(job.id, ".result.md")
    try:
        text: str | None = read_tail(path, MAX_FILE_BYTES) if path.exists() else None
    except FileNotFoundError:
        text = None
    return {
        "id": job.id,
        "state": job.state.value,
        "result_summary": job.result_summary,
        "result_file": str(path) if text is not None else None,
        "result": text,
        "error": job.error,
        "exit_code": job.exit_code,
    }


def log_chunk(store: Store, job_id: str, offset: int, limit: int) -> tuple[bytes, int]:
    """`limit` bytes of a job's log from offset (negative: from the end), and where they end."""
    try:
        with open_file(store.sibling(job_id, ".log")) as handle:
            size = handle.seek(0, 2)
            start = max(0, size + offset) if offset < 0 else min(offset, size)
            handle.seek(start)
            data = handle.read(limit)
    except FileNotFoundError:
        return b"", 0
    return data, start + len(data)
