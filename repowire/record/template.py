"""A recurring template, agents/<name>/job.yaml, as plain data, and its serialising. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from repowire.record.job import plain
from repowire.times import parse_duration

__all__ = ["Template", "TEMPLATE_FIELDS", "template_to_dict"]

TEMPLATE_FIELDS = (
    "cron",
    "timezone",
    "enabled",
    "overlap",
    "catchup",
    "starting_deadline",
    "keep_runs",
    "jitter",
    "then",
    "then_on_failure",
    "budget",
)


@dataclass
class Template:
    """A recurring worker: .repowire/agents/<name>/job.yaml."""

    name: str
    cron: str
    definition: dict[str, Any] = field(default_factory=dict)
    timezone: str | None = None
    enabled: bool = True
    continuity: str = "resume"
    overlap: str = "skip"
    catchup: str = "latest"
    starting_deadline: str | float | None = None
    keep_runs: int = 100
    jitter: str | float | None = None
    then: list[str] = field(default_factory=list)  # templates fired when a run succeeds
    then_on_failure: list[str] = field(default_factory=list)  # ... when a run fails
    budget: dict[str, Any] | None = None  # {cost_usd, tokens, per}: pause when reached

    @property
    def offset_span(self) -> float:
        """The jitter in seconds (0 without one)."""
        return 0.0 if self.jitter is None else parse_duration(self.jitter)

    @property
    def offset(self) -> timedelta:
        """Where in [0, jitter) this template fires after each slot: derived from its name, so
        it is the same at every fire (and a fleet of @hourly templates spreads out)."""
        if self.jitter is None:
            return timedelta(0)
        span_ms = int(parse_duration(self.jitter) * 1000)
        import hashlib  # imported here: most commands never need it

        digest = int(hashlib.sha256(self.name.encode()).hexdigest()[:12], 16)
        return timedelta(milliseconds=digest % span_ms) if span_ms else timedelta(0)


def template_to_dict(template: Template) -> dict[str, Any]:
    """The template's job.yaml content as plain data, defaults left out."""
    defaults = Template(name=template.name, cron="")
    out = dict(template.definition)
    for key in TEMPLATE_FIELDS:
        value = getattr(template, key)
        if key == "cron" or value != getattr(defaults, key):
            out[key] = value
    if template.continuity != defaults.continuity:
        out["continuity"] = template.continuity
    return {key: plain(value) for key, value in out.items()}
