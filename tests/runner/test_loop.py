"""The runner: real executors, real signals, real watchdog events."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_clean_error, on_a_terminal, rw, rw_process, wait_for
from runner_helpers import (
    RunnerProcess,
    in_process_runner,
    kill_executors,
    read,
    run_once,
    set_config,
    state,
    write_job,
)

from repowire.errors import NotTrusted
from repowire.executors.local_processes import group_alive

# A command that ignores SIGTERM and leaves a grandchild that ignores it too.
STUBBORN = "trap '' TERM; (trap '' TERM; sleep 60) & sleep 60"


@pytest.fixture
def quick(root: Path) -> Path:
    set_config(root, "kill_grace: 1s\n")
    return root


@pytest.fixture
def runner(quick: Path):
    started: list[RunnerProcess] = []

    def start(*args: str) -> RunnerProcess:
        proc = RunnerProcess(quick, *args)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop(signal.SIGKILL) if proc.proc.poll() is None else proc.stop()
    kill_executors(quick)


def test_once_records_success_failure_and_words(quick):
    write_job(quick, "ok", command="echo first; echo last line")
    write_job(quick, "three", command="exit 3")
    write_job(quick, "signal", command="kill -9 $$")
    write_job(quick, "missing", command=["no-such-program-xyz"])
    write_job(quick, "missing-sh", command="no-such-program-xyz")
    run_once(quick)
    ok = read(quick, "ok")
    assert ok["state"] == "succeeded" and ok["exit_code"] == 0 and ok["attempt"] == 1
    assert ok["result_summary"] == "last line"
    assert read(quick, "three")["error"] == "exit status 3"
    assert read(quick, "three")["exit_code"] == 3
    assert read(quick, "signal")["error"].startswith("killed by signal 9")
    assert read(quick, "missing")["error"] == "no-such-program-xyz: command not found on PATH"
    assert "command not found" in read(quick, "missing-sh")["error"]
    log = (quick / ".repowire/jobs/ok.log").read_text()
    assert "=== repowire: ok attempt 1" in log and "last line" in log
    assert not list((quick / ".repowire/jobs").glob("*.exit"))


def test_executor_environment_and_result_file(quick):
    (quick / "work").mkdir()
    script = (
        'echo "$REPOWIRE_JOB_ID $REPOWIRE_ATTEMPT $PWD $GREETING" > seen.txt; '
        'echo "$REPOWIRE_ROOT|$REPOWIRE_JOB_FILE" >> seen.txt; '
        'printf "# The headline\\n\\nbody\\n" > "$REPOWIRE_RESULT_FILE"; '
        'repowire jobs update "$REPOWIRE_JOB_ID" --note "from inside"'
    )
    write_job(quick, "env", command=script, path="work", env={"GREETING": "hi"})
    run_once(quick)
    first, second = (quick / "work/seen.txt").read_text().splitlines()
    assert first == f"env 1 {quick / 'work'} hi"
    assert second == f"{quick}|{quick / '.repowire/jobs/env.yaml'}"
    record = read(quick, "env")
    assert record["state"] == "succeeded" and record["result_summary"] == "The headline"
    assert "from inside" in [n["text"] for n in record["notes"]]
    assert "body" in rw("jobs", "result", "env").stdout


def test_the_job_env_meets_no_variable_of_the_wrapper(quick):
    """Every name the wrapper ever used (and the names it uses now) reaches the command as the
    job's `env` says, as a string command's variable and as an argv's environment; none of
    the wrapper's own __repowire_* variables is left for the command to see."""
    names = ["mode", "word", "record", "exit_file", "cmd", "rc", "nl", "setup"]
    env = {name: f"job-{name}" for name in names}
    shown = " ".join(f"{name}=${name}" for name in names)
    write_job(quick, "as-sh", command=f'echo "{shown}" > sh.txt; set > vars.txt', env=env)
    write_job(quick, "as-argv", command=["/usr/bin/env"], env=env)
    run_once(quick)
    assert (quick / "sh.txt").read_text().split() == [f"{n}=job-{n}" for n in names]
    assert "__repowire" not in (quick / "vars.txt").read_text()
    printed = (quick / ".repowire/jobs/as-argv.log").read_text()
    assert all(f"{name}=job-{name}" in printed.splitlines() for name in names)
    assert "__repowire" not in printed


