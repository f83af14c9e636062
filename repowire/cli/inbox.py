"""`repowire inbox`: finished runs nobody has looked at yet, and marking them seen."""

from __future__ import annotations

import click

from repowire.cli.common import complete_names, json_option, project, root_option
from repowire.cli.render import ago, money, print_json, safe, table
from repowire.errors import UsageProblem

__all__ = ["inbox"]


@click.command(short_help="Finished runs not seen yet, and marking them seen.")
@root_option
@click.argument("job_ids", metavar="[ID]...", nargs=-1, shell_complete=complete_names)
@click.option("--read", "mark", is_flag=True, help="Mark the runs named seen.")
@click.option("--all", "every", is_flag=True, help="Mark every finished run seen.")
@json_option
def inbox(job_ids: tuple[str, ...], mark: bool, every: bool, as_json: bool) -> None:
    """List finished runs not seen yet, newest first, with state, summary and cost; or mark
    runs seen. Quiet runs (nothing to report) never show. Seen marks are runtime state in
    .repowire/locks/, kept out of git.

    \\b
    Examples:
      repowire inbox
      repowire inbox --read job-20261126-021530-a1b2 daily-brief-20261126T000000Z
      repowire inbox --all
    """
    here = project()
    if job_ids and not mark:
        raise UsageProblem("give --read to mark the runs named seen")
    if mark and not job_ids and not every:
        raise UsageProblem("give the ids of the runs to mark seen, or --all")
    if every:
        here.mark_read(None)
        click.echo("every finished run is marked seen")
    elif mark:
        for job_id in here.mark_read(list(job_ids)):
            click.echo(f"seen {job_id}")
    else:
        _show(here.inbox(), as_json)


def _show(runs: list[dict[str, object]], as_json: bool) -> None:
    if as_json:
        print_json({"unread": len(runs), "runs": runs})
        return
    if not runs:
        click.echo("Nothing new: every finished run has been seen.")
        return
    rows = []
    for run in safe(runs):
        words = run.get("error") if run["state"] == "failed" else run.get("result_summary")
        cost = money((run.get("usage") or {}).get("cost_usd"))
        rows.append([run["id"], run["state"], ago(run.get("finished_at")), cost, words or ""])
    click.echo(table(["ID", "STATE", "ENDED", "COST", "SUMMARY"], rows, state_column=1))
    click.echo(f"\n{len(runs)} unread; 'repowire inbox --read ID...' or '--all' marks them seen")
