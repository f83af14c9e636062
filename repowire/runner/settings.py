"""What a running runner rereads at every step: config.yaml, and whether the root is trusted.

Each file is looked at by its identity (inode, size, change time), so an unchanged file costs a
stat. A broken config.yaml is reported once and the last good settings are kept; a revoked root
starts nothing new until it is trusted again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from repowire.errors import RepowireError
from repowire.store.config import Config, is_trusted, load_config, trust_file

__all__ = ["LiveSettings"]


def _identity(path: Path) -> tuple[int, ...] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class LiveSettings:
    """The config and trust a runner serves with, kept in step with their files."""

    def __init__(self, root: Path, log: Callable[[str], None], config: Config) -> None:
        self.root = root
        self.log = log
        self.config = config
        self.trusted = True
        self._config_seen = _identity(self._config_path())
        self._trust_seen: tuple[int, ...] | None = None
        self._told: str | None = None

    def _config_path(self) -> Path:
        return self.root / ".repowire" / "config.yaml"

    def refresh(self) -> bool:
        """Reread what changed; True when config.yaml changed and was applied."""
        changed = self._reload_config()
        self._recheck_trust()
        return changed

    def _reload_config(self) -> bool:
        seen = _identity(self._config_path())
        if seen == self._config_seen:
            return False
        self._config_seen = seen
        try:
            self.config = load_config(self.root)
        except RepowireError as exc:
            self.log(f"config.yaml not applied, keeping the last good settings: {exc}")
            return False
        self.log("config.yaml changed; its settings apply from this step")
        return True

    def _recheck_trust(self) -> None:
        seen = _identity(trust_file())
        if seen == self._trust_seen:
            return
        self._trust_seen = seen
        try:
            trusted = is_trusted(self.root)
        except RepowireError as exc:
            trusted = False
            self.log(f"the trust store cannot be read ({exc}); starting nothing new")
        if trusted != self.trusted:
            self.log(
                f"{self.root} is trusted again; starting jobs"
                if trusted
                else f"{self.root} is no longer trusted ('repowire trust --revoke'); starting "
                "nothing new, and watching what runs until it ends"
            )
        self.trusted = trusted
