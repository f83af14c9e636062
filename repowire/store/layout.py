"""`repowire init`: the .repowire/ layout, its .gitignore and a commented config.yaml."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path

from repowire.files import atomic_write, create_exclusive
from repowire.store.config import set_trusted
from repowire.store.records import Store

__all__ = [
    "init_root",
    "write_schemas",
    "GITIGNORE",
    "CONFIG_TEMPLATE",
    "AGENTS_MD",
    "SCHEMA_LINE",
]

GITIGNORE = """\
# Runtime files stay out of git; one-off job records and templates can be committed.
locks/
cache/
worktrees/
*.log
*.exit
agents/*/state.yaml
.tmp-*
# A template's runs (<template>-<YYYYMMDDTHHMMSSZ>, a new record every fire) and their files.
jobs/*-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z.*
jobs/*-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z-*
"""

SCHEMA_LINE = "# yaml-language-server: $schema={}\n"  # editors complete and check the keys
CONFIG_TEMPLATE = (
    SCHEMA_LINE.format("schemas/config.json")
    + """\
# repowire settings; every key is optional. See docs/file-format.md in repowire's repository.
# max_concurrency: 4        # running executors at once
# kill_grace: 10s           # SIGTERM to SIGKILL when an executor is released
# allowed_paths: ["."]      # where executors may run, relative to the root
# backends:                 # your own agent CLIs, or overrides of the presets
#   mycli:
#     command: ["mycli", "run", "{prompt}"]
#     resume_command: ["mycli", "resume", "{session_id}", "{prompt}"]
"""
)


def init_root(root: Path) -> bool:
    """Create the layout (keeping what exists) and trust the root; True if anything was new."""
    store = Store(root)
    existed = store.base.is_dir()
    store.ensure_layout()
    created = create_exclusive(store.base / ".gitignore", GITIGNORE) or _complete_gitignore(store)
    created = create_exclusive(store.base / "config.yaml", CONFIG_TEMPLATE) or created
    write_schemas(store)
    set_trusted(root)
    return created or not existed


def _complete_gitignore(store: Store) -> bool:
    """Add the lines of GITIGNORE an older .repowire/.gitignore lacks; True if any were."""
    path = store.base / ".gitignore"
    if path.is_symlink() or not path.is_file():
        return False
    text = path.read_text(encoding="utf-8", errors="replace")
    have = {line.strip() for line in text.splitlines()}
    missing = [line for line in GITIGNORE.splitlines() if line and not line.startswith("#")]
    missing = [line for line in missing if line not in have]
    if not missing:
        return False
    lead = "" if text.endswith("\n") or not text else "\n"
    added = "# Added by repowire init (worktree runs, template runs):\n" + "\n".join(missing)
    atomic_write(path, f"{text}{lead}{added}\n")
    return True


def write_schemas(store: Store) -> None:
    """.repowire/schemas/{job,template,config}.json, rewritten to match this version."""
    from repowire.record.json_schemas import KINDS, schema_for

    folder = store.base / "schemas"
    folder.mkdir(exist_ok=True)
    for kind in KINDS:
        atomic_write(folder / f"{kind}.json", json.dumps(schema_for(kind), indent=2) + "\n")


AGENTS_MD = """\
# {name}

Standing instructions for the {name} worker. Edit this file: it is the worker's memory and
its brief, read at the start of every run (runs work in this folder).

## Purpose

Describe here what this worker does on each run, and what a good result looks like.

## Reporting

Each run is a job; its id is in `$REPOWIRE_JOB_ID`. Report progress and the result with:

    repowire jobs update "$REPOWIRE_JOB_ID" --note "what you did so far"
    repowire jobs update "$REPOWIRE_JOB_ID" --state succeeded --result-summary "one line"

Write a longer result, in Markdown, to the file named by `$REPOWIRE_RESULT_FILE`. If the work
cannot be done, end with `--state failed` and say why in a note.
"""


def remove_stale_temp_files(store: Store, older_than: float = 60.0) -> list[Path]:
    """Delete temp files a crashed writer left (never a live writer's: they are young)."""
    cutoff = time.time() - older_than
    folders = [store.jobs_dir, store.locks_dir, store.agents_dir, *store.agents_dir.glob("*/")]
    removed = []
    for folder in folders:
        try:
            with os.scandir(folder) as listing:  # one pass: jobs/ may hold many files
                found = [Path(e.path) for e in listing if _is_temp(e.name)]
        except (FileNotFoundError, NotADirectoryError):
            continue
        for path in found:
            with contextlib.suppress(FileNotFoundError):
                if path.lstat().st_mtime < cutoff:
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path)  # a worker folder staged by a crashed writer
                    else:
                        path.unlink()
                    removed.append(path)
    return removed


def _is_temp(name: str) -> bool:
    """A writer's temp file: .tmp-*, .prompt-*, or an exit status not yet renamed into
    place (<id>.exit.tmp.<pid>)."""
    if name.startswith((".tmp-", ".prompt-")):
        return True
    return not name.startswith(".") and ".exit.tmp." in name