def test_policy_path_outside_and_missing(quick, tmp_path):
    write_job(quick, "escape", command="touch escaped", path="..")
    write_job(quick, "nowhere", command="true", path="missing")
    run_once(quick)
    escape = read(quick, "escape")
    assert escape["state"] == "failed" and "outside the allowed paths" in escape["error"]
    assert "allowed_paths" in escape["error"]
    assert "does not exist" in read(quick, "nowhere")["error"]
    assert not (tmp_path / "escaped").exists()


def test_timeout_kills_the_whole_group(quick):
    write_job(quick, "slow", command=STUBBORN, timeout="1s")
    run_once(quick)
    record = read(quick, "slow")
    assert record["state"] == "failed" and record["error"] == "timed out after 1s"
    assert not group_alive(record["executor"]["pgid"])


def test_retries_with_backoff_and_notes(quick):
    counter = quick / "count"
    write_job(quick, "flaky", command=f"echo x >> {counter}; exit 1", retries=2, retry_delay="0.1s")
    run_once(quick)
    record = read(quick, "flaky")
    assert record["state"] == "failed" and record["attempt"] == 3
    assert counter.read_text().count("x") == 3
    retry_notes = [n["text"] for n in record["notes"] if "retry" in n["text"]]
    assert retry_notes[0].startswith("attempt 1 failed (exit status 1); retry 1 of 2 in")


def test_retry_succeeds_second_time(quick):
    flag = quick / "flag"
    write_job(
        quick,
        "second",
        command=f"test -f {flag} || {{ touch {flag}; exit 1; }}",
        retries=1,
        retry_delay=0,
    )
    run_once(quick)
    assert read(quick, "second")["state"] == "succeeded"
    assert read(quick, "second")["attempt"] == 2


def test_max_concurrency_is_honoured(quick):
    spans = quick / "spans"
    for n in range(5):
        write_job(
            quick,
            f"j{n}",
            command=f"echo start $(date +%s.%N) >> {spans}; sleep 0.4; "
            f"echo end $(date +%s.%N) >> {spans}",
        )
    run_once(quick, max_concurrency=2)
    events = sorted(
        (float(t), kind) for kind, t in (line.split() for line in spans.read_text().splitlines())
    )
    running = peak = 0
    for _, kind in events:
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    assert peak == 2 and all(state(quick, f"j{n}") == "succeeded" for n in range(5))


def test_due_at_in_the_future_is_not_started(quick):
    rw("jobs", "create", "later", "--command", "true", "--due-at", "1h", "--id", "later")
    rw(
        "jobs",
        "create",
        "soon",
        "--command",
        "true",
        "--due-at",
        "2020-01-01T00:00:00Z",
        "--id",
        "soon",
    )
    run_once(quick)
    assert state(quick, "later") == "queued" and state(quick, "soon") == "succeeded"


def test_untrusted_root_is_refused(quick):
    rw("trust", "--revoke")
    write_job(quick, "x", command="touch ran")
    with pytest.raises(NotTrusted):
        run_once(quick)
    result = rw("runner", "--once", ok=False)
    assert_clean_error(result, says="repowire trust")
    assert state(quick, "x") == "queued" and not (quick / "ran").exists()


def test_tracked_only_job_is_left_for_people(quick):
    rw("jobs", "create", "Think about it", "--prompt", "ponder", "--id", "think")
    assert "no command or backend" in run_once(quick)
    assert state(quick, "think") == "queued"


def test_garbage_files_do_not_stop_the_runner(quick):
    jobs = quick / ".repowire/jobs"
    garbage = {
        "bin.yaml": bytes(range(256)),
        "deep.yaml": b"[" * 5000,
        "tag.yaml": b"command: !!python/object/apply:os.system ['touch pwned']\n",
        "x.yaml.tmp": b"junk",
        ".tmp-abc": b"junk",
        "laughs.yaml": b"a: &a [x, x, x, x, x, x, x, x, x]\n"
        b"b: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
        b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\ncommand: [*c, *c, *c]\n",
    }
    for name, data in garbage.items():
        (jobs / name).write_bytes(data)
    write_job(quick, "good", command="true")
    run_once(quick)
    assert state(quick, "good") == "succeeded"
    for name, data in garbage.items():
        assert (jobs / name).read_bytes() == data
    assert not (quick / "pwned").exists()


