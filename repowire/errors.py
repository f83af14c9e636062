"""The errors repowire raises: each carries one sentence a user can act on."""

from __future__ import annotations

__all__ = [
    "RepowireError",
    "ValidationError",
    "InvalidId",
    "JobNotFound",
    "TransitionRefused",
    "ConfigError",
    "NotTrusted",
    "LockTimeout",
    "UsageProblem",
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
