import pytest

from repowire.errors import TransitionRefused, ValidationError
from repowire.record.job import job_from_record, job_to_dict, with_text_times
from repowire.record.parsing import parse_job, parse_template
from repowire.record.states import TERMINAL, TRANSITIONS, State, check_transition

ALLOWED_FOR_ANYONE = {
    ("queued", "running"),
    ("queued", "canceled"),
    ("running", "succeeded"),
    ("running", "failed"),
    ("running", "canceled"),
}


@pytest.mark.parametrize("old", list(State))
@pytest.mark.parametrize("new", list(State))
def test_transition_table(old, new):
    if old == new or (old.value, new.value) in ALLOWED_FOR_ANYONE:
        check_transition("j", old, new)
        return
    with pytest.raises(TransitionRefused) as info:
        check_transition("j", old, new)
    assert old.value in str(info.value)


def test_special_transitions():
    check_transition("j", State.RUNNING, State.QUEUED, actor="runner")
    check_transition("j", State.FAILED, State.QUEUED, actor="retry")
    check_transition("j", State.CANCELED, State.QUEUED, actor="retry")
    with pytest.raises(TransitionRefused, match="retry"):
        check_transition("j", State.FAILED, State.QUEUED)
    with pytest.raises(TransitionRefused):
        check_transition("j", State.SUCCEEDED, State.QUEUED, actor="retry")


def test_terminal_states_only_leave_through_retry():
    for (old, _new), who in TRANSITIONS.items():
        if old in TERMINAL:
            assert who == "retry"


def test_minimal_hand_written_job_is_queued():
    job = parse_job("hello", {"name": "Hello", "command": "echo hi"})
    assert job.state is State.QUEUED and job.effective_backend == "shell"
    assert job_to_dict(job)["state"] == "queued"


def test_round_trip_keeps_durations_as_written():
    data = {"command": ["ls", "-l"], "timeout": "10m", "retries": 2, "env": {"A": 1}}
    job = parse_job("j", data)
    out = job_to_dict(job)
    assert out["timeout"] == "10m" and out["env"] == {"A": "1"} and out["command"] == ["ls", "-l"]
    assert job.timeout_seconds == 600


def test_a_dumped_record_with_its_times_as_text_is_the_record():
    """The store remembers what it wrote from the dict it dumped (times as datetimes): the
    times made text must give job_to_dict's record exactly, every time key included."""
    stamp = "2026-11-26T10:00:00Z"
    times = ("due_at", "scheduled_for", "created_at", "updated_at", "started_at")
    data = {key: stamp for key in (*times, "finished_at", "retry_at")}
    data |= {"command": "x", "state": "failed", "attempt": 2, "labels": ["a"], "env": {"A": 1}}
    data |= {"notes": [{"at": stamp, "text": "t", "state": "running"}, {"at": stamp, "text": "u"}]}
    data |= {"executor": {"kind": "local", "pid": 5, "pgid": 5, "claimed_at": stamp}}
    data |= {"worktree": {"branch": "b", "base": "c", "path": "p"}, "usage": {"cost_usd": 1.0}}
    job = parse_job("j", data)
    whole = job_to_dict(job, with_id=True)
    assert with_text_times(job_to_dict(job, times_as_text=False), "j") == whole
    assert list(with_text_times(job_to_dict(job, times_as_text=False), "j")) == list(whole)
    assert job_to_dict(job_from_record(whole), with_id=True) == whole


@pytest.mark.parametrize(
    "data, says",
    [
        ({"command": "x", "colour": "red"}, "unknown key 'colour'"),
        ({"command": "x", "timeout": "soon"}, "timeout"),
        ({"command": "x", "retries": -1}, "retries"),
        ({"command": "x", "state": "done"}, "state"),
        ({"command": "x", "due_at": "tomorrow"}, "due_at"),
        ({"command": 5}, "command"),
        ({"command": "x", "env": ["A=1"]}, "env"),
        ({"name": "nothing to do"}, "needs a command or a prompt"),
        ({"prompt": "a", "prompt_file": "b"}, "not both"),
        ({"backend": "shell", "prompt": "a"}, "needs a command"),
        ({"command": "x", "backend": "../evil"}, "backend"),
        ({"command": "x", "continuity": "sometimes"}, "continuity"),
        ({"command": "x", "notes": [{"text": "no time"}]}, "notes"),
        (["a", "list"], "mapping"),
        ("just text", "mapping"),
    ],
)
def test_parse_errors_name_file_and_key(data, says):
    with pytest.raises(ValidationError) as info:
        parse_job("j", data, where="jobs/j.yaml")
    assert str(info.value).startswith("jobs/j.yaml") and says in str(info.value)


def test_template_parsing_and_defaults():
    template = parse_template("brief", {"cron": "@daily", "backend": "codex", "prompt": "go"})
    assert template.continuity == "resume" and template.overlap == "skip"
    assert template.catchup == "latest" and template.enabled
    with pytest.raises(ValidationError, match="overlap"):
        parse_template("brief", {"cron": "@daily", "command": "x", "overlap": "sometimes"})
    with pytest.raises(ValidationError, match="cron"):
        parse_template("brief", {"command": "x"})


def test_template_fields_and_their_checks_agree():
    from repowire.record.parsing import TEMPLATE_KEYS
    from repowire.record.template import TEMPLATE_FIELDS

    assert set(TEMPLATE_FIELDS) == set(TEMPLATE_KEYS)


def test_the_definition_holds_what_people_write_and_the_status_what_transitions_keep():
    """Job is its Definition (the keys a file's author writes) and its Status (the keys the
    transitions maintain); the parser's lists of keys say the same."""
    from repowire.record.job import DEFINITION_FIELDS, STATUS_FIELDS, Definition, Job, Status
    from repowire.record.parsing import _RUN_KEYS, _STATE_KEYS, DEFINITION_KEYS

    as_fields = {"executor": None}  # `executor:` is `where` as written, `handle` once claimed
    written = {as_fields.get(k, k) for k in [*DEFINITION_KEYS, *_RUN_KEYS]} - {None}
    assert set(DEFINITION_FIELDS) == written | {"id", "where"}
    assert set(STATUS_FIELDS) == {as_fields.get(k, k) for k in _STATE_KEYS} - {None} | {"handle"}
    assert not set(DEFINITION_FIELDS) & set(STATUS_FIELDS)
    job = Job(id="j", command="true", labels=["a"])
    assert isinstance(job, Definition) and isinstance(job, Status)
    copied = job.definition()
    copied["labels"].append("b")  # a copy: the job's own list is unchanged
    assert job.labels == ["a"] and copied["command"] == "true" and "state" not in copied
