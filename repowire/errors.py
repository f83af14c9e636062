"""The errors repowire raises: each carries one sentence a user can act on."""

from __future__ import annotations

import reprlib

__all__ = [
    "shown",
    "RepowireError",
    "ValidationError",
    "InvalidId",
    "JobNotFound",
    "TransitionRefused",
    "ConfigError",
    "NotTrusted",
    "LockTimeout",
    "UsageProblem",
    "Problems",
    "problems_of",
]


class RepowireError(Exception):
    """Base of every error meant for a user; the CLI prints it and exits 1."""


class ValidationError(RepowireError, ValueError):
    """A value, key or file does not have the form the contract asks for."""


class InvalidId(ValidationError):
    """An id or template name that is not safe to use as a file name."""


class JobNotFound(RepowireError, LookupError):
    """No job record (or template) has that id."""


class TransitionRefused(RepowireError):
    """The transition table does not allow the requested state change."""


class ConfigError(ValidationError):
    """config.yaml, the root or the trust store is missing, unreadable or malformed."""


class NotTrusted(RepowireError, PermissionError):
    """The runner refuses to execute jobs in a root the user has not trusted."""


class LockTimeout(RepowireError, TimeoutError):
    """Another writer held a job's lock for too long."""


class UsageProblem(ValidationError):
    """A call that combines options wrongly or gives none; the CLI exits 2 for it, as for usage."""


class Problems(ValidationError):
    """Every problem found in one file, each a sentence; str() joins them after the file."""

    def __init__(self, where: str, problems: list[str]) -> None:
        super().__init__(f"{where}: " + "; ".join(problems))
        self.where = where
        self.problems = problems


def problems_of(exc: Exception, path: object) -> list[str]:
    """The problems an error names, each without the file's name in front."""
    if isinstance(exc, Problems):
        return list(exc.problems)
    message = str(exc)
    prefix = f"{path}: "
    return [message[len(prefix) :] if message.startswith(prefix) else message]


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 2, 60, 60
_SHORT.maxlist = _SHORT.maxdict = _SHORT.maxtuple = _SHORT.maxset = 4


def shown(value: object) -> str:
    """A short repr of any value for an error message, however large or deeply nested it is
    (a YAML alias bomb expands to gigabytes when printed whole)."""
    return _SHORT.repr(value)