def test_big_output_stays_in_the_log(quick):
    write_job(quick, "loud", command="head -c 50000000 /dev/zero | tr '\\0' 'a' | fold -w 1000")
    run_once(quick)
    record_file = quick / ".repowire/jobs/loud.yaml"
    assert state(quick, "loud") == "succeeded"
    assert record_file.stat().st_size < 4000
    assert (quick / ".repowire/jobs/loud.log").stat().st_size > 50_000_000


def test_hand_dropped_job_starts_without_a_restart(runner, quick):
    proc = runner()
    write_job(quick, "dropped", command="echo dropped")
    wait_for(lambda: state(quick, "dropped") == "succeeded", what="dropped job to finish")
    assert "started dropped" in proc.output()


def test_agent_reports_success_itself_and_is_released(runner, quick):
    runner()
    script = (
        'repowire jobs update "$REPOWIRE_JOB_ID" --state succeeded '
        '--result-summary "done early"; ' + STUBBORN
    )
    write_job(quick, "self", command=script)
    wait_for(lambda: state(quick, "self") == "succeeded", what="self-report")
    wait_for(lambda: (read(quick, "self").get("executor") or {}).get("pgid"), what="pid")
    pgid = read(quick, "self")["executor"]["pgid"]
    wait_for(lambda: not group_alive(pgid), timeout=20, what="release of the executor group")
    record = read(quick, "self")
    assert record["result_summary"] == "done early" and record["state"] == "succeeded"


def test_cancel_of_a_running_job_releases_it(runner, quick):
    runner()
    write_job(quick, "long", command=STUBBORN)
    wait_for(lambda: (read(quick, "long").get("executor") or {}).get("pgid"), what="start")
    pgid = read(quick, "long")["executor"]["pgid"]
    rw("jobs", "cancel", "long", "--reason", "not needed")
    wait_for(lambda: not group_alive(pgid), timeout=20, what="release after cancel")
    assert read(quick, "long")["state"] == "canceled"


def test_deleted_record_releases_its_executor(runner, quick):
    runner()
    write_job(quick, "gone", command="sleep 60")
    wait_for(lambda: (read(quick, "gone").get("executor") or {}).get("pgid"), what="start")
    pgid = read(quick, "gone")["executor"]["pgid"]
    (quick / ".repowire/jobs/gone.yaml").unlink()
    wait_for(lambda: not group_alive(pgid), timeout=20, what="release after delete")


def test_hand_edit_while_running_is_kept(runner, quick):
    runner()
    marker = quick / "go"
    write_job(quick, "edit", command=f"while [ ! -f {marker} ]; do sleep 0.05; done")
    wait_for(lambda: (read(quick, "edit").get("executor") or {}).get("pgid"), what="start")
    path = quick / ".repowire/jobs/edit.yaml"
    path.write_text(path.read_text().replace("name:", "name:") + "result_summary: by hand\n")
    marker.touch()
    wait_for(lambda: state(quick, "edit") == "succeeded", what="finish")
    assert read(quick, "edit")["result_summary"] == "by hand"


def test_sigterm_leaves_executors_for_the_next_runner(runner, quick):
    first = runner()
    marker, counter = quick / "go", quick / "count"
    write_job(
        quick,
        "survivor",
        command=f"echo run >> {counter}; while [ ! -f {marker} ]; do sleep 0.05; done",
    )
    wait_for(lambda: (read(quick, "survivor").get("executor") or {}).get("pgid"), what="start")
    assert first.stop(signal.SIGTERM) == 0
    pgid = read(quick, "survivor")["executor"]["pgid"]
    assert group_alive(pgid) and state(quick, "survivor") == "running"
    second = runner()
    wait_for(lambda: "adopted survivor" in second.output(), what="adoption")
    marker.touch()
    wait_for(lambda: state(quick, "survivor") == "succeeded", what="finish after adoption")
    assert counter.read_text() == "run\n"


def test_sigkilled_runner_then_executor_ends_unwatched(runner, quick):
    first = runner()
    marker, counter = quick / "go", quick / "count"
    for n in range(3):
        write_job(
            quick,
            f"k{n}",
            command=f"echo {n} >> {counter}; "
            f"while [ ! -f {marker} ]; do sleep 0.05; done; exit {n}",
        )
    wait_for(
        lambda: all((read(quick, f"k{n}").get("executor") or {}).get("pgid") for n in range(3)),
        what="three starts",
    )
    first.stop(signal.SIGKILL)
    marker.touch()
    wait_for(
        lambda: len(list((quick / ".repowire/jobs").glob("*.exit"))) == 3,
        what="exit files written with no runner alive",
    )
    run_once(quick)
    assert [state(quick, f"k{n}") for n in range(3)] == ["succeeded", "failed", "failed"]
    assert read(quick, "k2")["exit_code"] == 2
    assert sorted(counter.read_text().split()) == ["0", "1", "2"]


