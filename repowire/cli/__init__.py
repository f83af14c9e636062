"""The `repowire` command line: parse options, call one library function, print."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ..errors import RepowireError

__all__ = ["main", "cli"]


class RepowireGroup(click.Group):
    """Turns library errors into one sentence on stderr and exit 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RepowireError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from None


def _remember_root(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    source = ctx.get_parameter_source(param.name or "root")
    meta = ctx.find_root().meta
    explicit = source == click.core.ParameterSource.COMMANDLINE
    if value and (explicit or "repowire.root" not in meta):
        meta["repowire.root"] = value


def root_option(func: Any) -> Any:
    """--root DIR (env REPOWIRE_ROOT), accepted by every command and group."""
    return click.option(
        "--root",
        metavar="DIR",
        envvar="REPOWIRE_ROOT",
        expose_value=False,
        is_eager=True,
        callback=_remember_root,
        help="The project root (default: the nearest folder holding .repowire/).",
    )(func)


def json_option(func: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)


def get_root() -> Path:
    """The root this invocation works on."""
    from ..config import find_root

    return find_root(click.get_current_context().find_root().meta.get("repowire.root"))


@click.group(cls=RepowireGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


@cli.command()
@root_option
def init() -> None:
    """Create .repowire/ (jobs, agents, config, .gitignore) here and trust it for the runner.

    \b
    Example:
      cd my-project && repowire init
    """
    from ..layout import init_root

    root = get_root()
    created = init_root(root)
    click.echo(f"{'Created' if created else 'Checked'} {root / '.repowire'}; the root is trusted.")


@cli.command()
@root_option
@click.option("--revoke", is_flag=True, help="Untrust the root instead.")
def trust(revoke: bool) -> None:
    """Trust this root, so the runner executes its jobs (a fresh clone is not trusted).

    \b
    Examples:
      repowire trust
      repowire trust --revoke
    """
    from ..config import require_repowire, set_trusted, trust_file

    root = get_root()
    require_repowire(root)
    set_trusted(root, not revoke)
    verb = "no longer trusted" if revoke else "trusted"
    click.echo(f"{root} is {verb} (kept in {trust_file()}).")


@cli.command()
@root_option
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check job files, templates and config.yaml; exit 1 with `file: problem` lines.

    \b
    Examples:
      repowire validate
      repowire validate .repowire/jobs/job-20261126-021530-a1b2.yaml
    """
    from ..config import require_repowire
    from ..validate import validate_paths

    root = get_root()
    if not paths:
        require_repowire(root)
    checked, problems = validate_paths(root, list(paths))
    for line in problems:
        click.echo(line, err=True)
    if problems:
        sys.exit(1)
    click.echo(f"ok: {checked} file{'s' if checked != 1 else ''} checked")


def _register() -> None:
    from . import agents, run  # noqa: F401 - register agents, runner, jobs logs, jobs wait
    from .jobs import jobs

    cli.add_command(jobs)


_register()


def main() -> None:
    """The console entry point."""
    cli(prog_name="repowire")
