"""Root discovery, config.yaml, and the trust store kept in the user's config folder."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repowire.errors import ConfigError, ValidationError, shown
from repowire.files import atomic_write, dump_yaml, load_yaml
from repowire.ids import validate_id
from repowire.record.fields import notify_targets
from repowire.record.job import SHELL
from repowire.record.parsing import slurm_options
from repowire.store.roots import RUNTIME_FOLDERS, find_root, require_repowire
from repowire.times import parse_duration

__all__ = [
    "RUNTIME_FOLDERS",
    "Config",
    "find_root",
    "require_repowire",
    "load_config",
    "trust_file",
    "is_trusted",
    "set_trusted",
]


@dataclass
class Config:
    """The settings of config.yaml (docs/file-format.md), defaults filled in."""

    max_concurrency: int = 4
    kill_grace: float = 10.0
    allowed_paths: list[str] = field(default_factory=lambda: ["."])
    backends: dict[str, dict[str, Any]] = field(default_factory=dict)
    slurm: dict[str, Any] = field(default_factory=dict)  # defaults for executor: slurm
    stall_timeout: float | None = None  # a default for jobs without their own
    prices: dict[str, dict[str, float]] = field(default_factory=dict)  # USD per million tokens
    notify: list[dict[str, Any]] = field(default_factory=list)  # for jobs with none of their own

    @property
    def slurm_max_jobs(self) -> int:
        return int(self.slurm.get("max_jobs", 100))


def _backend_config(name: str, spec: Any, where: str) -> dict[str, Any]:
    validate_id(name, "backend name")
    if name == SHELL:
        raise ConfigError(f"{where}: backends: {SHELL} is built in and cannot be redefined")
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: backends: {name}: expected a mapping")
    checks = {
        "command": _argv,
        "resume_command": _argv,
        "stdin": _bool,
        "session_id_pattern": _regex,
        "final_message_key": _key,
        "env": _str_mapping,
        "usage_keys": _usage_keys,
    }
    for key, value in spec.items():
        if key not in checks:
            raise ConfigError(f"{where}: backends: {name}: unknown key {shown(key)}")
        try:
            checks[key](value)
        except ValidationError as exc:
            raise ConfigError(f"{where}: backends: {name}: {key}: {exc}") from None
    return dict(spec)


_USAGE_KEYS = ("input_tokens", "cached_input_tokens", "output_tokens", "cost_usd", "model")
_PRICE_KEYS = ("input", "cached_input", "output")


def _usage_keys(value: Any) -> None:
    if not isinstance(value, dict) or not value:
        raise ValidationError(f"expected a mapping of {', '.join(_USAGE_KEYS)} to dotted keys")
    for key, dotted in value.items():
        if key not in _USAGE_KEYS:
            raise ValidationError(f"unknown usage key {shown(key)} ({', '.join(_USAGE_KEYS)})")
        _key(dotted)


def _prices(value: Any) -> dict[str, dict[str, float]]:
    """prices: {model or backend: {input, cached_input, output}}, USD per million tokens."""
    if not isinstance(value, dict):
        raise ValidationError("expected a mapping of model names to prices per million tokens")
    out: dict[str, dict[str, float]] = {}
    for name, price in value.items():
        if not isinstance(price, dict) or not price or set(price) - set(_PRICE_KEYS):
            raise ValidationError(f"{name}: expected a mapping of {', '.join(_PRICE_KEYS)}")
        for key, amount in price.items():
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
                raise ValidationError(f"{name}: {key}: expected a number 0 or more")
        out[str(name)] = {k: float(v) for k, v in price.items()}
    return out


def _argv(value: Any) -> None:
    if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
        raise ValidationError("expected a list of strings, such as [mycli, run, '{prompt}']")


def _key(value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("expected a dotted key such as result or item.text")


def _bool(value: Any) -> None:
    if not isinstance(value, bool):
        raise ValidationError(f"expected true or false, got {shown(value)}")


def _regex(value: Any) -> None:
    if not isinstance(value, str):
        raise ValidationError("expected a regular expression")
    try:
        re.compile(value)
    except re.error as exc:
        raise ValidationError(f"not a valid regular expression ({exc})") from None


def _str_mapping(value: Any) -> None:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, (str, int, float)) for k, v in value.items()
    ):
        raise ValidationError("expected a mapping of names to text values")


def _parse_config(data: Any, where: str) -> Config:
    if data is None:
        return Config()
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of settings")
    config = Config()
    for key, value in data.items():
        try:
            _apply_setting(config, key, value, where)
        except ConfigError:
            raise
        except ValidationError as exc:
            raise ConfigError(f"{where}: {key}: {exc}") from None
    return config


def _apply_setting(config: Config, key: Any, value: Any, where: str) -> None:
    if key == "max_concurrency":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValidationError(f"expected a whole number 1 or more, got {shown(value)}")
        config.max_concurrency = value
    elif key == "kill_grace":
        config.kill_grace = parse_duration(value)
    elif key == "stall_timeout":
        config.stall_timeout = parse_duration(value)
    elif key == "prices":
        config.prices = _prices(value)
    elif key == "notify":
        config.notify = notify_targets(value)
    elif key == "allowed_paths":
        if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            raise ValidationError("expected a list of folders relative to the root")
        config.allowed_paths = list(value)
    elif key == "slurm":
        config.slurm = slurm_options(value, extra=("max_jobs",))
    elif key == "backends":
        if not isinstance(value, dict):
            raise ValidationError("expected a mapping of backend names to settings")
        config.backends = {n: _backend_config(n, s, where) for n, s in value.items()}
    else:
        raise ConfigError(f"{where}: unknown key {shown(key)}")


def load_config(root: Path) -> Config:
    """config.yaml of the root, validated; defaults when there is none."""
    path = root / ".repowire" / "config.yaml"
    try:
        data = load_yaml(path)
    except FileNotFoundError:
        return Config()
    except ValidationError as exc:
        raise ConfigError(str(exc)) from None
    return _parse_config(data, str(path))


# --- trust ---------------------------------------------------------------------------------


def trust_file() -> Path:
    """$XDG_CONFIG_HOME/repowire/trusted.yaml (default ~/.config), outside every repository."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "repowire" / "trusted.yaml"


def _trusted_roots() -> list[str]:
    path = trust_file()
    try:
        data = load_yaml(path)
    except FileNotFoundError:
        return []
    except ValidationError as exc:
        raise ConfigError(str(exc)) from None
    roots = (data or {}).get("roots", []) if isinstance(data, dict) else None
    if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
        raise ConfigError(f"{path}: expected 'roots:' with a list of folders")
    return roots


def is_trusted(root: Path) -> bool:
    """Whether the user trusted this root for the runner."""
    return str(root.resolve()) in _trusted_roots()


def set_trusted(root: Path, trusted: bool = True) -> None:
    """Add the root to the trust store, or remove it."""
    key = str(root.resolve())
    roots = [r for r in _trusted_roots() if r != key]
    if trusted:
        roots.append(key)
    path = trust_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, dump_yaml({"roots": sorted(roots)}))
