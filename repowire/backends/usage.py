"""What agent runs spend: the usage each CLI reports, prices, sums, and budget periods. Pure.

A job's `usage` is a mapping of `input_tokens` (every prompt token, cached ones included),
`cached_input_tokens` (the part read from a cache), `output_tokens` (reasoning included),
`cost_usd`, `cost_estimated` (the cost was computed from config.yaml's prices) and `model`;
keys are present only where known. An output with no usage, or a malformed one, gives None.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any

from repowire.backends.presets import json_objects
from repowire.record.fields import USAGE_COUNTS
from repowire.store.listing_row import backend_of
from repowire.times import format_time

__all__ = [
    "TOKEN_KEYS",
    "read_usage",
    "add_usage",
    "less",
    "priced",
    "period_bounds",
    "PERIODS",
    "spend_of",
]

TOKEN_KEYS = USAGE_COUNTS  # input_tokens, cached_input_tokens, output_tokens
PERIODS = ("day", "week", "month")
Usage = dict[str, Any]


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return int(value)


def _money(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        return None
    return float(value)


def _at(value: Any, *path: str) -> Any:
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _clean(usage: Usage) -> Usage | None:
    """Only the keys that hold what they should; None when nothing is left."""
    out: Usage = {}
    for key in TOKEN_KEYS:
        if (count := _count(usage.get(key))) is not None:
            out[key] = count
    if (cost := _money(usage.get("cost_usd"))) is not None:
        out["cost_usd"] = round(cost, 6)
    if isinstance(usage.get("model"), str) and usage["model"].strip():
        out["model"] = usage["model"].strip()[:200]
    return out if any(k in out for k in (*TOKEN_KEYS, "cost_usd")) else None


def _sum(events: Iterable[Usage]) -> Usage | None:
    total: Usage = {}
    for event in events:
        for key, value in event.items():
            if key == "model":
                total[key] = value
            elif value is not None:
                total[key] = total.get(key, 0) + value
    return _clean(total)


def _claude(objects: list[Any]) -> Usage | None:
    """`claude -p --output-format json`: the result's usage (input without the cache
    counts, which are added here) and total_cost_usd; the model from modelUsage."""
    result = next((o for o in reversed(objects) if _at(o, "type") == "result"), None)
    if not isinstance(result, dict):
        return None
    found = result.get("usage")
    usage: dict[str, Any] = found if isinstance(found, dict) else {}
    parts = [_count(usage.get(k)) for k in ("input_tokens", "cache_creation_input_tokens")]
    cached = _count(usage.get("cache_read_input_tokens"))
    models = result.get("modelUsage")
    return _clean(
        {
            "input_tokens": sum(p or 0 for p in [*parts, cached]) if parts[0] is not None else None,
            "cached_input_tokens": cached,
            "output_tokens": usage.get("output_tokens"),
            "cost_usd": result.get("total_cost_usd"),
            "model": next(iter(models)) if isinstance(models, dict) and models else None,
        }
    )


def _codex(objects: list[Any]) -> Usage | None:
    """`codex exec --json`: the usage of each `turn.completed` event (input includes cached)."""
    turns = [o.get("usage") for o in objects if _at(o, "type") == "turn.completed"]
    return _sum(_clean(u) or {} for u in turns if isinstance(u, dict))


def _gemini(objects: list[Any]) -> Usage | None:
    """`gemini -o json`: stats.models.<model>.tokens (prompt includes cached; thoughts are
    billed as output); the model that used the most tokens names the run."""
    models = _at(objects[-1] if objects else None, "stats", "models")
    if not isinstance(models, dict):
        return None
    per_model = []
    for name, entry in models.items():
        tokens = _at(entry, "tokens")
        if not isinstance(tokens, dict):
            continue
        out = [_count(tokens.get(k)) for k in ("candidates", "thoughts")]
        per_model.append(
            {
                "input_tokens": _count(tokens.get("prompt")),
                "cached_input_tokens": _count(tokens.get("cached")),
                "output_tokens": sum(o or 0 for o in out) if out[0] is not None else None,
                "_total": _count(tokens.get("total")) or 0,
                "model": name,
            }
        )
    if not per_model:
        return None
    top = max(per_model, key=lambda m: m.pop("_total"))["model"]
    total = _sum(per_model)
    return {**total, "model": top} if total else None


def _opencode(objects: list[Any]) -> Usage | None:
    """`opencode run --format json`: tokens and cost of each step_finish event (its input
    leaves out cache reads and writes, added here; reasoning is output)."""
    steps = []
    for event in objects:
        part = _at(event, "part")
        if _at(event, "type") != "step_finish" or not isinstance(_at(part, "tokens"), dict):
            continue
        tokens = part["tokens"]
        read, write = (_count(_at(tokens, "cache", k)) for k in ("read", "write"))
        given = _count(tokens.get("input"))
        out = [_count(tokens.get(k)) for k in ("output", "reasoning")]
        steps.append(
            {
                "input_tokens": None if given is None else given + (read or 0) + (write or 0),
                "cached_input_tokens": read,
                "output_tokens": sum(o or 0 for o in out) if out[0] is not None else None,
                "cost_usd": _money(part.get("cost")),
            }
        )
    return _sum(steps)


_PRESETS: dict[str, Callable[[list[Any]], Usage | None]] = {
    "claude": _claude,
    "codex": _codex,
    "gemini": _gemini,
    "opencode": _opencode,
}


def _by_keys(objects: list[Any], keys: Mapping[str, str]) -> Usage | None:
    """A configured backend's usage: each of our keys at the dotted key it names, in the last
    JSON object of the output that has it."""
    found: Usage = {}
    for ours, dotted in keys.items():
        for obj in reversed(objects):
            value = _at(obj, *dotted.split("."))
            if value is not None:
                found[ours] = value
                break
    return _clean(found)


def read_usage(
    preset: str | None, usage_keys: Mapping[str, str] | None, output: str
) -> Usage | None:
    """What one attempt used, read from its output: by `usage_keys` when the backend names
    them, else by the preset's own format. Never raises on what the output holds."""
    try:
        objects = json_objects(output)
        if usage_keys:
            return _by_keys(objects, usage_keys)
        reader = _PRESETS.get(preset or "")
        return reader(objects) if reader and objects else None
    except (TypeError, ValueError, AttributeError, KeyError):
        return None


