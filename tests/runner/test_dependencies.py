"""Work that waits for other work: dependencies (pure decisions, then a real runner), priorities
and labels, and their bad input."""

from __future__ import annotations

import json
import time

from conftest import assert_clean_error, rw, wait_for
from runner_helpers import (
    RunnerProcess,
    kill_executors,
    read,
    run_once,
    set_config,
    state,
    write_job,
)

from repowire.record.dependencies import find_cycle, readiness


def test_readiness_is_a_pure_function_of_the_states():
    assert readiness(["a"], None, {"a": "succeeded"}).ready
    waits = readiness(["a", "b"], None, {"a": "succeeded", "b": "running"})
    assert not waits.ready and waits.waiting_for == ("b",) and not waits.cancel
    assert readiness(["gone"], None, {}).waiting_for == ("gone",)  # a missing one waits
    failed = readiness(["a", "b"], "cancel", {"a": "failed", "b": "queued"})
    assert failed.cancel and failed.failed == "a"
    assert readiness(["a"], "run", {"a": "canceled"}).ready  # starts anyway


def test_cycles_are_found():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    assert find_cycle({"a": ["b"], "b": [], "c": ["a", "b"]}) is None


def _order(root):
    return (root / "order.txt").read_text().split()


def test_a_chain_of_three_jobs_runs_in_order(root):
    log = root / "order.txt"
    rw("jobs", "create", "C", "--command", f"echo c >> {log}", "--id", "c")
    rw("jobs", "create", "B", "--command", f"echo b >> {log}", "--id", "b", "--after", "c")
    rw("jobs", "create", "A", "--command", f"echo a >> {log}", "--id", "a", "--after", "b")
    listing = json.loads(rw("jobs", "list", "--blocked", "--json").stdout)["jobs"]
    assert {j["id"]: j["waiting_for"] for j in listing} == {"a": ["b"], "b": ["c"]}
    assert "waiting for b" in rw("jobs", "list").stdout
    assert json.loads(rw("jobs", "show", "a", "--json").stdout)["waiting_for"] == ["b"]
    run_once(root)
    assert _order(root) == ["c", "b", "a"]
    assert [state(root, j) for j in "abc"] == ["succeeded"] * 3


def test_a_failed_dependency_cancels_or_lets_run(root):
    log = root / "order.txt"
    rw("jobs", "create", "bad", "--command", "exit 1", "--id", "bad")
    rw("jobs", "create", "x", "--command", f"echo x >> {log}", "--id", "x", "--after", "bad")
    rw(
        "jobs",
        "create",
        "y",
        "--command",
        f"echo y >> {log}",
        "--id",
        "y",
        "--after",
        "bad",
        "--on-dependency-failure",
        "run",
    )
    run_once(root)
    assert state(root, "x") == "canceled" and read(root, "x")["error"] == "dependency bad failed"
    assert state(root, "y") == "succeeded" and _order(root) == ["y"]


def test_a_failed_dependency_cancels_its_dependent_while_every_slot_is_busy(root):
    """A step offers no job to a full executor, yet still cancels a queued job whose
    dependency failed: it does not wait for a free slot to learn of it."""
    set_config(root, "max_concurrency: 1\n")
    write_job(root, "busy", command="sleep 60")
    runner = RunnerProcess(root)
    try:
        wait_for(lambda: state(root, "busy") == "running", what="the slot taken")
        write_job(root, "bad", command="exit 1", state="failed")
        write_job(root, "waits", command="true", after=["bad"])
        wait_for(lambda: state(root, "waits") == "canceled", what="the dependent canceled")
        assert state(root, "busy") == "running"  # the slot was busy all along
    finally:
        runner.stop()
        kill_executors(root)


