"""What every command shares: the error edge, --root, --json, and the project it works on."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

from repowire.errors import RepowireError, UsageProblem

__all__ = [
    "RepowireCommand",
    "RepowireGroup",
    "root_option",
    "json_option",
    "get_root",
    "project",
    "warn_unserved",
    "complete_names",
    "print_new",
    "duration",
]


class RepowireCommand(click.Command):
    """A command whose usage problems are told with its own usage line, not its group's."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageProblem as exc:
            raise click.UsageError(str(exc), ctx) from None


class RepowireGroup(click.Group):
    """Turns library errors into one sentence on stderr and exit 1, never a traceback; and
    loads a command named in `lazy` (name -> its module in repowire.cli, the command being the
    module's attribute of that name) only when it is asked for, so a command line run imports
    only its own command's module."""

    command_class = RepowireCommand

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = self.lazy.get(cmd_name)
        if where is not None and cmd_name not in self.commands:
            from importlib import import_module

            command = getattr(import_module(f"repowire.cli.{where}"), cmd_name)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageProblem as exc:
            raise click.UsageError(str(exc), ctx) from None
        except RepowireError as exc:
            raise click.ClickException(str(exc)) from None
        except BrokenPipeError:
            raise  # `repowire jobs list | head -1`: click ends quietly, as coreutils do
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from None
        except UnicodeError:  # an argument that is not UTF-8 (bytes the shell passed through)
            raise click.ClickException("an argument is not valid UTF-8 text") from None


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
    """The root this invocation works on. Every command that works on a root asks for it
    before it does anything else, so this ends a command line's start-up (see below)."""
    from repowire.api.library import find_root

    root = find_root(click.get_current_context().find_root().meta.get("repowire.root"))
    if not gc.isenabled():
        _started()
    return root


def _started() -> None:
    """The entry point (repowire/__main__.py) turned the cyclic garbage collector off while
    the command imported what it needs: what it made lives until the process ends. It is
    frozen (never looked through again, not even by the last collection at exit) and the
    collector turned back on. A cold `jobs status` took 1.25-1.36x `import yaml, click`
    before, 1.03-1.12x after (the floor itself collects through its imports)."""
    gc.freeze()
    gc.enable()


def project() -> Any:
    """The api.Project of the root this invocation works on (its .repowire/ must exist)."""
    from repowire.api.project import Project

    return Project(get_root())


def print_new(here: Any, name: str, as_json: bool) -> None:
    """A new job's (or template's) id, or with --json its record; then say when no runner
    will start it."""
    if as_json:
        from repowire.cli.render import print_json

        print_json(here.show(name))
    else:
        click.echo(name)
    warn_unserved(here)


def warn_unserved(here: Any) -> None:
    """One line on stderr when no runner serves the root, so queued work is not silently stuck."""
    if not here.runners():
        from repowire.cli.render import NO_RUNNER

        click.echo(f"Warning: {NO_RUNNER}", err=True)


def complete_names(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Job ids and template names that start with what was typed (click's shell completion)."""
    from click.shell_completion import CompletionItem

    from repowire.api.library import find_root, names

    try:
        root = find_root(ctx.find_root().meta.get("repowire.root"))
        found = names(root)
    except Exception:  # completion never fails loudly; it just offers nothing
        return []
    return [CompletionItem(n) for n in found if n.startswith(incomplete)]


def duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """A click callback: an option's duration (30s, 10m, 2h) in seconds; a bad one is a usage
    error."""
    from repowire.errors import ValidationError
    from repowire.times import parse_duration

    try:
        return parse_duration(value) if value is not None else None
    except ValidationError as exc:
        raise click.BadParameter(str(exc)) from None
