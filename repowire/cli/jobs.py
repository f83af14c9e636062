"""`repowire jobs ...`: create, inspect, update, cancel and retry jobs and templates."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from repowire.cli.common import (
    RepowireGroup,
    complete_names,
    duration,
    json_option,
    print_new,
    project,
    root_option,
    warn_unserved,
)
from repowire.record.states import ENDED_BADLY, State

if TYPE_CHECKING:
    from repowire.api.project import Project

STATES = [state.value for state in State]


@click.group(
    cls=RepowireGroup,
    short_help="Create, follow, cancel and retry jobs.",
    lazy={
        **dict.fromkeys(["logs", "wait"], "run"),
        **dict.fromkeys(["rm", "prune", "rerun", "diff"], "tidy"),
    },
)
@root_option
def jobs() -> None:
    """Create, inspect, update, cancel and retry jobs and recurring templates."""


def _env_pairs(values: tuple[str, ...]) -> dict[str, str]:
    env = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--env")
        env[key] = value
    return env


@jobs.command(short_help="Create a job, or with --cron a template.")
@root_option
@click.argument("name")
@click.option("--command", "command", metavar="C", help="A shell command (run by /bin/sh -c).")
@click.option("--backend", metavar="B", help="shell, codex, claude, gemini, opencode, or your own.")
@click.option("--path", metavar="P", help="The worker folder and working directory, from the root.")
@click.option("--prompt", metavar="T", help="The ask for an agent backend.")
@click.option("--prompt-file", metavar="F", help="A file holding the ask, relative to --path.")
@click.option("--cron", metavar="EXPR", help="Make a recurring template instead of a one-off job.")
@click.option("--timezone", metavar="Z", help="IANA zone the cron expression is read in.")
@click.option(
    "--continuity",
    type=click.Choice(["fresh", "resume"]),
    help="resume: continue the previous run's agent session (default for templates).",
)
@click.option("--timeout", metavar="D", help="Wall-clock limit: 30s, 10m, 2h, 1d.")
@click.option("--retries", type=click.IntRange(min=0), help="Automatic retries after a failure.")
@click.option("--due-at", metavar="T", help="Not before this time: ISO-8601, or 10m, 2h from now.")
@click.option(
    "--env", "env", metavar="K=V", multiple=True, help="An environment variable (repeat)."
)
@click.option("--id", "job_id", metavar="ID", help="Choose the job id instead of generating one.")
@click.option(
    "--after",
    metavar="ID",
    multiple=True,
    shell_complete=complete_names,
    help="Start only when this job has succeeded (repeat).",
)
@click.option(
    "--on-dependency-failure",
    type=click.Choice(["cancel", "run"]),
    help="When a job it waits for fails: cancel this one (default), or run it anyway.",
)
@click.option("--priority", type=click.IntRange(min=0), help="Higher starts first (default 0).")
@click.option("--label", "labels", metavar="L", multiple=True, help="A label (repeat).")
@click.option(
    "--workspace",
    type=click.Choice(["inplace", "worktree"]),
    help="worktree: each run works in a git worktree, on a branch of its own (default inplace).",
)
@click.option("--base", metavar="REF", help="The commit a worktree run starts from (default HEAD).")
@click.option(
    "--keep-worktree",
    is_flag=True,
    default=None,
    help="Keep a worktree run's folder when it ends (default: removed, the branch kept).",
)
@json_option
def create(
    name: str,
    cron: str | None,
    timezone: str | None,
    job_id: str | None,
    env: tuple[str, ...],
    as_json: bool,
    **options: Any,
) -> None:
    """Create a queued job (or, with --cron, a recurring template); print its id.

    \b
    Examples:
      repowire jobs create "Build docs" --command "make docs" --timeout 10m
      repowire jobs create "Daily brief" --path .repowire/agents/daily-brief \\
          --backend codex --cron "@daily" --prompt "Prepare the brief."
      repowire jobs create "Deploy" --command ./deploy.sh --after job-build --priority 5
      repowire jobs create "Fix lint" --backend claude --path . --workspace worktree \\
          --prompt "Fix the lint errors and commit."
    """
    options["after"] = list(options.pop("after") or ()) or None
    options["labels"] = list(options.pop("labels") or ()) or None
    here = project()
    item = here.create(
        name, cron=cron, timezone=timezone, job_id=job_id, env=_env_pairs(env), **options
    )
    from repowire.api.project import name_of

    missing = here.backend_warning(options.get("backend"))
    if missing:
        click.echo(f"Warning: {missing}", err=True)
    if cron is not None:
        from repowire.api.library import cron_warning

        warning = cron_warning(cron)
        if warning:
            click.echo(f"Warning: {warning}", err=True)
    print_new(here, name_of(item), as_json)


@jobs.command(name="list", short_help="List templates and jobs.")
@root_option
@click.option(
    "--state",
    type=click.Choice([*STATES, "invalid", "enabled", "paused"]),
    help="Only jobs and templates in this state.",
)
@click.option("--template", metavar="T", help="Only this template and its runs.")
@click.option("--limit", type=click.IntRange(min=0), metavar="N", help="Only the newest N jobs.")
@click.option(
    "--since", metavar="D", callback=duration, help="Only jobs changed in the last D (1h)."
)
@click.option("-q", "--quiet", is_flag=True, help="Job ids only, one a line (for shell loops).")
@click.option("--watch", is_flag=True, help="Redraw whenever a job or template changes.")
@click.option("--utc", is_flag=True, help="Times in UTC instead of local time.")
@click.option("--ready", is_flag=True, help="Only queued jobs that may start now.")
@click.option("--blocked", is_flag=True, help="Only queued jobs waiting for other jobs.")
@click.option("--label", metavar="L", help="Only jobs and templates with this label.")
@json_option
def list_(as_json: bool, quiet: bool, watch: bool, utc: bool, **filters: Any) -> None:
    """List templates and jobs (broken files appear as `invalid` with their problem).

    \b
    Examples:
      repowire jobs list
      repowire jobs list --state failed --json
      repowire jobs list --since 1h --limit 20 --watch
      for id in $(repowire jobs list -q --state failed); do repowire jobs retry $id; done
    """
    here = project()
    if not watch:
        _print_list(here, filters, as_json, quiet, utc)
        return
    try:
        for _ in here.changes():
            click.echo("\033[H\033[2J", nl=False)  # like watch(1): the screen, redrawn
            _print_list(here, filters, as_json, quiet, utc)
    except KeyboardInterrupt:
        return


def _print_list(
    here: Project, filters: dict[str, Any], as_json: bool, quiet: bool, utc: bool
) -> None:
    if as_json:  # JSON escapes control characters: no terminal codes for click to strip
        click.echo(here.listing_text(**filters), color=True)
    elif quiet:
        for job_id in here.listed_ids(**filters):
            click.echo(job_id)
    else:
        from repowire.cli import render  # imported here: JSON and ids need no table

        render.SHOW_UTC = utc
        data = here.listing(**filters)
        render.print_listing(data["templates"], data["jobs"], any(filters.values()))


@jobs.command(short_help="Show a job record or a template.")
@root_option
@click.argument("job_id", metavar="ID", shell_complete=complete_names)
@click.option("--utc", is_flag=True, help="Times in UTC instead of local time.")
@json_option
def show(job_id: str, utc: bool, as_json: bool) -> None:
    """Show a whole job record, or a template with its next fires, runs and skipped slots.

    \b
    Examples:
      repowire jobs show job-20261126-021530-a1b2
      repowire jobs show daily-brief --json
    """
    from repowire.cli import render
    from repowire.cli.render import print_job, print_json, print_template

    render.SHOW_UTC = utc
    data = project().show(job_id)
    if as_json:
        print_json(data)
    elif data.get("kind") == "template":
        print_template(data)
    else:
        print_job(data)


@jobs.command()
@root_option
@click.argument("job_id", metavar="ID", shell_complete=complete_names)
@json_option
def status(job_id: str, as_json: bool) -> None:
    """Print the state alone (a template: enabled or paused).

    \b
    Example:
      repowire jobs status job-20261126-021530-a1b2
    """
    state = project().status(job_id)
    if as_json:
        from repowire.cli.render import (
            print_json,  # imported here: `jobs status` is the cold-start case
        )

        print_json({"id": job_id, "state": state})
    else:
        click.echo(state)


@jobs.command(short_help="Change a job's state; add a note or result.")
@root_option
@click.argument("job_id", metavar="ID", shell_complete=complete_names)
@click.option("--state", type=click.Choice(STATES), help="The new state.")
@click.option("--note", metavar="T", help="A progress note for the timeline.")
@click.option("--result-summary", metavar="T", help="A short result.")
@click.option("--session-id", metavar="X", help="The agent's runtime session id, for resume.")
@click.option(
    "--quiet", is_flag=True, default=None, help="Nothing to report: no inbox entry or notice."
)
@json_option
def update(
    job_id: str,
    state: str | None,
    note: str | None,
    result_summary: str | None,
    session_id: str | None,
    quiet: bool | None,
    as_json: bool,
) -> None:
    """Change a job's state and/or add a note, a result summary or a session id. --quiet
    says the run has nothing to report: it stays out of the inbox, and only notify targets
    whose `when` names its state are told.

    \b
    Examples:
      repowire jobs update job-... --state running --note "Started first pass"
      repowire jobs update job-... --state succeeded --result-summary "Brief posted"
      repowire jobs update "$REPOWIRE_JOB_ID" --state succeeded --quiet
    """
    here = project()
    job = here.update(
        job_id,
        state=state,
        note=note,
        result_summary=result_summary,
        session_id=session_id,
        quiet=quiet,
    )
    if as_json:
        from repowire.cli.render import print_json

        print_json(here.show(job.id))
    else:
        click.echo(f"{job.id} {job.state}")


@jobs.command()
@root_option
@click.argument("job_id", metavar="ID", shell_complete=complete_names)
@json_option
def result(job_id: str, as_json: bool) -> None:
    """Print the result summary and the result file (<id>.result.md).

    A failed or canceled job also gets its state and error on stderr, and exit status 1.

    \b
    Example:
      repowire jobs result job-20261126-021530-a1b2
    """
    from repowire.cli.render import print_json, safe

    data = project().result(job_id)
    if as_json:
        print_json(data)
        return
    data = safe(data)
    ended_badly = data["state"] in ENDED_BADLY
    if data["result_summary"] is None and data["result"] is None and not ended_badly:
        click.echo(f"No result yet (job {data['id']} is {data['state']}).")
    if data["result_summary"] is not None:
        click.echo(data["result_summary"])
    if data["result"] is not None:
        if data["result_summary"] is not None:
            click.echo(f"\n--- {data['result_file']}")
        click.echo(data["result"].rstrip("\n"))
    if ended_badly:
        why = f": {data['error']}" if data.get("error") else ""
        click.echo(f"job {data['id']} {data['state']}{why}", err=True)
        sys.exit(1)


@jobs.command(short_help="Cancel a job, or pause a template.")
@root_option
@click.argument("job_id", metavar="ID", shell_complete=complete_names)
@click.option("--reason", metavar="T", help="Why; recorded as the job's error.")
def cancel(job_id: str, reason: str | None) -> None:
    """Cancel a queued or running job; for a template name, pause the template.

    \b
    Examples:
      repowire jobs cancel job-20261126-021530-a1b2 --reason "superseded"
      repowire jobs cancel daily-brief
    """
    from repowire.record.job import Job

    here = project()
    was_running = here.status(job_id) == "running"
    item = here.cancel(job_id, reason)
    if isinstance(item, Job):
        click.echo(f"{item.id} {item.state}")
        if was_running:  # its executor is released by a runner: say when none will
            warn_unserved(here)
    else:
        click.echo(f"{item.name} paused")


@jobs.command()
@root_option
@click.argument("job_id", metavar="ID", shell_complete=complete_names)
def retry(job_id: str) -> None:
    """Put a failed or canceled job back in the queue.

    \b
    Example:
      repowire jobs retry job-20261126-021530-a1b2
    """
    job = project().retry(job_id)
    click.echo(f"{job.id} {job.state}")


@jobs.command(short_help="Fire a template now, even when paused.")
@root_option
@click.argument("name", shell_complete=complete_names)
@json_option
def run(name: str, as_json: bool) -> None:
    """Fire a template now, even when paused; print the run's id (a runner starts it).

    \b
    Example:
      repowire jobs run daily-brief
    """
    here = project()
    print_new(here, here.run_template(name).id, as_json)


@jobs.command()
@root_option
@click.argument("name", shell_complete=complete_names)
def resume(name: str) -> None:
    """Resume a paused template (sets enabled: true in its job.yaml).

    \b
    Example:
      repowire jobs resume daily-brief
    """
    project().resume(name)
    click.echo(f"{name} enabled")
