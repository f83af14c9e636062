"""The `repowire` command line: parse options, call one library function, print."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from repowire.cli.common import RepowireGroup, get_root, json_option, project, root_option

__all__ = ["main", "cli"]


@click.group(
    cls=RepowireGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    lazy={
        **dict.fromkeys(["agents", "backends", "cron", "dashboard", "mcp"], "agents"),
        **dict.fromkeys(["runner", "daemon"], "run"),
        "jobs": "jobs",
        "inbox": "inbox",
        "usage": "spend",
    },
)
@root_option
@click.version_option(package_name="repowire")
def cli() -> None:
    """repowire: durable jobs as plain YAML files, and a runner that executes them.

    \b
    Examples:
      repowire init
      repowire jobs create "Build docs" --command "make docs"
      repowire runner
      repowire jobs list
    """


@cli.command(short_help="Create .repowire/ here and trust it.")
@root_option
def init() -> None:
    """Create .repowire/ (jobs, agents, config, .gitignore) here and trust it for the runner.

    \b
    Example:
      cd my-project && repowire init
    """
    from repowire.api import library as functions

    root = get_root()
    created = functions.init(root)
    click.echo(f"{'Created' if created else 'Checked'} {root / '.repowire'}; the root is trusted.")


@cli.command(short_help="Trust this root for the runner (or --revoke).")
@root_option
@click.option("--revoke", is_flag=True, help="Untrust the root instead.")
def trust(revoke: bool) -> None:
    """Trust this root, so the runner executes its jobs (a fresh clone is not trusted).

    \b
    Examples:
      repowire trust
      repowire trust --revoke
    """
    from repowire.api import library as functions

    root = get_root()
    functions.trust(root, not revoke)
    verb = "no longer trusted" if revoke else "trusted"
    click.echo(f"{root} is {verb} (kept in {functions.trust_file()}).")


@cli.command(short_help="Check job files, templates and config.yaml.")
@root_option
@json_option
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...], as_json: bool) -> None:
    """Check job files, templates and config.yaml; exit 1 with `file: problem` lines.

    \b
    Examples:
      repowire validate
      repowire validate .repowire/jobs/job-20261126-021530-a1b2.yaml
    """
    from repowire.api import library as functions

    checked, problems = functions.validate(get_root(), list(paths))
    if as_json:
        from repowire.cli.render import print_json

        found = [dict(zip(("file", "problem"), p.split(": ", 1), strict=False)) for p in problems]
        print_json({"checked": checked, "ok": not problems, "problems": found})
        sys.exit(1 if problems else 0)
    for line in problems:
        click.echo(line, err=True)
    if problems:
        sys.exit(1)
    click.echo(f"ok: {checked} file{'s' if checked != 1 else ''} checked")


@cli.command(short_help="Print the JSON Schema of job files, templates or config.")
@root_option
@click.argument("kind", type=click.Choice(["job", "template", "config"]))
def schema(kind: str) -> None:
    """Print the JSON Schema of a job record, a template (agents/NAME/job.yaml) or config.yaml,
    for editors and checks; `repowire init` writes all three to .repowire/schemas/.

    \b
    Examples:
      repowire schema job > job.schema.json
      repowire schema config
    """
    import json

    from repowire.api import library as functions

    click.echo(json.dumps(functions.schema(kind), indent=2))


@cli.command(short_help="Who serves this root, and what it holds.")
@root_option
@click.option("--utc", is_flag=True, help="Times in UTC instead of local time.")
@json_option
def status(utc: bool, as_json: bool) -> None:
    """Show whether a runner serves this root, the jobs by state, what runs, what fires next,
    broken files, and whether the root is trusted.

    Exit 0 when a runner serves the root, 3 when none does (for scripts to ask).

    \b
    Examples:
      repowire status
      repowire status --json || repowire runner &
    """
    from repowire.cli import render
    from repowire.cli.render import print_json, print_overview

    render.SHOW_UTC = utc
    data = project().overview()
    if as_json:
        print_json(data)
    else:
        print_overview(data)
    sys.exit(0 if data["served"] else 3)


def main() -> None:
    """The console entry point."""
    cli(prog_name="repowire")
