"""`repowire runner`, `repowire jobs logs` and `repowire jobs wait`: following work as it runs."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from repowire.api.project import Project

from repowire.cli.common import (
    RepowireGroup,
    complete_names,
    duration,
    get_root,
    project,
    root_option,
    warn_unserved,
)
from repowire.record.states import TERMINAL_NAMES

__all__ = ["runner", "daemon", "logs", "wait"]

_POLL = 0.2


@click.group(
    cls=RepowireGroup,
    invoke_without_command=True,
    short_help="Run due jobs in the foreground (the daemon).",
)
@root_option
@click.option(
    "--once",
    is_flag=True,
    help="Recover, run every due job to the end, then exit (for scripts and CI).",
)
@click.option(
    "--max-concurrency",
    type=click.IntRange(min=1),
    metavar="N",
    help="Running executors at once (default: config.yaml, else 4).",
)
@click.pass_context
def runner(ctx: click.Context, once: bool, max_concurrency: int | None) -> None:
    """Run queued jobs as they appear, in the foreground; one log line per event on stderr.

    SIGTERM or Ctrl-C stops the runner and leaves running executors for the next runner.
    `repowire runner install` keeps one running as a user service.

    \b
    Examples:
      repowire runner
      repowire runner --once --max-concurrency 2
      repowire runner install
    """
    if ctx.invoked_subcommand is not None:
        if once or max_concurrency:
            raise click.UsageError("--once and --max-concurrency go with 'repowire runner' alone")
        return
    failing = project().serve(max_concurrency, once=once)
    if once and failing:
        click.echo(
            f"Error: {len(failing)} job(s) could not be served ({', '.join(failing[:5])}); "
            "see the errors above",
            err=True,
        )
        sys.exit(1)


@runner.command(short_help="Keep a runner running for this root (a user service).")
@root_option
@click.option("--print", "print_only", is_flag=True, help="Print the service file instead.")
def install(print_only: bool) -> None:
    """Install a user service that runs `repowire runner` for this root, restarts it when it
    fails and starts it at login: a systemd user unit on Linux, a launchd agent on macOS.

    \b
    Examples:
      repowire runner install
      repowire runner install --print > ~/.config/systemd/user/my-runner.service
    """
    from repowire.api import library as functions

    if print_only:
        click.echo(functions.service(get_root(), None)[0].text, nl=False)
        return
    service, problem = functions.service(get_root(), True)
    click.echo(f"wrote {service.path}")
    if problem:
        import shlex

        commands = "; ".join(shlex.join(command) for command in service.start)
        click.echo(
            f"Warning: the service was not started ({problem}); start it with: {commands} "
            f"(or run 'repowire --root {shlex.quote(str(get_root()))} runner' by hand)",
            err=True,
        )
    else:
        click.echo(f"started {service.name}; it starts again at login and after a failure")


@runner.command(short_help="Stop and remove this root's runner service.")
@root_option
def uninstall() -> None:
    """Stop the user service that `repowire runner install` made, and remove its file.

    \b
    Example:
      repowire runner uninstall
    """
    from repowire.api import library as functions

    service, problem = functions.service(get_root(), False)
    click.echo(f"removed {service.path}")
    if problem:
        click.echo(f"Warning: the service manager said: {problem}", err=True)


@click.command()
@root_option
@click.argument("job_id", metavar="ID", shell_complete=complete_names)
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the job is terminal.")
@click.option("--tail", type=click.IntRange(min=0), metavar="N", help="Start at the last N lines.")
def logs(job_id: str, follow: bool, tail: int | None) -> None:
    """Print the executor output of a job (<id>.log), all attempts.

    With -f, follow it until the job ends, then say how it ended (on stderr); Ctrl-C stops
    following quietly.

    \b
    Examples:
      repowire jobs logs job-20261126-021530-a1b2 --tail 20
      repowire jobs logs job-20261126-021530-a1b2 -f
    """
    here = project()
    job = here.job(job_id)
    if not follow and not here.has_log(job_id):
        click.echo(f"job {job_id} has no log yet: it is {job.state}, and no attempt has started "
                   f"(follow it with: repowire jobs logs {job_id} -f)", err=True)  # fmt: skip
        return
    try:
        offset = _copy_from(here, job_id, _tail_offset(here, job_id, tail))
        while follow and not here.job(job_id).is_terminal:
            time.sleep(_POLL)
            offset = _copy_from(here, job_id, offset)
        if follow:
            _copy_from(here, job_id, offset)
            job = here.job(job_id)
            why = f": {job.error}" if job.error else ""
            click.echo(f"--- {job_id} {job.state}{why}", err=True)
    except KeyboardInterrupt:
        sys.exit(130)  # Ctrl-C: stop following, without a traceback


def _tail_offset(here: Project, job_id: str, lines: int | None) -> int:
    """Where the last `lines` lines of the log start (0: from the beginning)."""
    if lines is None:
        return 0
    data, end = here.log(job_id, -(1 << 20), 1 << 20)
    body = data[:-1] if data.endswith(b"\n") else data
    if lines == 0:
        return end
    cut = len(body)
    for _ in range(lines):
        cut = body.rfind(b"\n", 0, cut)
        if cut < 0:
            return end - len(data)
    return end - len(data) + cut + 1


def _copy_from(here: Project, job_id: str, offset: int) -> int:
    """Write what the log holds past offset to stdout; return the new offset."""
    while True:
        data, offset = here.log(job_id, offset)
        if not data:
            return offset
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


@click.command()
@root_option
@click.argument("job_ids", metavar="ID...", nargs=-1, required=True, shell_complete=complete_names)
@click.option(
    "--timeout",
    metavar="D",
    callback=duration,
    help="Give up after this long (exit 124): 30s, 10m.",
)
def wait(job_ids: tuple[str, ...], timeout: float | None) -> None:
    """Block until every job is terminal.

    Exit 0 when all succeeded, 1 when any failed or was canceled, 2 for bad usage, 3 when an
    id names no job, 124 on timeout. On a terminal, one line shows the progress.

    \b
    Examples:
      repowire jobs wait job-20261126-021530-a1b2
      repowire jobs wait job-a job-b --timeout 10m && echo all good
    """
    from repowire.errors import JobNotFound

    here = project()
    try:
        for job_id in job_ids:
            here.job(job_id)  # unknown ids fail at once, apart from failed jobs
    except JobNotFound as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(3)
    warn_unserved(here)
    states = _wait_until_done(here, job_ids, timeout)
    for job_id, state in states.items():
        click.echo(f"{job_id} {state}")
    sys.exit(0 if all(s == "succeeded" for s in states.values()) else 1)


def _wait_until_done(
    here: Project, job_ids: tuple[str, ...], limit: float | None
) -> dict[str, str]:
    started = time.monotonic()
    line = _Progress() if sys.stderr.isatty() else None
    while True:
        states = {job_id: here.status(job_id) for job_id in job_ids}
        waiting = [k for k, v in states.items() if v not in TERMINAL_NAMES]
        elapsed = time.monotonic() - started
        if line is not None:
            line.show(states, len(states) - len(waiting), elapsed)
        if not waiting:
            break
        if limit is not None and elapsed >= limit:
            if line is not None:
                line.end()
            click.echo(f"timed out waiting for {', '.join(waiting)}", err=True)
            sys.exit(124)
        time.sleep(_POLL)
    if line is not None:
        line.end()
    return states


class _Progress:
    """One line on a terminal, fitted to its width, redrawn only when its text changes."""

    def __init__(self) -> None:
        self.shown = ""

    def show(self, states: dict[str, str], done: int, elapsed: float) -> None:
        import shutil

        from repowire.times import format_duration

        width = max(20, shutil.get_terminal_size().columns - 1)
        detail = ", ".join(f"{k} {v}" for k, v in states.items())
        text = f"{done}/{len(states)} done, {format_duration(int(elapsed))}: {detail}"
        text = text if len(text) <= width else text[: width - 1] + "…"
        if text != self.shown:
            click.echo(f"\r{text}\033[K", err=True, nl=False)
            self.shown = text

    def end(self) -> None:
        click.echo(err=True)


# The seed page says "start the daemon": `repowire daemon` is the runner by another name.
daemon = RepowireGroup(
    "daemon",
    callback=runner.callback,
    params=runner.params,
    commands=runner.commands,
    invoke_without_command=True,
    help=runner.help,
    short_help="The runner, by its other name.",
    hidden=True,
)