def priced(
    usage: Usage | None, prices: Mapping[str, Mapping[str, float]], backend: str
) -> Usage | None:
    """The usage with a cost computed from prices (USD per million tokens; by model, else by
    backend name) when the CLI gave tokens but no cost; marked as an estimate."""
    if not usage or "cost_usd" in usage:
        return usage
    price = prices.get(str(usage.get("model"))) or prices.get(backend)
    if not price or not any(k in usage for k in TOKEN_KEYS):
        return usage
    cached = usage.get("cached_input_tokens", 0)
    fresh = max(usage.get("input_tokens", 0) - cached, 0)
    cost = (
        fresh * price.get("input", 0.0)
        + cached * price.get("cached_input", price.get("input", 0.0))
        + usage.get("output_tokens", 0) * price.get("output", 0.0)
    ) / 1_000_000
    return {**usage, "cost_usd": round(cost, 6), "cost_estimated": True}


def less(total: Usage | None, earlier: Usage | None) -> Usage | None:
    """A run's own usage, from a CLI's running total for its session and what the session's
    earlier runs recorded."""
    if not total or not earlier:
        return total
    out = dict(total)
    for key in (*TOKEN_KEYS, "cost_usd"):
        if key in out and key in earlier:
            value = max(out[key] - earlier[key], 0)
            out[key] = round(value, 6) if key == "cost_usd" else value
    return out


