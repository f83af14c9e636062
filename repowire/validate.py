"""`repowire validate`: check job files, templates and config, reporting `file: problem`."""

from __future__ import annotations

from pathlib import Path

from . import clock
from .config import load_config
from .errors import RepowireError
from .files import load_yaml
from .schedule import next_fires, zone
from .schema import parse_job, parse_template
from .store import Store
from .templates import template_names

__all__ = ["validate_paths"]


def _check_job(path: Path) -> None:
    parse_job(path.stem, load_yaml(path), where=str(path))


def _check_template(path: Path) -> None:
    template = parse_template(path.parent.name, load_yaml(path), where=str(path))
    try:
        next_fires(template.cron, zone(template.timezone), clock.now(), 1)
    except RepowireError as exc:
        raise RepowireError(f"{path}: {exc}") from None


def _check_config(path: Path) -> None:
    load_config(path.parent.parent)


def _targets(root: Path, paths: list[Path]) -> list[Path]:
    """The files to check: the ones named (folders expanded), or everything under .repowire/."""
    if not paths:
        paths = [root / ".repowire"]
    found: list[Path] = []
    for path in paths:
        if path.is_dir() and (path / "job.yaml").exists():
            found.append(path / "job.yaml")
        elif path.is_dir():
            found.extend(_all_files(path if path.name == ".repowire" else path / ".repowire"))
        else:
            found.append(path)
    return found


def _all_files(base: Path) -> list[Path]:
    store = Store(base.parent)
    files = [base / "config.yaml"] if (base / "config.yaml").exists() else []
    files += [store.jobs_dir / f"{job_id}.yaml" for job_id in store.job_ids()]
    files += [store.agents_dir / name / "job.yaml" for name in template_names(store)]
    return files


def validate_paths(root: Path, paths: list[Path]) -> tuple[int, list[str]]:
    """How many files were checked, and one `file: problem` line for each bad one."""
    problems: list[str] = []
    targets = _targets(root, paths)
    for path in targets:
        check = (
            _check_config
            if path.name == "config.yaml"
            else _check_template
            if path.name == "job.yaml"
            else _check_job
        )
        try:
            if not path.exists():
                raise RepowireError(f"{path}: no such file")
            check(path)
        except RepowireError as exc:
            message = str(exc)
            problems.append(message if message.startswith(str(path)) else f"{path}: {message}")
    return len(targets), problems
