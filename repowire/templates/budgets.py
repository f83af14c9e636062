"""Budgets of templates: when the recorded spend of a template's runs in the current period
(a day, a week from Monday, or a month, in the template's time zone) reaches its `budget`, the
template is paused until the next period begins, or until someone resumes it by hand. A run
already going on is not stopped. The pause is runtime state, in the template's state.yaml."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from repowire.backends.usage import period_bounds, spend_of
from repowire.money import format_money
from repowire.record.job import Job
from repowire.record.template import Template
from repowire.templates.cron import zone
from repowire.times import format_time

__all__ = ["budget_step", "budget_paused", "spent_in_period"]


def budget_paused(state: dict[str, Any], now: datetime) -> bool:
    """Whether a budget pause holds the template now."""
    until = state.get("budget_paused_until")
    return isinstance(until, datetime) and until > now


def template_state(template: Template, state: dict[str, Any], now: datetime) -> str:
    """A template's one state, wherever it is shown or filtered: paused when disabled or
    held by its budget, else enabled."""
    return "paused" if not template.enabled or budget_paused(state, now) else "enabled"


def spent_in_period(
    template: Template, runs: Iterable[tuple[str | None, dict[str, Any] | None]], now: datetime
) -> tuple[dict[str, Any], datetime, datetime]:
    """What the template's runs (finished_at, usage) spent in the budget period holding now."""
    per = (template.budget or {}).get("per", "day")
    start, end = period_bounds(now, per, zone(template.timezone))
    return spend_of(runs, start, end), start, end


def _reached(template: Template, spent: dict[str, Any]) -> str | None:
    budget = template.budget or {}
    hit = []
    if "cost_usd" in budget and spent["cost_usd"] >= budget["cost_usd"]:
        hit.append(f"{format_money(spent['cost_usd'])} of {format_money(budget['cost_usd'])}")
    if "tokens" in budget and spent["tokens"] >= budget["tokens"]:
        hit.append(f"{spent['tokens']:,} of {budget['tokens']:,} tokens")
    return " and ".join(hit) or None


def budget_step(
    template: Template, runs: Callable[[], Iterable[Job]], state: dict[str, Any], now: datetime
) -> str | None:
    """Pause or resume the template by its budget, in `state`; a line for the log when it
    does either. `runs` gives the template's runs, asked for only when a spend is added up."""
    told = None
    until = state.get("budget_paused_until")
    if until is not None and (until <= now or not template.budget):
        for key in ("budget_paused_until", "paused_at", "paused_reason"):
            state.pop(key, None)
        why = "a new budget period began" if until <= now else "its budget was removed"
        told = f"resumed template {template.name}: {why}"
    waived = state.get("budget_waived_until")
    if waived is not None and waived <= now:
        state.pop("budget_waived_until")
    if not template.budget or budget_paused(state, now) or "budget_waived_until" in state:
        return told
    entries = [(format_time(j.finished_at) if j.finished_at else None, j.usage) for j in runs()]
    spent, _, end = spent_in_period(template, entries, now)
    reached = _reached(template, spent)
    if reached is None:
        return told
    local = end.astimezone(zone(template.timezone)).strftime("%Y-%m-%d %H:%M %Z")
    reason = f"budget reached: {reached} this {template.budget['per']}; resumes {local}"
    state.update(budget_paused_until=end, paused_at=now, paused_reason=reason)
    return f"paused template {template.name}: {reason}"