def test_a_retried_dependency_releases_dependents_still_queued(root):
    flag = root / "ok"
    write_job(root, "flaky", command=f"test -f {flag}")
    rw(
        "jobs",
        "create",
        "after",
        "--command",
        "true",
        "--id",
        "next",
        "--after",
        "flaky",
        "--on-dependency-failure",
        "run",
    )
    write_job(root, "waiter", command="true", after=["flaky"])
    run_once(root)
    assert state(root, "waiter") == "canceled"
    flag.touch()
    rw("jobs", "retry", "flaky")
    write_job(root, "late", command="true", after=["flaky"])
    run_once(root)
    assert state(root, "flaky") == "succeeded" and state(root, "late") == "succeeded"


def test_priority_then_age_orders_the_queue(root):
    log = root / "order.txt"
    for name, priority in (("low", 0), ("high", 5), ("mid", 2)):
        rw(
            "jobs",
            "create",
            name,
            "--command",
            f"echo {name} >> {log}",
            "--id",
            name,
            "--priority",
            str(priority),
        )
    from runner_helpers import run_once as once

    once(root, max_concurrency=1)
    assert _order(root) == ["high", "mid", "low"]


def test_the_queue_keeps_its_order_between_steps_and_a_changed_record_takes_its_new_place(root):
    """The chooser keeps the queue sorted from step to step: new jobs and jobs whose record
    changed are placed again; with every slot full none is chosen."""
    import io

    from repowire import clock
    from repowire.runner.loop import Runner
    from repowire.runner.table import JobTable

    for name, priority in (("a", 0), ("b", 0), ("c", 3)):
        write_job(root, name, command="true", priority=priority)
    runner = Runner(root, max_concurrency=1, log=io.StringIO())
    table, chooser = JobTable(runner.store), runner.chooser
    now = clock.now()

    def due(room):
        jobs = table.jobs(True, None)
        return [j.id for j in chooser.due(jobs, table.live, now, [], {"local": room})]

    assert due(3) == ["c", "a", "b"] and due(0) == []
    write_job(root, "b", command="true", priority=9)  # its new record goes first
    write_job(root, "d", command="true", priority=1)  # a new one, placed among the others
    assert due(4) == ["b", "c", "d", "a"]


def test_labels_filter_jobs_and_templates(root):
    rw("jobs", "create", "a", "--command", "true", "--id", "a", "--label", "docs")
    rw("jobs", "create", "b", "--command", "true", "--id", "b", "--label", "ops")
    rw("jobs", "create", "t", "--cron", "@daily", "--command", "true", "--label", "docs")
    data = json.loads(rw("jobs", "list", "--label", "docs", "--json").stdout)
    assert [j["id"] for j in data["jobs"]] == ["a"] and [t["id"] for t in data["templates"]] == [
        "t"
    ]
    run_id = rw("jobs", "run", "t").stdout.strip()
    assert read(root, run_id)["labels"] == ["docs"]  # runs inherit them
    ready = json.loads(rw("jobs", "list", "--ready", "--json").stdout)["jobs"]
    assert {j["id"] for j in ready} == {"a", "b", run_id}


def test_bad_input(root):
    rw("jobs", "create", "a", "--command", "true", "--id", "a")
    for args, says in (
        (["--after", "nosuch"], "no job nosuch"),
        (["--after", "self", "--id", "self"], "cannot wait for itself"),
        (["--priority", "-1"], ""),
        (["--priority", "high"], ""),
        (["--after", "a", "--after", "a"], "more than once"),
    ):
        code = 1 if says and "priority" not in args[0] else 2
        result = rw("jobs", "create", "x", "--command", "true", *args, ok=False)
        assert_clean_error(result, code=code, says=says)
    assert not any(p.stem != "a" for p in (root / ".repowire/jobs").glob("*.yaml"))
    write_job(root, "p", command="true", after=["q"])
    write_job(root, "q", command="true", after=["p"])
    write_job(root, "r", command="true", after=["missing"])
    write_job(root, "s", command="true", priority=-3)
    problems = rw("validate", ok=False).stderr
    assert "after: a cycle, p -> q -> p" in problems or "after: a cycle, q -> p -> q" in problems
    assert "r.yaml: after: no job missing" in problems and "s.yaml: priority:" in problems


