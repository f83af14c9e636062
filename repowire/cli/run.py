"""`repowire runner`, `repowire jobs logs` and `repowire jobs wait`: following work as it runs."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from . import cli, get_root, root_option
from .jobs import jobs

_POLL = 0.2


@cli.command()
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
def runner(once: bool, max_concurrency: int | None) -> None:
    """Run queued jobs as they appear, in the foreground; one log line per event on stderr.

    SIGTERM or Ctrl-C stops the runner and leaves running executors for the next runner.

    \b
    Examples:
      repowire runner
      repowire runner --once --max-concurrency 2
    """
    from ..runner import Runner

    Runner(get_root(), max_concurrency).run(once=once)


@jobs.command()
@root_option
@click.argument("job_id", metavar="ID")
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the job is terminal.")
def logs(job_id: str, follow: bool) -> None:
    """Print the executor output of a job (<id>.log), all attempts.

    \b
    Examples:
      repowire jobs logs job-20261126-021530-a1b2
      repowire jobs logs job-20261126-021530-a1b2 -f
    """
    from .. import api
    from ..store import Store

    root = get_root()
    api.get_job(root, job_id)
    path = Store(root).sibling(job_id, ".log")
    offset = _copy_from(path, 0)
    while follow and not api.get_job(root, job_id).is_terminal:
        time.sleep(_POLL)
        offset = _copy_from(path, offset)
    if follow:
        _copy_from(path, offset)


def _copy_from(path: Path, offset: int) -> int:
    """Write what the file holds past offset to stdout; return the new offset."""
    from ..files import open_file

    try:
        with open_file(path) as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return offset
    if data:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return offset + len(data)


@jobs.command()
@root_option
@click.argument("job_ids", metavar="ID...", nargs=-1, required=True)
@click.option("--timeout", metavar="D", help="Give up after this long (exit 124): 30s, 10m.")
def wait(job_ids: tuple[str, ...], timeout: str | None) -> None:
    """Block until every job is terminal: exit 0 if all succeeded, 1 if any failed or was
    canceled, 124 on timeout.

    \b
    Examples:
      repowire jobs wait job-20261126-021530-a1b2
      repowire jobs wait job-a job-b --timeout 10m && echo all good
    """
    from .. import api
    from ..values import parse_duration

    root = get_root()
    limit = parse_duration(timeout) if timeout is not None else None
    for job_id in job_ids:
        api.get_job(root, job_id)  # unknown ids fail at once
    started = time.monotonic()
    live = sys.stderr.isatty()
    while True:
        states = {job_id: api.get_job(root, job_id).state.value for job_id in job_ids}
        done = [s for s in states.values() if s in ("succeeded", "failed", "canceled")]
        if live:
            click.echo(
                f"\r{len(done)}/{len(states)} done: "
                + ", ".join(f"{k} {v}" for k, v in states.items())[:200]
                + "\033[K",
                err=True,
                nl=False,
            )
        if len(done) == len(states):
            break
        if limit is not None and time.monotonic() - started >= limit:
            if live:
                click.echo(err=True)
            waiting = [k for k, v in states.items() if v not in ("succeeded", "failed", "canceled")]
            click.echo(f"timed out waiting for {', '.join(waiting)}", err=True)
            sys.exit(124)
        time.sleep(_POLL)
    if live:
        click.echo(err=True)
    for job_id, state in states.items():
        click.echo(f"{job_id} {state}")
    sys.exit(0 if all(s == "succeeded" for s in states.values()) else 1)
