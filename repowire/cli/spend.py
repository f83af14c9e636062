"""`repowire usage`: what agent runs used, by template, backend or day."""

from __future__ import annotations

from typing import Any

import click

from repowire.cli.common import duration, json_option, project, root_option
from repowire.cli.render import money, print_json, table

__all__ = ["usage"]


_HEADERS = ["RUNS", "INPUT", "CACHED", "OUTPUT", "COST"]


@click.command(short_help="Tokens and cost of agent runs, by template, backend or day.")
@root_option
@click.option(
    "--since", metavar="D", callback=duration, help="Only runs that ended in the last D (7d)."
)
@click.option(
    "--by",
    type=click.Choice(["template", "backend", "day"]),
    default="template",
    show_default=True,
    help="One row per template (one-off jobs together), backend, or day ended (local time).",
)
@json_option
def usage(since: float | None, by: str, as_json: bool) -> None:
    """Print what agent runs used: runs, input, cached and output tokens, and cost, one row
    per template, backend or day, with a total. Costs marked * are estimates from
    config.yaml's prices.

    \\b
    Examples:
      repowire usage
      repowire usage --since 7d --by day
      repowire usage --by backend --json
    """
    report = project().usage(since, by)
    if as_json:
        print_json(report)
        return
    rows = report["rows"]
    if not rows:
        click.echo(
            "No recorded usage" + (f" since {report['since']}" if report.get("since") else "") + "."
        )
        return
    lines = [_row(r[by], r) for r in rows] + [_row("total", report["total"])]
    click.echo(table([by.upper(), *_HEADERS], lines))


def _row(name: str, entry: dict[str, Any]) -> list[str]:
    cost = money(entry.get("cost_usd")) + ("*" if entry.get("cost_estimated") else "")
    counts = [
        f"{entry.get(k, 0):,}" for k in ("input_tokens", "cached_input_tokens", "output_tokens")
    ]
    return [name, str(entry.get("runs", 0)), *counts, cost]
