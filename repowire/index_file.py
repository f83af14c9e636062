"""The listing's derived index, .repowire/cache/index.json: each record's file identity and
plain data, so a listing parses only the files that changed. A cache, rebuilt from the files
whenever it is damaged or of another version, and never trusted for a changed file."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from .errors import RepowireError
from .files import atomic_write, read_tail

__all__ = ["read_index", "write_index", "INDEX_VERSION"]

INDEX_VERSION = 1
Index = dict[str, tuple[tuple[int, ...], dict[str, Any]]]


def _path(base: Path) -> Path:
    return base / "cache" / "index.json"


def read_index(base: Path) -> Index:
    """The index of the .repowire/ folder `base`; empty when there is none or it is damaged."""
    try:
        data = json.loads(read_tail(_path(base), 1 << 40) or "{}")
    except (ValueError, RepowireError):
        return {}  # a damaged index is rebuilt from the files
    if not isinstance(data, dict) or data.get("version") != INDEX_VERSION:
        return {}
    entries = data.get("entries")
    if not isinstance(entries, dict):
        return {}
    return {
        k: (tuple(v[0]), v[1])
        for k, v in entries.items()
        if isinstance(v, list) and len(v) == 2 and isinstance(v[1], dict)
    }


def write_index(base: Path, index: Index) -> None:
    data = {
        "version": INDEX_VERSION,
        "entries": {k: [list(key), rec] for k, (key, rec) in index.items()},
    }
    with contextlib.suppress(OSError):
        (base / "cache").mkdir(exist_ok=True)
        if not (base / "cache").is_symlink():  # never written through a planted link
            atomic_write(_path(base), json.dumps(data, separators=(",", ":")))
