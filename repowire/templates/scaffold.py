"""Scaffolding a worker folder: .repowire/agents/<name>/ with its AGENTS.md and, for a
scheduled worker, its job.yaml."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from repowire import clock
from repowire.errors import UsageProblem, ValidationError, shown
from repowire.files import create_exclusive
from repowire.ids import TEMPLATE_NAME_MAX, slugify, validate_template_name
from repowire.store.layout import AGENTS_MD
from repowire.store.records import Store
from repowire.templates.cron import check_schedule

__all__ = ["create_worker", "template_folder"]


def create_worker(
    store: Store,
    name: str,
    cron: str | None,
    create_template: Callable[..., Any],
    **options: Any,
) -> Path:
    """Make the folder whole or not at all; with cron, `create_template` writes its job.yaml."""
    folder = store.agents_dir / validate_template_name(name, "worker name")
    if folder.exists():
        raise ValidationError(f"the worker folder {folder} already exists")
    options = _checked(cron, {k: v for k, v in options.items() if v is not None})
    store.ensure_layout()
    folder.mkdir()
    try:
        create_exclusive(folder / "AGENTS.md", AGENTS_MD.format(name=name))
        if cron:
            create_template(name, cron, path=str(folder.relative_to(store.root)), **options)
    except BaseException:
        (folder / "AGENTS.md").unlink(missing_ok=True)
        folder.rmdir()
        raise
    return folder


def _checked(cron: str | None, options: dict[str, Any]) -> dict[str, Any]:
    """Everything validated before the folder exists; an agent's ask defaults to AGENTS.md."""
    if not cron:
        if options.get("timezone"):
            raise UsageProblem("a time zone goes with a cron expression")
        return options
    check_schedule(cron, options.get("timezone"), clock.now())
    if not (options.get("command") or options.get("prompt") or options.get("backend")):
        raise ValidationError("a scheduled worker needs --command, or --backend (and --prompt)")
    if options.get("backend") and not options.get("prompt"):
        options["prompt_file"] = "AGENTS.md"  # the agent's ask: its standing brief
    return options


def template_folder(store: Store, name: str, path: str | None) -> str:
    """A new template's folder name: the one its path names in agents/, else one made from its
    display name (at most TEMPLATE_NAME_MAX characters)."""
    if path:
        resolved = (store.root / path).resolve()
        if resolved.parent == store.agents_dir.resolve():
            return validate_template_name(resolved.name)
    if not any(c.isalnum() for c in name):  # slugify would name it "job"
        raise ValidationError(
            f"the name {shown(name)} has no letter or digit to name the template's folder "
            "after; give a name with some"
        )
    return slugify(name, TEMPLATE_NAME_MAX)
