"""`repowire agents create`: scaffold a worker folder."""

from __future__ import annotations

from typing import Any

import click

from repowire.cli.common import RepowireGroup, get_root, json_option, project, root_option

__all__ = ["agents", "backends", "mcp", "dashboard", "cron"]


@click.group(cls=RepowireGroup, short_help="Worker folders in .repowire/agents/.")
@root_option
def agents() -> None:
    """Worker folders in .repowire/agents/<name>/."""


@agents.command(short_help="Scaffold a worker folder (AGENTS.md, job.yaml).")
@root_option
@click.argument("name")
@click.option("--cron", metavar="EXPR", help="Also write a job.yaml template with this schedule.")
@click.option("--timezone", metavar="Z", help="IANA zone the cron expression is read in.")
@click.option("--backend", metavar="B", help="shell, codex, claude, gemini, opencode, or your own.")
@click.option("--command", metavar="C", help="A shell command for each run.")
@click.option("--prompt", metavar="T", help="The ask (default for an agent: AGENTS.md).")
def create(name: str, cron: str | None, timezone: str | None, **options: Any) -> None:
    """Create .repowire/agents/NAME/ with an AGENTS.md (and, with --cron, a job.yaml).

    \b
    Examples:
      repowire agents create daily-brief --cron "@daily" --backend codex
      repowire agents create nightly-report --cron "0 3 * * *" --command ./report.sh
    """
    folder = project().create_worker(name, cron, timezone=timezone, **options)
    click.echo(f"created {folder.relative_to(get_root())}")
    from repowire.api import library as functions

    warning = functions.cron_warning(cron) if cron else None
    if warning:
        click.echo(f"Warning: {warning}", err=True)


@agents.command(name="list", short_help="List worker folders with schedule and runs.")
@root_option
@json_option
def list_(as_json: bool) -> None:
    """List the worker folders: each template with its schedule, state, last and next run, and
    each folder for one-off jobs.

    \b
    Examples:
      repowire agents list
      repowire agents list --json
    """
    from repowire.api import library as functions
    from repowire.cli.render import ago, print_json, safe, table

    rows = functions.workers(get_root())
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("No worker folders yet. Create one with: repowire agents create NAME")
        return
    shown = [
        [r["name"], r["kind"], r["state"], r.get("cron", "-"), _last(r), ago(r.get("next_fire"))]
        for r in safe(rows)
    ]
    headers = ["NAME", "KIND", "STATE", "SCHEDULE", "LAST RUN", "NEXT"]
    click.echo(table(headers, shown, state_column=2))


def _last(row: dict[str, Any]) -> str:
    if row.get("error"):
        return str(row["error"])[:60]
    if not row.get("last_run"):
        return "-"
    return f"{row['last_run']} ({row.get('last_state') or '?'})"


@click.command(short_help="A cron expression in words, and its next fires.")
@root_option
@click.argument("expr", metavar="EXPR")
@click.option("--timezone", metavar="Z", help="IANA zone to read it in (default: the host's).")
@click.option("-n", "count", default=5, show_default=True, type=click.IntRange(1, 100))
@json_option
def cron(expr: str, timezone: str | None, count: int, as_json: bool) -> None:
    """Print a cron expression in words and its next fire times, as `systemd-analyze calendar`
    does. Six fields have seconds last; a Quartz-style expression (seconds first) is warned of.

    \b
    Examples:
      repowire cron "0 9 * * 1-5" --timezone Europe/Berlin
      repowire cron "* * * * * */10" -n 3
    """
    from repowire.api import library as functions
    from repowire.cli.render import print_json

    data = functions.cron_preview(expr, timezone, count)
    if as_json:
        print_json(data)
        return
    click.echo(f"{data['expression']}: {data['schedule']} ({data['timezone']})")
    for fire in data["next"]:
        click.echo(f"  {fire['local']}  {fire['utc']}")
    if data["warning"]:
        click.echo(f"Warning: {data['warning']}", err=True)


@click.command(short_help="List backends: their argv, resume and PATH.")
@root_option
@json_option
def backends(as_json: bool) -> None:
    """List every backend: what it runs, its resume form, and whether its program is on PATH.

    \b
    Examples:
      repowire backends
      repowire backends --json
    """
    from repowire.cli.render import print_backends, print_json

    rows = project().backends()
    if as_json:
        print_json(rows)
    else:
        print_backends(rows)


@click.command()
@root_option
def mcp() -> None:
    """Serve the job tools to a coding agent over MCP on stdio.

    Tools: job_create, job_list, job_status, job_show, job_update, job_result, job_logs,
    job_wait, job_cancel, job_retry, job_resume, job_run. Register it with your agent as
    docs/agents-and-mcp.md shows (user scope, so jobs in worker subfolders reach it).

    \b
    Example:
      claude mcp add -s user repowire -- repowire --root "$PWD" mcp
    """
    from repowire.mcp.server import serve

    serve(project())


@click.command(short_help="The Jobs view in a browser.")
@root_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@click.option("--token", metavar="T", help="Required on every request; needed off loopback.")
def dashboard(host: str, port: int, open_browser: bool, token: str | None) -> None:
    """The Jobs view in a browser: templates and jobs, run now, pause, retry and cancel.

    \b
    Examples:
      repowire dashboard --open
      repowire dashboard --host 0.0.0.0 --token "$(openssl rand -hex 16)"
    """
    from repowire.dashboard import is_loopback, serve

    if not is_loopback(host) and not token:
        raise click.UsageError(f"--host {host} is not loopback; give --token as well")
    serve(project(), host, port, token, open_browser)
