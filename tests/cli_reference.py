"""docs/cli.md: every command's --help, made from the program itself.

`./dev docs` rewrites the page; tests/test_docs.py fails when it is out of step."""

from __future__ import annotations

import sys

import click

from repowire.cli import cli

HELP = ["-h", "--help"]


def _commands(group: click.Group, path: list[str]) -> list[tuple[list[str], click.Command]]:
    found: list[tuple[list[str], click.Command]] = [(path, group)]
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # loads each command's module
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            found += _commands(command, [*path, name])
        else:
            found.append(([*path, name], command))
    return found


def render() -> str:
    """The whole page."""
    parts = [
        "# The command line\n",
        "Every command's `--help`, as the program prints it. The file format is in",
        "[file-format.md](file-format.md). Errors are one sentence on stderr with exit status 1",
        "(2 for usage errors), never a traceback.\n",
    ]
    for path, command in _commands(cli, ["repowire"]):
        with click.Context(
            command, info_name=" ".join(path), terminal_width=100, help_option_names=HELP
        ) as ctx:
            text = command.get_help(ctx)
        parts.append(f"## {' '.join(path)}\n\n```\n{text.rstrip()}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    sys.stdout.write(render())