def test_once_does_not_wait_for_work_that_cannot_start(root):
    write_job(root, "orphan", command="true", after=["missing"])
    write_job(root, "later", command="true", due_at="2099-01-01T00:00:00Z")
    write_job(root, "behind", command="true", after=["later"])
    run_once(root)  # returns: nothing here can start in this run
    assert state(root, "orphan") == "queued" and state(root, "behind") == "queued"


def test_jitter_spreads_fires_by_a_stable_offset(root):
    from datetime import datetime, timedelta, timezone

    from repowire.runner.scheduling import Scheduler
    from repowire.store.records import Store
    from repowire.templates.storage import read_template

    folder = root / ".repowire/agents/spread"
    folder.mkdir(parents=True)
    (folder / "job.yaml").write_text("cron: '@hourly'\ncommand: 'true'\njitter: 10m\n")
    template = read_template(Store(root), "spread")
    offset = template.offset
    assert timedelta(0) <= offset < timedelta(minutes=10)
    assert read_template(Store(root), "spread").offset == offset  # the same at every read
    base = datetime(2026, 11, 26, 8, 30, tzinfo=timezone.utc)
    scheduler = Scheduler(Store(root), lambda line: None)
    scheduler.step({}, base)  # first seen
    slot = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
    assert not scheduler.step({}, slot + offset - timedelta(seconds=1))[1]
    assert scheduler.step({}, slot + offset + timedelta(seconds=1))[1]
    assert (root / ".repowire/jobs/spread-20261126T090000Z.yaml").exists()
    shown = json.loads(rw("jobs", "show", "spread", "--json").stdout)
    first = datetime.fromisoformat(shown["next_fires"][0]["utc"].replace("Z", "+00:00"))
    assert first.minute * 60 + first.second == int(offset.total_seconds())
    (folder / "job.yaml").write_text("cron: '@hourly'\ncommand: 'true'\njitter: 2h\n")
    assert "not shorter than the interval" in rw("validate", ok=False).stderr


def _template(root, name, text):
    folder = root / ".repowire/agents" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.yaml").write_text(text)


def test_a_template_chain_fires_on_success_and_on_failure(root):
    log = root / "order.txt"
    _template(
        root,
        "build",
        f"cron: '@daily'\ncommand: echo build >> {log}\nthen: [deploy]\nthen_on_failure: [alert]\n",
    )
    _template(root, "deploy", f"cron: '@yearly'\ncommand: echo deploy >> {log}\n")
    _template(root, "alert", f"cron: '@yearly'\ncommand: echo alert >> {log}\n")
    first = rw("jobs", "run", "build").stdout.strip()
    run_once(root)
    assert _order(root) == ["build", "deploy"]
    deploy = [p.stem for p in (root / ".repowire/jobs").glob("deploy-*.yaml")]
    assert len(deploy) == 1 and read(root, deploy[0])["triggered_by"] == first
    (root / ".repowire/agents/build/job.yaml").write_text(
        "cron: '@daily'\ncommand: exit 1\nthen: [deploy]\nthen_on_failure: [alert]\n"
    )
    rw("jobs", "run", "build")
    run_once(root)
    assert _order(root) == ["build", "deploy", "alert"]
    run_once(root)  # a second runner fires no chain again
    assert len(list((root / ".repowire/jobs").glob("deploy-*.yaml"))) == 1


def test_chains_that_loop_or_name_nothing_are_reported_and_not_fired(root):
    _template(root, "a", "cron: '@yearly'\ncommand: 'true'\nthen: [b]\n")
    _template(root, "b", "cron: '@yearly'\ncommand: 'true'\nthen: [a]\n")
    _template(root, "c", "cron: '@yearly'\ncommand: 'true'\nthen: [nosuch]\n")
    problems = rw("validate", ok=False).stderr
    assert "then: a loop, a -> b -> a" in problems and "then: no template nosuch" in problems
    rw("jobs", "run", "a")
    log = run_once(root)
    assert "loops back" in log
    assert not list((root / ".repowire/jobs").glob("b-*.yaml"))


