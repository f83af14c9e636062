"""`repowire jobs rm`, `jobs prune`, `jobs rerun` and `jobs diff`: clearing finished work,
running it again, reading what a worktree run changed."""

from __future__ import annotations

import click

from repowire.cli.common import (
    complete_names,
    duration,
    json_option,
    print_new,
    project,
    root_option,
)
from repowire.record.states import TERMINAL_NAMES, State

__all__ = ["rm", "prune", "rerun", "diff"]

FINISHED = [state.value for state in State if state.value in TERMINAL_NAMES]

branches_option = click.option(
    "--branches",
    is_flag=True,
    help="Delete the branches of removed worktree runs too (a template's shared branch stays).",
)


def _say(removed: list[str], branches: list[str], dry_run: bool) -> None:
    verb = "would remove" if dry_run else "removed"
    for job_id in removed:
        click.echo(f"{verb} {job_id}")
    for branch in branches:
        click.echo(f"{'would delete' if dry_run else 'deleted'} branch {branch}")


@click.command(short_help="Remove finished jobs and their files.")
@root_option
@click.argument("job_ids", metavar="ID...", nargs=-1, required=True, shell_complete=complete_names)
@click.option("--force", is_flag=True, help="Cancel a queued or running job first.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@branches_option
def rm(job_ids: tuple[str, ...], force: bool, dry_run: bool, branches: bool) -> None:
    """Remove finished jobs: each record with its log, result and exit files.

    Every id is checked before anything is removed; a queued or running job is refused unless
    --force, which cancels it first (its executor is then released by the runner). A worktree
    run's branch stays unless --branches.

    \\b
    Examples:
      repowire jobs rm job-20261126-021530-a1b2
      repowire jobs rm job-a job-b --dry-run
      repowire jobs rm job-a --branches
    """
    here = project()
    removed, deleted = here.remove(list(job_ids), force, dry_run, branches)
    _say(removed, deleted, dry_run)
    waiting = here.dependents(removed)
    if waiting:
        click.echo(
            f"Note: {', '.join(waiting)} wait{'s' if len(waiting) == 1 else ''} for a removed "
            "job; a runner cancels them (or, with on_dependency_failure: run, starts them)",
            err=True,
        )


@click.command(short_help="Remove finished jobs older than a time.")
@root_option
@click.option(
    "--older-than",
    metavar="D",
    callback=duration,
    help="Only jobs finished longer ago than this: 7d, 12h (default: every finished job).",
)
@click.option("--state", type=click.Choice(FINISHED), help="Only jobs that ended this way.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@branches_option
def prune(older_than: float | None, state: str | None, dry_run: bool, branches: bool) -> None:
    """Remove finished jobs, one-off and template runs alike, with their files.

    Queued and running jobs are never removed. Worktree runs' branches stay unless --branches.

    \\b
    Examples:
      repowire jobs prune --older-than 7d --dry-run
      repowire jobs prune --state succeeded --older-than 1d
    """
    removed, deleted = project().prune(older_than or 0.0, state, dry_run, branches)
    _say(removed, deleted, dry_run)
    if not removed:
        click.echo("nothing to remove")


@click.command(short_help="Queue a new job with a finished job's definition.")
@root_option
@click.argument("job_id", metavar="ID", shell_complete=complete_names)
@json_option
def rerun(job_id: str, as_json: bool) -> None:
    """Queue a new job with the definition of a finished job (any way it ended); the new
    job notes where it came from. `retry` stays for failed and canceled jobs.

    \\b
    Example:
      repowire jobs rerun job-20261126-021530-a1b2
    """
    here = project()
    print_new(here, here.rerun(job_id).id, as_json)


@click.command(short_help="Show what a worktree run changed.")
@root_option
@click.argument("job_id", metavar="ID", shell_complete=complete_names)
@click.option("--stat", is_flag=True, help="Files and line counts only (git diff --stat).")
def diff(job_id: str, stat: bool) -> None:
    """Print a worktree run's changes against the commit it started from, as git diff does:
    its branch's head once it ended, its worktree while it runs. Nothing when it changed
    nothing.

    \b
    Examples:
      repowire jobs diff job-20261126-021530-a1b2
      repowire jobs diff job-20261126-021530-a1b2 --stat
    """
    click.echo(project().diff(job_id, stat), nl=False)
