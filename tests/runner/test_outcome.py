"""What follows an attempt, decided by a pure function of the record, the facts and the time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from repowire.record.handle import Handle, RootRef, handle_from_dict
from repowire.record.job import Job
from repowire.record.states import State
from repowire.runner.outcome import Facts, decide

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)


def job(**keys: object) -> Job:
    values: dict[str, object] = {"command": "true", "state": State.RUNNING, "attempt": 1, **keys}
    return Job(id="j", **values)  # type: ignore[arg-type]


def test_exit_zero_succeeds_with_the_last_output_line():
    decision = decide(job(), Facts(code=0, last_line="all done"), NOW)
    assert decision.state == State.SUCCEEDED and decision.note == "exit status 0"
    assert decision.summary == "all done" and decision.error is None


def test_the_result_file_wins_over_the_output_and_a_set_summary_is_kept():
    facts = Facts(code=0, result_text="\n# Report\nbody\n", last_line="noise")
    assert decide(job(), facts, NOW).summary == "Report"
    assert decide(job(result_summary="mine"), facts, NOW).summary is None


def test_an_agents_final_message_becomes_the_result_file():
    facts = Facts(code=0, agent=True, reads_message=True, message="Brief posted\nmore")
    decision = decide(job(), facts, NOW)
    assert decision.write_message and decision.summary == "Brief posted"
    present = Facts(code=0, agent=True, reads_message=True, message="m", result_text="own")
    assert not decide(job(), present, NOW).write_message


def test_an_agent_without_a_final_message_says_so_and_keeps_no_output_summary():
    facts = Facts(code=0, agent=True, reads_message=True, last_line='{"type":"x"}')
    decision = decide(job(), facts, NOW)
    assert decision.remarks == ("the agent ended without a final message",)
    assert decision.summary is None


def test_failure_words_and_the_agents_own_sentence():
    assert decide(job(), Facts(code=3), NOW).error == "exit status 3"
    assert decide(job(), Facts(code=137), NOW).error == "killed by signal 9 (SIGKILL)"
    agent = Facts(code=1, agent=True, agent_error="quota exceeded", last_line="x")
    assert decide(job(), agent, NOW).error == "exit status 1: quota exceeded"
    lost = Facts(code=None, reason="executor lost", agent=True, message="ignored")
    decision = decide(job(), lost, NOW)
    assert decision.state == State.FAILED and decision.error == "executor lost"


def test_retries_back_off_exponentially_then_fail():
    first = decide(job(retries=2, retry_delay="10s"), Facts(code=1), NOW)
    assert first.state == State.QUEUED and first.retry_at == NOW + timedelta(seconds=10)
    assert "retry 1 of 2 in 10s" in first.note and first.summary is None
    second = decide(job(retries=2, retry_delay="10s", attempt=2), Facts(code=1), NOW)
    assert second.retry_at == NOW + timedelta(seconds=20)
    last = decide(job(retries=2, attempt=3), Facts(code=1), NOW)
    assert last.state == State.FAILED and last.retry_at is None


def test_a_timeout_is_a_failure_that_retries_apply_to():
    decision = decide(job(retries=1), Facts(code=None, reason="timed out after 3s"), NOW)
    assert decision.state == State.QUEUED and "timed out after 3s" in decision.note


def test_a_handle_knows_its_root():
    here = RootRef("/work/a", "t1")
    mine = Handle(kind="local", host="h", root="/work/a", root_token="t1", pid=5)
    assert mine.started_for(here, "h")
    assert not mine.started_for(RootRef("/work/copy", "t1"), "h")  # cp -R: same token
    assert not mine.started_for(RootRef("/work/a", "t2"), "h")  # a clone where it stood
    assert mine.started_for(RootRef("/mnt/a", "t1"), "other-host")  # shared file system
    legacy = Handle(kind="local", host="h", pid=5)
    assert legacy.started_for(here, "h")  # written before handles named their root


def test_a_handle_round_trips_and_refuses_bad_fields():
    handle = Handle(kind="slurm", runner="h:1:2.0", host="h", root="/r", slurm_job_id=42)
    assert handle_from_dict(handle.to_dict()) == handle
    assert handle.describe() == "slurm job 42" and handle.started
    for bad in ({"pid": "abc"}, {"kind": "docker"}, {"start_time": "x"}, {"colour": 1}):
        try:
            handle_from_dict(bad)
        except ValueError as exc:
            assert str(exc)
        else:
            raise AssertionError(f"{bad} was accepted")
