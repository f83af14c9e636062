"""Which root a command works on, and whether its .repowire/ folder can be used: what every
command does first, so this module needs neither YAML nor the job model."""

from __future__ import annotations

import os
from pathlib import Path

from repowire.errors import ConfigError

__all__ = ["RUNTIME_FOLDERS", "find_root", "require_repowire"]

RUNTIME_FOLDERS = ("jobs", "agents", "locks", "cache")


def find_root(explicit: str | None = None, cwd: Path | None = None) -> Path:
    """--root or REPOWIRE_ROOT, else the nearest ancestor holding .repowire/, else the cwd."""
    if explicit:
        root = Path(explicit).expanduser()
        if not root.is_dir():
            raise ConfigError(f"the root {explicit} is not an existing folder")
        return root.resolve()
    start = (cwd or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / ".repowire").is_dir():
            return folder
    return start


def require_repowire(root: Path) -> None:
    """Raise a clear error when the root has no usable .repowire/ folder."""
    base = root / ".repowire"
    if not base.exists():
        raise ConfigError(
            f"no .repowire/ folder in {root} or its parents; run 'repowire init' or pass --root"
        )
    if not base.is_dir():
        raise ConfigError(f"{base} is not a folder")
    if not os.access(base, os.R_OK | os.X_OK):
        raise ConfigError(f"{base} cannot be read; check its permissions")
    for name in RUNTIME_FOLDERS:
        if (base / name).is_symlink():  # a committed link would send writes out of the root
            raise ConfigError(
                f"{base / name} is a symbolic link; repowire does not follow it out of the "
                "root (replace it with a folder)"
            )