def test_run_if_skips_a_slot_starts_on_zero_and_fails_when_it_cannot_answer(root):
    from datetime import datetime, timedelta, timezone

    import yaml

    from repowire.runner.loop import Runner

    flag = root / "changed"
    _template(root, "digest", f"cron: '@hourly'\ncommand: 'true'\nrun_if: test -f {flag}\n")
    runner = Runner(root, log=__import__("io").StringIO())
    base = datetime(2026, 11, 26, 8, 30, tzinfo=timezone.utc)

    def step(at):  # steps at `at` until the slot's run_if (run off the loop) has answered
        found = []
        wait_for(
            lambda: found.append(runner.scheduler.step({}, at)) or not runner.precondition.pending
        )
        return found[-1]

    step(base)
    assert not step(base + timedelta(minutes=31))[1]  # 09:00 skipped
    state_file = yaml.safe_load((root / ".repowire/agents/digest/state.yaml").read_text())
    assert state_file["skipped"][-1]["reason"] == "run_if exited 1"
    assert not list((root / ".repowire/jobs").glob("digest-*.yaml"))  # no run, no spend
    flag.touch()
    assert step(base + timedelta(minutes=91))[1]  # 10:00 fires
    assert (root / ".repowire/jobs/digest-20261126T100000Z.yaml").exists()
    (root / ".repowire/agents/digest/job.yaml").write_text(
        "cron: '@hourly'\ncommand: 'true'\nrun_if: no-such-check-xyz\n"
    )
    step(base + timedelta(minutes=151))
    failed = read(root, "digest-20261126T110000Z")
    assert failed["state"] == "failed" and "could not be run" in failed["error"]


def test_run_if_on_a_one_off_job_and_its_timeout(root):
    write_job(root, "no", command="echo ran > ran.txt", run_if="false")
    write_job(root, "yes", command="true", run_if='test -z "$REPOWIRE_LAST_SUCCESS"')
    write_job(root, "hangs", command="true", run_if="sleep 30", run_if_timeout="0.5s")
    run_once(root)
    assert (
        state(root, "no") == "canceled" and read(root, "no")["error"] == "skipped: run_if exited 1"
    )
    assert not (root / "ran.txt").exists()
    assert state(root, "yes") == "succeeded"
    hung = read(root, "hangs")
    assert hung["state"] == "failed" and "did not answer within 0.5s" in hung["error"]


def test_a_long_after_chain_is_judged_without_recursion(root):
    """`runner --once` asks whether each queued job will run; a hand-written chain of 3,000
    jobs, each after the one before, is walked with a stack (it raised RecursionError), a
    diamond is judged once, and a job waiting for itself never runs."""
    import io
    from datetime import datetime, timezone

    from repowire.record.job import Job
    from repowire.runner.loop import Runner

    runner = Runner(root, log=io.StringIO())
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    chain = {
        f"c{n}": Job(id=f"c{n}", command="true", after=[f"c{n - 1}"] if n else [])
        for n in range(3000)
    }
    verdicts: dict[str, bool] = {}
    assert runner._will_run(chain["c2999"], chain, now, verdicts) and len(verdicts) == 3000
    diamond = {
        "top": Job(id="top", command="true", after=["left", "right"]),
        "left": Job(id="left", command="true", after=["base"]),
        "right": Job(id="right", command="true", after=["base"]),
        "base": Job(id="base", command="true"),
    }
    assert runner._will_run(diamond["top"], diamond, now, {})
    looped = {
        "self": Job(id="self", command="true", after=["self"]),
        "a": Job(id="a", command="true", after=["b"]),
        "b": Job(id="b", command="true", after=["a"]),
    }
    assert not runner._will_run(looped["self"], looped, now, {})
    assert not runner._will_run(looped["a"], looped, now, {})