def add_usage(before: Usage | None, more: Usage | None) -> Usage | None:
    """A job's usage over its attempts: tokens and costs added, the latest model kept."""
    if not before or not more:
        return more or before
    total = _added([before, more])
    del total["runs"]
    model = more.get("model") or before.get("model")
    return {**total, "model": model} if model else total


def period_bounds(now: datetime, per: str, tz: tzinfo) -> tuple[datetime, datetime]:
    """The budget period holding `now` (aware), as aware UTC times [start, end): the day,
    the week from Monday, or the month, in the zone `tz`, across DST changes."""
    local = now.astimezone(tz)
    day = local.date()
    if per == "week":
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
    elif per == "month":
        first = day.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
    else:
        first, after = day, day + timedelta(days=1)
    return _midnight(first, tz), _midnight(after, tz)


def _midnight(day: date, tz: tzinfo) -> datetime:
    """The first instant of a local day, in UTC. A midnight that DST skips is read with the
    offset before the change, which is the first instant of that day; a midnight that comes
    twice is its first time."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(timezone.utc)


def spend_of(
    runs: Iterable[tuple[str | None, Mapping[str, Any] | None]], since: datetime, until: datetime
) -> Usage:
    """Cost and tokens of the runs (finished_at as text, usage) that ended in [since, until)."""
    low, high = format_time(since), format_time(until)
    total: Usage = {"runs": 0, "cost_usd": 0.0, "tokens": 0}
    for ended, usage in runs:
        if not usage or not isinstance(ended, str) or not low <= ended < high:
            continue
        total["runs"] += 1
        total["cost_usd"] = round(total["cost_usd"] + usage.get("cost_usd", 0.0), 6)
        total["tokens"] += usage.get("input_tokens", 0) + usage.get("output_tokens", 0)
    return total


def report(
    records: Iterable[Mapping[str, Any]],
    since: datetime | None,
    by: str,
    tz: tzinfo,
    sums: Iterable[tuple[str, Usage]] = (),
) -> dict[str, Any]:
    """`repowire usage`: runs, tokens and cost of the records that hold usage and ended
    since `since`, one row per template (one-off jobs together), backend, or local day.
    `sums` are groups added up already (the listing index's), with their `runs`: per
    template, per backend, or per 15 minutes of UTC (day)."""
    low = format_time(since) if since is not None else ""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        usage, ended = record.get("usage"), record.get("finished_at")
        if usage and isinstance(ended, str) and ended >= low:
            groups.setdefault(_group(record, by, ended, tz), []).append(usage)
    for key, summed in sums:
        groups.setdefault(_local_day(key, tz) if by == "day" else key, []).append(summed)
    rows = [{by: key, **_added(usages)} for key, usages in groups.items()]
    rows.sort(key=lambda r: str(r[by]), reverse=by == "day")
    total = _added([u for usages in groups.values() for u in usages])
    return {"since": low or None, "by": by, "rows": rows, "total": total}


def _added(usages: list[Mapping[str, Any]]) -> Usage:
    """Runs, tokens and cost of a group of usages (a usage with `runs` stands for that many
    runs), keys present where any run had them."""
    out: Usage = {"runs": sum(int(u.get("runs", 1)) for u in usages)}
    for name in (*TOKEN_KEYS, "cost_usd"):
        values = [u[name] for u in usages if name in u]
        if values:
            out[name] = round(sum(values), 6) if name == "cost_usd" else sum(values)
    if any(u.get("cost_estimated") for u in usages):
        out["cost_estimated"] = True
    return out


def _local_day(moment: str, tz: tzinfo) -> str:
    """The local day of a UTC time written as text (ISO-8601, with or without Z)."""
    parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(tz).date().isoformat()


def _group(record: Mapping[str, Any], by: str, ended: str, tz: tzinfo) -> str:
    if by == "backend":
        return backend_of(record)
    if by == "day":
        return _local_day(ended, tz)
    return str(record.get("template") or "(one-off jobs)")