def test_lost_executor_fails_with_retries_applied(quick):
    from repowire.executors.contract import HOST

    write_job(
        quick,
        "lost",
        command="true",
        state="running",
        attempt=1,
        retries=1,
        retry_delay=0,
        executor={
            "kind": "local",
            "pid": 999999,
            "pgid": 999999,
            "start_time": 1.0,
            "host": HOST,
            "runner": "x",
        },
    )
    write_job(
        quick,
        "lost-final",
        command="true",
        state="running",
        attempt=1,
        executor={
            "kind": "local",
            "pid": 999998,
            "pgid": 999998,
            "start_time": 1.0,
            "host": HOST,
            "runner": "x",
        },
    )
    run_once(quick)
    assert read(quick, "lost-final")["error"] == "executor lost"
    assert read(quick, "lost-final")["state"] == "failed"
    record = read(quick, "lost")
    assert record["state"] == "succeeded" and record["attempt"] == 2
    assert any("executor lost" in n["text"] for n in record["notes"])


def test_claim_of_a_dead_runner_goes_back_to_queued(quick):
    from repowire.executors.contract import HOST

    counter = quick / "count"
    write_job(
        quick,
        "orphan-claim",
        command=f"echo ran >> {counter}",
        state="running",
        attempt=1,
        executor={"runner": f"{HOST}:999997:1.0", "host": HOST},
    )
    write_job(
        quick,
        "other-host",
        command="true",
        state="running",
        attempt=1,
        executor={"runner": "elsewhere:1:1.0", "host": "elsewhere", "pid": 5},
    )
    log = run_once(quick)
    assert "requeued orphan-claim" in log
    record = read(quick, "orphan-claim")
    assert record["state"] == "succeeded" and record["attempt"] == 1
    assert counter.read_text() == "ran\n"
    assert state(quick, "other-host") == "running"  # another host's runner owns it


def test_manual_running_job_is_not_touched(quick):
    rw("jobs", "create", "manual", "--command", "touch ran", "--id", "manual")
    rw("jobs", "update", "manual", "--state", "running", "--note", "doing it by hand")
    run_once(quick)
    assert state(quick, "manual") == "running" and not (quick / "ran").exists()


def test_two_runners_run_each_job_once(runner, quick):
    counter = quick / "count"
    runner()
    runner()
    for n in range(30):
        write_job(quick, f"j{n:02}", command=f"echo j{n:02} >> {counter}")
    wait_for(
        lambda: all(state(quick, f"j{n:02}") == "succeeded" for n in range(30)),
        timeout=60,
        what="all jobs",
    )
    lines = counter.read_text().split()
    assert sorted(lines) == [f"j{n:02}" for n in range(30)]


def test_wait_and_logs(quick):
    write_job(quick, "a", command="echo out-a")
    write_job(quick, "b", command="exit 2")
    rw("jobs", "create", "later", "--command", "true", "--due-at", "1h", "--id", "later")
    run_once(quick)
    assert rw("jobs", "wait", "a").exit_code == 0
    assert rw("jobs", "wait", "a", "b", ok=False).exit_code == 1
    timed = rw("jobs", "wait", "later", "--timeout", "0.3s", ok=False)
    assert timed.exit_code == 124 and "later" in timed.stderr
    assert_clean_error(rw("jobs", "wait", "nope", ok=False), code=3, says="no job")
    assert_clean_error(rw("jobs", "wait", "a", "--timeout", "abc", ok=False), code=2)
    assert "out-a" in rw("jobs", "logs", "a").stdout
    assert "out-a" in rw("jobs", "logs", "a", "-f").stdout


