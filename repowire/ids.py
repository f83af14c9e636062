"""Ids of jobs and names of templates: what they may be, and how new ones are made."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from repowire import clock
from repowire.errors import InvalidId, shown

__all__ = [
    "ID_PATTERN",
    "validate_id",
    "new_job_id",
    "slugify",
    "TEMPLATE_NAME_MAX",
    "validate_template_name",
]

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def validate_id(value: object, what: str = "job id") -> str:
    """Return value if it is a safe id (a file stem: letters, digits, . _ -), else InvalidId."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value) or value in (".", ".."):
        raise InvalidId(
            f"{shown(value)} is not a valid {what}: use 1 to 128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def new_job_id(at: datetime | None = None) -> str:
    """A fresh id like job-20261126-021530-a1b2, sortable by its UTC creation time."""
    at = (at or clock.now()).astimezone(timezone.utc)
    import secrets  # imported here: commands that make no id start faster

    return f"job-{at:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def slugify(text: str, limit: int = 128) -> str:
    """A valid id made from a display name ("Daily brief" -> "daily-brief", "Ünïcode" ->
    "unicode"), at most `limit` characters."""
    import unicodedata  # imported here: only a name made into an id needs it

    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9._-]+", "-", ascii_text.strip().lower()).strip("-._")
    return validate_id(slug[:limit].rstrip("-._") or "job", "name")


TEMPLATE_NAME_MAX = 100  # so "<name>-<YYYYMMDDTHHMMSSZ>-<n>" and "state.<name>" stay valid ids


def validate_template_name(value: object, what: str = "template name") -> str:
    """A template (worker folder) name: a valid id of at most TEMPLATE_NAME_MAX characters."""
    name = validate_id(value, what)
    if len(name) > TEMPLATE_NAME_MAX:
        raise InvalidId(
            f"{what} {shown(name[:20] + '...')} has {len(name)} characters; at most "
            f"{TEMPLATE_NAME_MAX} are allowed, so the ids of its runs stay valid"
        )
    return name
