"""What people look up before they schedule: a cron expression in words with its next fires
(`repowire cron`), and the worker folders of a root (`repowire agents list`)."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from repowire.errors import shown
from repowire.record.job import Invalid
from repowire.store.records import Store
from repowire.templates.budgets import template_state
from repowire.templates.cron import describe, next_fires, validate_cron, zone
from repowire.times import format_time

__all__ = ["cron_preview", "quartz_warning", "workers"]


def quartz_warning(expr: str) -> str | None:
    """A warning when a six-field expression looks written for Quartz (seconds first), which
    repowire would read with seconds last: `0 */5 * * * *`, and `*/10 * * * * *`, which reads
    as every second of every tenth minute (60 runs in a burst) where every 10 s was meant."""
    fields = expr.split()
    if len(fields) != 6:
        return None
    first = fields[0].isdigit() or fields[0].startswith("*/")
    if "?" in fields or (first and fields[5] in ("*", "?")):
        return (
            f"{shown(expr)} looks Quartz-style (seconds first); repowire reads seconds last, so "
            f"'{' '.join(fields[1:])} {fields[0]}' may be what you mean"
        )
    return None


def cron_preview(expr: str, timezone: str | None, count: int, now: datetime) -> dict[str, Any]:
    """The expression in words and its next `count` fire times, local to its zone and UTC."""
    validate_cron(expr)
    tz = zone(timezone)
    fires = next_fires(expr, tz, now, count)
    return {
        "expression": expr,
        "schedule": describe(expr),
        "timezone": timezone or str(getattr(tz, "key", None) or tz),
        "next": [{"local": f.astimezone(tz).isoformat(), "utc": format_time(f)} for f in fires],
        "warning": quartz_warning(expr),
    }


def workers(store: Store, now: datetime) -> list[dict[str, Any]]:
    """Every worker folder: a template (with its schedule, state, last and next run) or a
    folder for one-off jobs."""
    from repowire.templates.storage import list_templates, read_state

    rows: list[dict[str, Any]] = []
    for item in list_templates(store):
        if isinstance(item, Invalid):
            rows.append(
                {"name": item.id, "kind": "template", "state": "invalid", "error": item.error}
            )
            continue
        state = read_state(store, item.name)
        later = now - item.offset
        nxt = next_fires(item.cron, zone(item.timezone), later, 1)[0] if item.enabled else None
        nxt = nxt + item.offset if nxt else None
        rows.append(
            {
                "name": item.name,
                "kind": "template",
                "state": template_state(item, state, now),
                "cron": item.cron,
                "schedule": describe(item.cron),
                "last_run": state.get("last_run"),
                "last_state": state.get("last_state"),
                "next_fire": format_time(nxt) if nxt else None,
            }
        )
    templates = {row["name"] for row in rows}
    for name in _folders(store):
        if name not in templates:
            rows.append({"name": name, "kind": "one-off", "state": "-"})
    return sorted(rows, key=lambda row: str(row["name"]))


def _folders(store: Store) -> list[str]:
    try:
        entries = list(os.scandir(store.agents_dir))
    except FileNotFoundError:
        return []
    return [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]
