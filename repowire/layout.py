"""`repowire init`: the .repowire/ layout, its .gitignore and a commented config.yaml."""

from __future__ import annotations

from pathlib import Path

from .config import set_trusted
from .store import Store, create_exclusive

__all__ = ["init_root", "GITIGNORE", "CONFIG_TEMPLATE"]

GITIGNORE = """\
# Runtime files stay out of git; job records and templates can be committed.
locks/
*.log
*.exit
agents/*/state.yaml
.tmp-*
"""

CONFIG_TEMPLATE = """\
# repowire settings; every key is optional. See the README's "File format" section.
# max_concurrency: 4        # running executors at once
# kill_grace: 10s           # SIGTERM to SIGKILL when an executor is released
# allowed_paths: ["."]      # where executors may run, relative to the root
# backends:                 # your own agent CLIs, or overrides of the presets
#   mycli:
#     command: ["mycli", "run", "{prompt}"]
#     resume_command: ["mycli", "resume", "{session_id}", "{prompt}"]
"""


def init_root(root: Path) -> bool:
    """Create the layout (keeping what exists) and trust the root; True if anything was new."""
    store = Store(root)
    existed = store.base.is_dir()
    store.ensure_layout()
    created = create_exclusive(store.base / ".gitignore", GITIGNORE)
    created = create_exclusive(store.base / "config.yaml", CONFIG_TEMPLATE) or created
    set_trusted(root)
    return created or not existed
