"""Job ids and template names: what they may be, and how new ones are made."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from repowire.errors import InvalidId
from repowire.ids import new_job_id, slugify, validate_id


@pytest.mark.parametrize("good", ["a", "job-1", "A.b_c-d", "x" * 128, "9"])
def test_valid_ids(good):
    assert validate_id(good) == good


@pytest.mark.parametrize(
    "bad", ["", "../x", "a/b", "..", ".", ".hidden", "-x", "x" * 129, "a b", "a\nb", None, 5, "é"]
)
def test_invalid_ids(bad):
    with pytest.raises(InvalidId):
        validate_id(bad)


def test_generated_ids_sort_by_time():
    early = new_job_id(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    late = new_job_id(datetime(2026, 11, 26, 2, 15, 30, tzinfo=timezone.utc))
    assert early.startswith("job-20260102-030405-") and len(early) == len(
        "job-20260102-030405-abcd"
    )
    assert early < late
    validate_id(late)


def test_slugify():
    assert slugify("Daily brief") == "daily-brief"
    assert slugify("  ..Weird  Name!! ") == "weird-name"