def test_a_slow_run_if_holds_up_only_its_own_job(root):
    """A precondition runs off the runner's loop: while `run_if: sleep 4` runs, its job waits
    queued (`waiting_for: run_if`), a running job's timeout is still enforced and a new job
    starts; a SIGTERM stops the runner at once and ends the precondition (with it on the loop,
    a timeout of 3 s went unenforced for 8 s, new jobs waited, and SIGTERM took 18 s)."""
    import psutil

    gate_pid = root / "gate.pid"
    set_config(root, "kill_grace: 1s\n")
    write_job(root, "gated", command="true", run_if="sleep 4", run_if_timeout="10s")
    write_job(root, "slow", command="sleep 30", timeout="1s")
    runner = RunnerProcess(root)
    try:
        write_job(root, "quick", command="true")
        wait_for(lambda: state(root, "slow") == "failed", timeout=10, what="the timeout")
        wait_for(lambda: state(root, "quick") == "succeeded", timeout=10, what="the new job")
        assert state(root, "gated") == "queued"
        shown = json.loads(rw("jobs", "show", "gated", "--json").stdout)
        assert shown["waiting_for"] == ["run_if"]
        assert read(root, "slow")["error"] == "timed out after 1s"
        wait_for(lambda: state(root, "gated") == "succeeded", timeout=15, what="the gated job")
        write_job(root, "stuck", command="true", run_if=f"echo $$ > {gate_pid}; sleep 45")
        wait_for(gate_pid.exists, what="the precondition to start")
        started = time.monotonic()
        assert runner.stop() == 0 and time.monotonic() - started < 5
        pid = int(gate_pid.read_text())
        wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie")
        assert state(root, "stuck") == "queued"  # for the next runner
    finally:
        runner.stop()
        kill_executors(root)


def test_run_if_timeout_has_a_cap(root):
    write_job(root, "patient", command="true", run_if="true", run_if_timeout="1h")
    assert "at most 10m" in rw("validate", ok=False).stderr


def test_dependents_of_a_removed_job_are_told_and_ended_by_policy(root, monkeypatch):
    """After `jobs rm --force A`, a job `after A` stayed queued with no word anywhere (and so
    did a hand-written `after: [nosuch]`). rm names the jobs that wait for it; a runner that
    finds a dependency missing for MISSING_SECONDS cancels them ("dependency A was removed"),
    or starts them when on_dependency_failure is run; a broken file is not missing."""
    from runner_helpers import in_process_runner

    from repowire.runner import choosing

    monkeypatch.setattr(choosing, "MISSING_SECONDS", 0.3)
    rw("jobs", "create", "A", "--command", "true", "--id", "a", "--due-at", "1h")
    rw("jobs", "create", "B", "--command", "true", "--id", "b", "--after", "a")
    rw("jobs", "create", "C", "--command", "true", "--id", "c", "--after", "a",
       "--on-dependency-failure", "run")  # fmt: skip
    write_job(root, "d", command="true", after=["nosuch"])
    (root / ".repowire/jobs/broken.yaml").write_text("retries: [\n")
    write_job(root, "e", command="true", after=["broken"])
    removed = rw("jobs", "rm", "--force", "a")
    assert "b, c wait for a removed job" in removed.stderr
    runner, _ = in_process_runner(root)
    runner.step()
    assert state(root, "b") == "queued"  # missing for less than MISSING_SECONDS: not yet
    wait_for(lambda: runner.step() is not None and state(root, "c") == "succeeded")
    assert read(root, "b")["error"] == "dependency a was removed"
    assert read(root, "d")["error"] == "dependency nosuch was removed"
    assert state(root, "e") == "queued"  # a broken file is being edited, not gone