def test_logs_follow_until_terminal(runner, quick):
    runner()
    marker = quick / "go"
    write_job(
        quick, "chatty", command=f"echo one; while [ ! -f {marker} ]; do sleep 0.05; done; echo two"
    )
    wait_for(lambda: state(quick, "chatty") == "running", what="start")

    follower = subprocess.Popen(
        [sys.executable, "-m", "repowire", "jobs", "logs", "chatty", "-f"],
        cwd=quick,
        stdout=subprocess.PIPE,
        text=True,
    )
    marker.touch()
    out, _ = follower.communicate(timeout=30)
    assert follower.returncode == 0 and "one" in out and "two" in out


def test_runner_cli_once_subprocess(quick):
    write_job(quick, "a", command="echo hi")
    done = rw_process("runner", "--once", "--max-concurrency", "1", cwd=quick)
    assert done.returncode == 0, done.stderr
    assert "started a" in done.stderr and "finished a: succeeded" in done.stderr
    bad = rw_process("runner", "--max-concurrency", "0", cwd=quick)
    assert bad.returncode == 2


def test_a_quiet_rescan_looks_at_the_folders_only(quick):
    import io

    from repowire.runner.loop import Runner

    runner = Runner(quick, log=io.StringIO())
    assert runner.lookout.folders_changed(True, 30.0)  # the first look always counts
    assert not runner.lookout.folders_changed(True, 30.0)
    write_job(quick, "new", prompt="think")  # tracked by hand; an atomic write renames into jobs/
    assert runner.lookout.folders_changed(True, 30.0)
    assert not runner.lookout.folders_changed(True, 30.0)
    runner.step()
    assert runner._timers  # the new file is read once more when its identity can be trusted
    wait_for(lambda: runner.step() is not None and not runner.table.unsettled, what="settled")
    assert not runner._timers  # nothing queued or running: only the periodic rescan is left
    write_job(quick, "later", command="true", due_at="2099-01-01T00:00:00Z")
    runner.step()
    assert runner._timers  # a due time keeps the loop stepping at that time


def test_wait_shows_a_live_progress_line_on_a_terminal(quick):
    rw("jobs", "create", "A", "--command", "true", "--id", "a")
    rw("jobs", "create", "B", "--command", "true", "--id", "b", "--due-at", "1h")
    code, text = on_a_terminal("jobs", "wait", "a", "b", "--timeout", "1s", cwd=quick)
    assert code == 124
    assert "\r0/2 done, 0s: a queued, b queued" in text and "timed out waiting for a, b" in text
    lines = [line for line in text.split("\r") if "done" in line]
    assert len(lines) == len(set(lines))  # redrawn only when the line changes


def test_step_takes_the_time_it_works_at(quick):
    """A timeout is judged at the step's `now`, so it is tested without waiting for it."""
    import io
    from datetime import timedelta

    from repowire import clock
    from repowire.runner.loop import Runner

    write_job(quick, "slow", command="sleep 60", timeout="10m")
    runner = Runner(quick, log=io.StringIO())
    start = clock.now()
    runner.step(start)
    assert state(quick, "slow") == "running"
    runner.step(start + timedelta(minutes=5))
    assert state(quick, "slow") == "running"
    later = start + timedelta(minutes=10, seconds=1)
    runner.step(later)
    record = read(quick, "slow")
    assert record["state"] == "failed" and record["error"] == "timed out after 10m"
    pgid = record["executor"]["pgid"]
    wait_for(lambda: runner.step(later) is not None and not runner.supervisor.busy, what="release")
    assert not group_alive(pgid)


def test_a_run_whose_log_stops_growing_is_failed_as_stalled(quick):
    """stall_timeout, judged at the step's `now` against the log's real growth."""
    import io
    from datetime import timedelta

    from repowire import clock
    from repowire.runner.loop import Runner

    write_job(quick, "quiet", command="echo start; sleep 60", stall_timeout="10m", retries=1)
    chatty = "while true; do echo tick; sleep 0.05; done"
    write_job(quick, "chatty", command=chatty, stall_timeout="10m")
    runner = Runner(quick, log=io.StringIO())
    start = clock.now()
    runner.step(start)
    wait_for(lambda: "tick" in (quick / ".repowire/jobs/chatty.log").read_text(), what="output")
    runner.step(start + timedelta(minutes=5))
    size = (quick / ".repowire/jobs/chatty.log").stat().st_size
    wait_for(lambda: (quick / ".repowire/jobs/chatty.log").stat().st_size > size, what="more")
    runner.step(start + timedelta(minutes=16))
    quiet = read(quick, "quiet")
    assert quiet["state"] == "queued" and "stalled: no output for 10m" in quiet["notes"][-1]["text"]
    assert state(quick, "chatty") == "running"  # its log kept growing
    rw("jobs", "cancel", "chatty")
    wait_for(lambda: runner.step() is not None and not runner.supervisor.busy, what="release")


