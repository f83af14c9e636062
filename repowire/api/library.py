"""The API as plain functions: what concerns a root itself (init, trust, validate), and the
job operations as functions of a root, for scripts (`from repowire import create_job`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from repowire.api.project import Project
from repowire.record.job import Job
from repowire.record.template import Template
from repowire.store.roots import require_repowire

if TYPE_CHECKING:
    from repowire.api.views import Listing

__all__ = [
    "init",
    "trust",
    "trust_file",
    "validate",
    "find_root",
    "service",
    "cron_preview",
    "cron_warning",
    "workers",
    "names",
    "schema",
    "create_job",
    "create_template",
    "get_job",
    "find",
    "list_all",
    "update_job",
    "add_note",
    "cancel",
    "retry",
    "get_result",
]


def init(root: Path) -> bool:
    """Create .repowire/ (keeping what exists) and trust the root; True if anything was new."""
    from repowire.store.layout import init_root

    return init_root(root)


def trust(root: Path, trusted: bool = True) -> None:
    """Trust the root for the runner, or take the trust back."""
    from repowire.store.config import set_trusted

    require_repowire(root)
    set_trusted(root, trusted)


def trust_file() -> Path:
    """Where trust is kept: in the user's config folder, outside every repository."""
    from repowire.store.config import trust_file as path

    return path()


def validate(root: Path, paths: list[Path]) -> tuple[int, list[str]]:
    """Check files (every one of the root when none is named): how many, and the problems."""
    from repowire.api.validate import validate_paths

    if not paths:
        require_repowire(root)
    return validate_paths(root, paths)


def service(root: Path, install: bool | None) -> tuple[Any, str | None]:
    """The user service that keeps a runner running for the root; install=True writes and
    starts it, False stops and removes it, None only describes it. Returns it and any problem
    the service manager reported."""
    from repowire.runner import service as services

    require_repowire(root)
    found = services.service_for(root)
    if install is None:
        return found, None
    return found, (services.install if install else services.uninstall)(found)


def cron_preview(expr: str, timezone: str | None = None, count: int = 5) -> dict[str, Any]:
    """A cron expression in words, its next fire times, and a warning if it looks Quartz-style."""
    from repowire import clock
    from repowire.templates.discovery import cron_preview as preview

    return preview(expr, timezone, count, clock.now())


def cron_warning(expr: str) -> str | None:
    """A warning when a six-field expression looks written with seconds first (Quartz)."""
    from repowire.templates.discovery import quartz_warning

    return quartz_warning(expr)


def workers(root: Path) -> list[dict[str, Any]]:
    """The worker folders of the root: templates with schedule, state, last and next run, and
    folders for one-off jobs."""
    from repowire import clock
    from repowire.store.records import Store
    from repowire.templates.discovery import workers as found

    require_repowire(root)
    return found(Store(root), clock.now())


def names(root: Path) -> list[str]:
    """Every job id and template name of the root, for shell completion (no file is parsed)."""
    import os

    found: list[str] = []
    for folder, suffix in (("jobs", ".yaml"), ("agents", "")):
        try:
            entries = os.listdir(root / ".repowire" / folder)
        except OSError:
            continue
        found += [e[: len(e) - len(suffix)] for e in entries if e.endswith(suffix) and e[0] != "."]
    return sorted(found)


def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a job record ("job"), a template ("template") or config.yaml."""
    from repowire.record.json_schemas import schema_for

    return schema_for(kind)


def find_root(explicit: str | None = None) -> Path:
    """--root or REPOWIRE_ROOT, else the nearest ancestor holding .repowire/, else the cwd."""
    from repowire.store.roots import find_root as nearest

    return nearest(explicit)


def create_job(root: Path, name: str | None = None, **options: Any) -> Job:
    """Write a new queued job in the root; options are the definition keys."""
    return Project(root).create_job(name, **options)


def create_template(root: Path, name: str, cron: str, **options: Any) -> Template:
    """Write a recurring template in the root."""
    return Project(root).create_template(name, cron, **options)


def get_job(root: Path, job_id: str) -> Job:
    """One job record; JobNotFound when there is none."""
    return Project(root).job(job_id)


def find(root: Path, name: str) -> Job | Template:
    """A job by id, else a template by name."""
    return Project(root).find(name)


def list_all(root: Path, state: str | None = None, template: str | None = None) -> Listing:
    """Templates and jobs, optionally only jobs in one state or of one template."""
    from repowire.api.views import listing

    return listing(Project(root).store, state, template)


def update_job(root: Path, job_id: str, **changes: Any) -> Job:
    """A locked transition and/or note, result summary or session id."""
    return Project(root).update(job_id, **changes)


def add_note(root: Path, job_id: str, text: str) -> Job:
    """Append one note to a job's timeline."""
    return Project(root).update(job_id, note=text)


def cancel(root: Path, name: str, reason: str | None = None) -> Job | Template:
    """Cancel a job, or pause a template."""
    return Project(root).cancel(name, reason)


def retry(root: Path, job_id: str) -> Job:
    """Put a failed or canceled job back in the queue."""
    return Project(root).retry(job_id)


def get_result(root: Path, job_id: str) -> dict[str, Any]:
    """The result summary and the result file of a job."""
    return Project(root).result(job_id)
