"""repowire: a filesystem-native durable job tracker.

The Python API (the CLI, the MCP server and the dashboard are thin faces over it)::

    from repowire import Project
    project = Project(root)
    job = project.create_job("Build docs", command="make docs")
    project.update(job.id, note="started")

or the same as functions of the root: create_job, get_job, list_all, update_job, add_note,
cancel, retry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from repowire.api.library import (
        add_note,
        cancel,
        create_job,
        create_template,
        find,
        get_job,
        get_result,
        list_all,
        retry,
        update_job,
    )
    from repowire.api.project import Project
    from repowire.errors import (
        ConfigError,
        InvalidId,
        JobNotFound,
        NotTrusted,
        RepowireError,
        TransitionRefused,
        ValidationError,
    )
    from repowire.record.job import Job
    from repowire.record.states import State
    from repowire.record.template import Template

__version__ = "0.1.0"

__all__ = [
    "Project",
    "add_note",
    "cancel",
    "create_job",
    "create_template",
    "find",
    "get_job",
    "get_result",
    "list_all",
    "retry",
    "update_job",
    "ConfigError",
    "InvalidId",
    "JobNotFound",
    "NotTrusted",
    "RepowireError",
    "TransitionRefused",
    "ValidationError",
    "Job",
    "State",
    "Template",
]

# Where each public name lives: imported when first used, so that `import repowire` (which
# every command line run does) costs nothing until the API is asked for.
_HOMES = {
    "Project": "api.project",
    **dict.fromkeys(
        ["add_note", "cancel", "create_job", "create_template", "find", "get_job"]
        + ["get_result", "list_all", "retry", "update_job"],
        "api.library",
    ),
    **dict.fromkeys(
        ["ConfigError", "InvalidId", "JobNotFound", "NotTrusted", "RepowireError"]
        + ["TransitionRefused", "ValidationError"],
        "errors",
    ),
    "Job": "record.job",
    "State": "record.states",
    "Template": "record.template",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'repowire' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value