def test_an_idle_runner_looks_again_only_at_its_rescan_interval(root, monkeypatch):
    """Between events an idle runner wakes when its periodic look is due, never in a loop: a
    step's time gone by with no step to take must still leave it a wait of the step's
    length."""
    import io
    import threading
    import time

    from repowire.runner import loop as runner_module

    monkeypatch.setattr(runner_module, "RESCAN_SECONDS", 0.1)
    runner = runner_module.Runner(root, log=io.StringIO())
    looks: list[float] = []
    folders_changed = runner.lookout.folders_changed

    def counted(events_work: bool, rescan: float) -> bool:
        looks.append(time.monotonic())
        return folders_changed(events_work, rescan)

    monkeypatch.setattr(runner.lookout, "folders_changed", counted)
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        write_job(root, "one", command="true")
        wait_for(lambda: state(root, "one") == "succeeded", what="the job")
        wait_for(lambda: not runner.supervisor.busy and len(looks) > 2, what="idle")
        first = len(looks)
        wait_for(lambda: len(looks) >= first + 5, what="five more looks")
        took = looks[first + 4] - looks[first - 1]
        assert took > 0.3, f"5 looks in {took:.4f} s: the loop spins"
    finally:
        runner.stopping = True
        runner.wake.set()
        thread.join(15)


def test_an_idle_runner_has_no_child_process(runner, quick):
    """Nothing is started ahead of need: before any job, and once its jobs are over, a runner
    has no child."""
    import psutil

    proc = runner()
    assert psutil.Process(proc.proc.pid).children(recursive=True) == []
    write_job(quick, "one", command="true")
    wait_for(lambda: state(quick, "one") == "succeeded", what="the job")
    wait_for(
        lambda: psutil.Process(proc.proc.pid).children(recursive=True) == [],
        what="no child left",
    )


def test_retry_keeps_the_jobs_own_due_time(root):
    write_job(
        root,
        "later",
        command="exit 3",
        due_at="2099-01-01T00:00:00Z",
        state="failed",
        attempt=1,
        retry_at="2026-01-01T00:00:00Z",
    )
    rw("jobs", "retry", "later")
    record = read(root, "later")
    assert record["state"] == "queued" and str(record["due_at"]).startswith("2099")
    assert "retry_at" not in record
    write_job(root, "flaky", command="exit 1", retries=1, retry_delay="1h")
    runner, _ = in_process_runner(root)
    wait_for(lambda: runner.step() is not None and read(root, "flaky").get("retry_at"))
    record = read(root, "flaky")
    assert record["state"] == "queued" and "due_at" not in record


def test_a_template_created_under_a_runner_prints_no_python_warning(runner, quick):
    """The runner's output is its own lines only: creating a template while it runs printed a
    raw RuntimeWarning ("Callback with id ... already exists for watch") before the watcher
    moved to watchdog's public observer."""
    proc = runner()
    rw("jobs", "create", "tick", "--cron", "@daily", "--command", "true")
    (quick / ".repowire/agents/other").mkdir()
    (quick / ".repowire/agents/other/job.yaml").write_text("cron: '@daily'\ncommand: 'true'\n")
    run_id = rw("jobs", "run", "tick").stdout.strip()
    wait_for(lambda: state(quick, run_id) == "succeeded", what="the run")
    printed = proc.output()
    assert "Warning" not in printed and "Traceback" not in printed, printed


def test_a_template_folder_deleted_under_a_runner_is_gone_without_a_word(runner, quick):
    """Deleting a worker folder while the runner serves the root logged "skipped template X:
    no job or template named X" (the folder, listed, was gone when read)."""
    import shutil

    proc = runner()
    rw("jobs", "create", "tick", "--cron", "@daily", "--command", "true")
    wait_for(lambda: (quick / ".repowire/agents/tick/state.yaml").exists(), what="first look")
    shutil.rmtree(quick / ".repowire/agents/tick")
    write_job(quick, "after", command="true")  # a step after the removal
    wait_for(lambda: state(quick, "after") == "succeeded", what="the next step")
    assert "skipped template tick" not in proc.output(), proc.output()
