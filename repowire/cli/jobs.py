"""`repowire jobs ...`: create, inspect, update, cancel and retry jobs and templates."""

from __future__ import annotations

from typing import Any

import click

from . import RepowireGroup, get_root, json_option, root_option
from .render import print_job, print_json, print_listing, print_template

STATES = ["queued", "running", "succeeded", "failed", "canceled"]


@click.group(cls=RepowireGroup)
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


def _as_dict(item: Any) -> dict[str, Any]:
    from ..api import as_dict

    return as_dict(get_root(), item)


@jobs.command()
@root_option
@click.argument("name")
@click.option("--command", "command", metavar="C", help="A shell command (run by /bin/sh -c).")
@click.option("--backend", metavar="B", help="shell, codex, claude, gemini, opencode, or your own.")
@click.option("--path", metavar="P", help="The worker folder and working directory, from the root.")
@click.option("--prompt", metavar="T", help="The ask for an agent backend.")
@click.option("--prompt-file", metavar="F", help="A file holding the ask, relative to --path.")
@click.option("--cron", metavar="EXPR", help="Make a recurring template instead of a one-off job.")
@click.option("--timezone", metavar="Z", help="IANA zone the cron expression is read in.")
@click.option("--continuity", type=click.Choice(["fresh", "resume"]))
@click.option("--timeout", metavar="D", help="Wall-clock limit: 30s, 10m, 2h, 1d.")
@click.option("--retries", type=click.IntRange(min=0), help="Automatic retries after a failure.")
@click.option("--due-at", metavar="T", help="Not before this time: ISO-8601, or 10m, 2h from now.")
@click.option(
    "--env", "env", metavar="K=V", multiple=True, help="An environment variable (repeat)."
)
@click.option("--id", "job_id", metavar="ID", help="Choose the job id instead of generating one.")
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
    """
    from .. import api

    if options["prompt"] and options["prompt_file"]:
        raise click.UsageError("use --prompt or --prompt-file, not both")
    if not cron and timezone:
        raise click.UsageError("--timezone goes with --cron")
    if cron and (options["due_at"] or job_id):
        raise click.UsageError("--cron cannot be combined with --due-at or --id")
    root = get_root()
    if cron:
        item: Any = api.create_template(
            root, name, cron, timezone=timezone, env=_env_pairs(env), **options
        )
    else:
        item = api.create_job(root, name, job_id=job_id, env=_env_pairs(env), **options)
    if as_json:
        print_json(_as_dict(item))
    else:
        click.echo(getattr(item, "id", None) or item.name)


@jobs.command(name="list")
@root_option
@click.option("--state", type=click.Choice([*STATES, "invalid"]), help="Only jobs in this state.")
@click.option("--template", metavar="T", help="Only this template and its runs.")
@json_option
def list_(state: str | None, template: str | None, as_json: bool) -> None:
    """List templates and jobs (broken files appear as `invalid` with their error).

    \b
    Examples:
      repowire jobs list
      repowire jobs list --state failed --json
    """
    from .. import api

    data = api.listing_dict(get_root(), state=state, template=template)
    if as_json:
        print_json(data)
    else:
        print_listing(data["templates"], data["jobs"])


@jobs.command()
@root_option
@click.argument("job_id", metavar="ID")
@json_option
def show(job_id: str, as_json: bool) -> None:
    """Show a whole job record, or a template with its next fires, runs and skipped slots.

    \b
    Examples:
      repowire jobs show job-20261126-021530-a1b2
      repowire jobs show daily-brief --json
    """
    from .. import api
    from ..model import Job

    item = api.find(get_root(), job_id)
    data = _as_dict(item)
    if as_json:
        print_json(data)
    elif isinstance(item, Job):
        print_job(data)
    else:
        print_template(data)


@jobs.command()
@root_option
@click.argument("job_id", metavar="ID")
@json_option
def status(job_id: str, as_json: bool) -> None:
    """Print the state alone (a template: enabled or paused).

    \b
    Example:
      repowire jobs status job-20261126-021530-a1b2
    """
    from .. import api
    from ..model import Job

    item = api.find(get_root(), job_id)
    state = str(item.state) if isinstance(item, Job) else ("enabled" if item.enabled else "paused")
    if as_json:
        print_json({"id": job_id, "state": state})
    else:
        click.echo(state)


@jobs.command()
@root_option
@click.argument("job_id", metavar="ID")
@click.option("--state", type=click.Choice(STATES), help="The new state.")
@click.option("--note", metavar="T", help="A progress note for the timeline.")
@click.option("--result-summary", metavar="T", help="A short result.")
@click.option("--session-id", metavar="X", help="The agent's runtime session id, for resume.")
@json_option
def update(
    job_id: str,
    state: str | None,
    note: str | None,
    result_summary: str | None,
    session_id: str | None,
    as_json: bool,
) -> None:
    """Change a job's state and/or add a note, a result summary or a session id.

    \b
    Examples:
      repowire jobs update job-... --state running --note "Started first pass"
      repowire jobs update job-... --state succeeded --result-summary "Brief posted"
    """
    from .. import api

    if state is None and note is None and result_summary is None and session_id is None:
        raise click.UsageError(
            "give at least one of --state, --note, --result-summary, --session-id"
        )
    job = api.update_job(
        get_root(),
        job_id,
        state=state,
        note=note,
        result_summary=result_summary,
        session_id=session_id,
    )
    if as_json:
        print_json(_as_dict(job))
    else:
        click.echo(f"{job.id} {job.state}")


@jobs.command()
@root_option
@click.argument("job_id", metavar="ID")
@json_option
def result(job_id: str, as_json: bool) -> None:
    """Print the result summary and the result file (<id>.result.md).

    \b
    Example:
      repowire jobs result job-20261126-021530-a1b2
    """
    from .. import api

    data = api.get_result(get_root(), job_id)
    if as_json:
        print_json(data)
        return
    if data["result_summary"] is None and data["result"] is None:
        why = f": {data['error']}" if data.get("error") else ""
        click.echo(f"No result yet (job {data['id']} is {data['state']}{why}).")
        return
    if data["result_summary"] is not None:
        click.echo(data["result_summary"])
    if data["result"] is not None:
        if data["result_summary"] is not None:
            click.echo(f"\n--- {data['result_file']}")
        click.echo(data["result"].rstrip("\n"))


@jobs.command()
@root_option
@click.argument("job_id", metavar="ID")
@click.option("--reason", metavar="T", help="Why; recorded as the job's error.")
def cancel(job_id: str, reason: str | None) -> None:
    """Cancel a queued or running job; for a template name, pause the template.

    \b
    Examples:
      repowire jobs cancel job-20261126-021530-a1b2 --reason "superseded"
      repowire jobs cancel daily-brief
    """
    from .. import api
    from ..model import Job

    item = api.cancel(get_root(), job_id, reason)
    if isinstance(item, Job):
        click.echo(f"{item.id} {item.state}")
    else:
        click.echo(f"{item.name} paused")


@jobs.command()
@root_option
@click.argument("job_id", metavar="ID")
def retry(job_id: str) -> None:
    """Put a failed or canceled job back in the queue.

    \b
    Example:
      repowire jobs retry job-20261126-021530-a1b2
    """
    from .. import api

    job = api.retry(get_root(), job_id)
    click.echo(f"{job.id} {job.state}")


@jobs.command()
@root_option
@click.argument("name")
@json_option
def run(name: str, as_json: bool) -> None:
    """Fire a template now, even when paused; print the run's id (a runner starts it).

    \b
    Example:
      repowire jobs run daily-brief
    """
    from .. import api

    job = api.run_template(get_root(), name)
    if as_json:
        print_json(_as_dict(job))
    else:
        click.echo(job.id)


@jobs.command()
@root_option
@click.argument("name")
def resume(name: str) -> None:
    """Resume a paused template (sets enabled: true in its job.yaml).

    \b
    Example:
      repowire jobs resume daily-brief
    """
    from .. import api

    api.resume_template(get_root(), name)
    click.echo(f"{name} enabled")
