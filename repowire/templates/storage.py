"""Reading and writing recurring templates: agents/<name>/job.yaml and its state.yaml."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any

from repowire import clock
from repowire.errors import JobNotFound, ValidationError, problems_of
from repowire.files import atomic_write, create_exclusive, dump_yaml, load_yaml, read_text
from repowire.ids import validate_template_name
from repowire.record.job import Invalid
from repowire.record.parsing import parse_template
from repowire.record.template import Template, template_to_dict
from repowire.store.records import Store
from repowire.times import parse_time

__all__ = [
    "template_dir",
    "template_names",
    "read_template",
    "check_timing",
    "load_template",
    "list_templates",
    "create_template",
    "set_enabled",
    "set_paused",
    "read_state",
    "write_state",
]

_ENABLED_LINE = re.compile(r"^enabled\s*:.*$", re.MULTILINE)


def template_dir(store: Store, name: str) -> Path:
    return store.agents_dir / validate_template_name(name)


def template_names(store: Store) -> list[str]:
    """Every template folder in agents/, sorted: dot-folders are skipped, and so is a worker
    folder for one-off jobs (one with an AGENTS.md but no job.yaml, as `agents create` makes
    without --cron). Any other folder without a job.yaml is listed, and reported invalid."""
    try:
        entries = list(os.scandir(store.agents_dir))
    except FileNotFoundError:
        return []
    names = []
    for entry in entries:
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        folder = Path(entry.path)
        if (folder / "AGENTS.md").exists() and not (folder / "job.yaml").exists():
            continue
        names.append(entry.name)
    return sorted(names)


def read_template(store: Store, name: str) -> Template:
    """The template in agents/<name>/job.yaml, validated (cron and zone included)."""
    path = template_dir(store, name) / "job.yaml"
    if template_dir(store, name).is_symlink():
        raise ValidationError(
            f"{template_dir(store, name)}: is a symbolic link; refusing to follow it"
        )
    try:
        data = load_yaml(path)
    except FileNotFoundError:
        if template_dir(store, name).is_dir():
            raise ValidationError(f"{path}: missing; a worker folder needs a job.yaml") from None
        raise JobNotFound(f"no job or template named {name} in {store.base}") from None
    template = parse_template(name, data, where=str(path))
    try:
        check_timing(template)
    except ValidationError as exc:
        raise ValidationError(f"{path}: {exc}") from None
    return template


def check_timing(template: Template) -> None:
    """Its expression matches some date in a known zone, and its jitter is shorter than the
    interval between fires; a ValidationError says which is not so."""
    from repowire.templates.cron import (  # here: no croniter without templates
        check_jitter,
        next_fires,
        zone,
    )

    tz = zone(template.timezone)
    next_fires(template.cron, tz, clock.now(), 1)  # also refuses never-matching expressions
    if template.jitter is not None:
        check_jitter(template.cron, tz, template.offset_span, clock.now())


def load_template(store: Store, name: str) -> Template | Invalid:
    """A template, or an Invalid entry that says why it could not be read."""
    path = store.agents_dir / name / "job.yaml"
    label = f".repowire/agents/{name}/job.yaml"
    try:
        return read_template(store, name)
    except (ValidationError, JobNotFound) as exc:
        return Invalid(name, label, "; ".join(problems_of(exc, path)), kind="template")


def list_templates(store: Store) -> list[Template | Invalid]:
    """Every template of agents/; a folder removed while it was listed is no longer one."""
    found = [load_template(store, name) for name in template_names(store)]
    return [
        item
        for item in found
        if not isinstance(item, Invalid) or (store.agents_dir / item.id).exists()
    ]


def create_template(store: Store, template: Template) -> Path:
    """Write a new worker folder's job.yaml; refuses to overwrite an existing one.

    A new folder is made whole in a dot-folder and renamed into agents/, so no reader (a
    runner, the dashboard) ever sees a worker folder without its job.yaml."""
    store.ensure_layout()
    folder = template_dir(store, template.name)
    line = "# yaml-language-server: $schema=../../schemas/template.json\n"  # for editors
    text = line + dump_yaml(template_to_dict(template))
    if not folder.exists():
        import shutil  # imported here: a listing makes no folder
        import tempfile

        staging = Path(tempfile.mkdtemp(dir=store.agents_dir, prefix=".tmp-"))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # a folder like any other, not mkdtemp's 0700
        try:
            create_exclusive(staging / "job.yaml", text)
            os.rename(staging, folder)  # fails if the folder appeared meanwhile
            return folder / "job.yaml"
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    path = folder / "job.yaml"
    if not create_exclusive(path, text):
        raise ValidationError(f"a template named {template.name} already exists ({path})")
    return path


def set_enabled(store: Store, name: str, enabled: bool) -> Template:
    """Pause or resume a template by editing only its `enabled:` line; the rest stays as written."""
    template = read_template(store, name)
    path = template_dir(store, name) / "job.yaml"
    with store.lock(f"template.{name}"):
        text = read_text(path)
        line = f"enabled: {'true' if enabled else 'false'}"
        if _ENABLED_LINE.search(text):
            text = _ENABLED_LINE.sub(line, text, count=1)
        else:
            text = text + ("" if text.endswith("\n") or not text else "\n") + line + "\n"
        updated = parse_template(name, load_yaml(path, text), where=str(path))
        if updated.enabled != enabled:
            raise ValidationError(f"{path}: could not set enabled; edit the file by hand")
        atomic_write(path, text)
    template.enabled = enabled
    return template


_STATE_TIMES = (
    "first_seen",
    "last_slot",
    "next_fire",
    "last_fire",
    "paused_at",
    "last_success",
    "budget_paused_until",  # a budget pause holds it until then (budgets.py)
    "budget_waived_until",  # resumed by hand: its budget is not applied until then
)
_STATE_TEXTS = ("last_run", "last_state", "session_id", "session_cleared", "paused_reason")


def set_paused(store: Store, name: str, paused: bool, reason: str | None = None) -> Template:
    """Pause (enabled: false) or resume a template; why and when it was paused are kept in
    its state.yaml, so `jobs show` can say."""
    template = read_template(store, name)
    if paused or not template.enabled:
        template = set_enabled(store, name, not paused)
    with store.lock(f"state.{name}"):
        state = read_state(store, name)
        state.pop("paused_reason", None)
        state.pop("paused_at", None)
        budget_pause = state.pop("budget_paused_until", None)
        if not paused and budget_pause is not None:  # by hand: the budget waits a period
            state["budget_waived_until"] = budget_pause
        if paused:
            state["paused_at"] = clock.now()
            if reason:
                state["paused_reason"] = reason
        write_state(store, name, state)
    return template


def read_state(store: Store, name: str) -> dict[str, Any]:
    """The runner's state.yaml for a template, its values checked; empty when there is none.

    state.yaml is the runner's own: a value of the wrong kind (edited by hand, or written by a
    clock that was far off) is dropped, and the runner writes a good one at its next fire."""
    path = template_dir(store, name) / "state.yaml"
    try:
        data = load_yaml(path)
    except (FileNotFoundError, ValidationError):
        return {}
    return clean_state(data) if isinstance(data, dict) else {}


def clean_state(data: dict[str, Any]) -> dict[str, Any]:
    """The keys of a state.yaml mapping that hold what they should."""
    state: dict[str, Any] = {}
    for key in _STATE_TIMES:
        with contextlib.suppress(ValidationError):
            state[key] = parse_time(data[key]) if data.get(key) is not None else None
    for key in _STATE_TEXTS:
        if isinstance(data.get(key), str):
            state[key] = data[key]
    total = data.get("skipped_total")
    if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
        state["skipped_total"] = total
    skipped = data.get("skipped")
    if isinstance(skipped, list):
        state["skipped"] = [entry for entry in map(_skip_entry, skipped) if entry]
    return {k: v for k, v in state.items() if v is not None}


def _skip_entry(entry: Any) -> dict[str, Any] | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("reason"), str):
        return None
    try:
        out: dict[str, Any] = {
            k: parse_time(entry[k]) for k in ("slot", "at", "until") if k in entry
        }
    except ValidationError:
        return None
    count = entry.get("count")
    if isinstance(count, int) and not isinstance(count, bool) and count > 0:
        out["count"] = count
    return {"reason": entry["reason"], **out} if "slot" in out else None


def write_state(store: Store, name: str, state: dict[str, Any]) -> None:
    atomic_write(template_dir(store, name) / "state.yaml", dump_yaml(state))
