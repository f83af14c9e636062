"""`repowire validate`: check job files, templates and config, reporting `file: problem`."""

from __future__ import annotations

from pathlib import Path

from repowire.backends.presets import read_prompt, resolve_backend
from repowire.errors import Problems, RepowireError, ValidationError, problems_of
from repowire.executors.preparation import worker_folder
from repowire.files import load_yaml
from repowire.record.dependencies import find_cycle
from repowire.record.job import SHELL
from repowire.record.parsing import parse_job, parse_template
from repowire.record.template import Template
from repowire.store.config import load_config
from repowire.store.records import Store
from repowire.templates.storage import check_timing, list_templates, template_names

__all__ = ["validate_paths", "check_after"]


def _check_job(root: Path, path: Path) -> None:
    """The record, and for one still to run what the runner checks before it starts it: the
    worker folder against allowed_paths, the backend, and the prompt file."""
    job = parse_job(path.stem, load_yaml(path), where=str(path))
    if job.is_terminal or path.parent.resolve() != (root / ".repowire" / "jobs").resolve():
        return
    try:
        config = load_config(root)
    except RepowireError:
        return  # config.yaml is reported on its own line
    problems = []
    try:
        folder = worker_folder(Store(root), config, job)
        if job.effective_backend not in (None, SHELL):
            resolve_backend(str(job.effective_backend), config)
            read_prompt(job, folder)
    except ValidationError as exc:
        problems.append(str(exc))
    if problems:
        raise Problems(str(path), problems)


def _check_template(path: Path) -> None:
    template = parse_template(path.parent.name, load_yaml(path), where=str(path))
    try:
        check_timing(template)
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
        elif path.is_dir() and (path / "AGENTS.md").exists():
            continue  # a worker folder for one-off jobs: no template to check
        elif path.is_dir():
            found.extend(_all_files(path if path.name == ".repowire" else path / ".repowire"))
        elif path.suffix in (".yaml", ".yml") or not path.exists():
            found.append(path)  # (an AGENTS.md or a log named by a hook is no record: skipped)
    return found


def _all_files(base: Path) -> list[Path]:
    store = Store(base.parent)
    files = [base / "config.yaml"] if (base / "config.yaml").exists() else []
    files += [store.jobs_dir / f"{job_id}.yaml" for job_id in store.job_ids()]
    files += sorted(p for p in store.jobs_dir.glob("*.yml") if not p.name.startswith("."))
    files += [store.agents_dir / name / "job.yaml" for name in template_names(store)]
    return files


def validate_paths(root: Path, paths: list[Path]) -> tuple[int, list[str]]:
    """How many files were checked, and one `file: problem` line for each problem found (files
    named relative to the root)."""
    lines: list[str] = []
    targets = _targets(root, paths)
    for path in targets:
        try:
            if not path.exists() and not path.is_symlink():
                raise RepowireError(f"{path}: no such file")
            _check(root, path)
        except RepowireError as exc:
            shown_as = _relative(root, path)
            lines += [f"{shown_as}: {problem}" for problem in problems_of(exc, path)]
    if not paths:
        lines += _dependency_problems(root) + _chain_problems(root)
    return len(targets), lines


def _chain_problems(root: Path) -> list[str]:
    """`then` naming a template that does not exist, and chains that loop back."""
    templates = [t for t in list_templates(Store(root)) if isinstance(t, Template)]
    graph = {t.name: [*t.then, *t.then_on_failure] for t in templates}
    return _graph_problems(graph, ".repowire/agents/{}/job.yaml: then", "template", "a loop")


def _dependency_problems(root: Path) -> list[str]:
    """`after` naming a job that does not exist, and cycles of jobs waiting for each other."""
    records = [row.record for row in Store(root).list_rows() if row.state != "invalid"]
    graph = {str(r["id"]): list(r.get("after") or []) for r in records}
    return _graph_problems(graph, ".repowire/jobs/{}.yaml: after", "job", "a cycle")


def _graph_problems(graph: dict[str, list[str]], where: str, what: str, loop: str) -> list[str]:
    """A line for each name the graph points at but does not hold, and one for a cycle."""
    lines = [
        f"{where.format(name)}: no {what} {target}"
        for name, targets in graph.items()
        for target in targets
        if target not in graph
    ]
    cycle = find_cycle(graph)
    if cycle:
        lines.append(f"{where.format(cycle[0])}: {loop}, {' -> '.join(cycle)}; none of it runs")
    return lines


def _check(root: Path, path: Path) -> None:
    if path.name == "config.yaml":
        _check_config(path)
    elif path.name == "job.yaml":
        _check_template(path)
    elif path.suffix == ".yml":
        raise RepowireError(
            f"records are named <id>.yaml, so this file is not read; rename it to {path.stem}.yaml"
        )
    else:
        _check_job(root, path)


def _relative(root: Path, path: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def check_after(store: Store, after: list[str], own_id: str | None) -> None:
    """The jobs a new job waits for exist (so no cycle can form), and are not itself."""
    for dep in after:
        if dep == own_id:
            raise ValidationError(f"job {dep} cannot wait for itself")
        if not store.job_file(dep).exists():
            raise ValidationError(f"after: no job {dep} (a job can wait only for jobs that exist)")
