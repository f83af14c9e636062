"""The jobs command line, through click's runner and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from conftest import assert_clean_error, on_a_terminal, rw, rw_process
from runner_helpers import run_once, state, write_job


def _create(*args: str) -> str:
    return rw("jobs", "create", *args).stdout.strip()


def _job_file(root: Path, job_id: str) -> Path:
    return root / ".repowire" / "jobs" / f"{job_id}.yaml"


def test_init_writes_layout_and_gitignore(root):
    base = root / ".repowire"
    assert {p.name for p in base.iterdir()} >= {
        "jobs",
        "agents",
        "locks",
        "config.yaml",
        ".gitignore",
    }
    ignored = (base / ".gitignore").read_text().split()
    assert {"locks/", "*.log", "*.exit", "agents/*/state.yaml"} <= set(ignored)
    assert "is trusted" in rw("init").stdout or "trusted" in rw("init").stdout


def test_seed_workflow_create_update_result(root):
    job_id = _create("Write the brief", "--prompt", "Prepare the brief.")
    assert job_id.startswith("job-")
    assert rw("jobs", "status", job_id).stdout.strip() == "queued"
    rw("jobs", "update", job_id, "--state", "running", "--note", "Started first pass")
    rw("jobs", "update", job_id, "--state", "succeeded", "--result-summary", "Brief posted")
    assert rw("jobs", "result", job_id).stdout.strip() == "Brief posted"
    shown = json.loads(rw("jobs", "show", job_id, "--json").stdout)
    assert shown["state"] == "succeeded" and shown["attempt"] == 1
    assert [n["text"] for n in shown["notes"]][0] == "Started first pass"
    assert shown["notes"][0]["state"] == "running"
    assert shown["finished_at"].endswith("Z")


def test_create_options_are_recorded(root):
    (root / "work").mkdir()
    job_id = _create(
        "Build",
        "--command",
        "make",
        "--path",
        "work",
        "--timeout",
        "10m",
        "--retries",
        "2",
        "--due-at",
        "2h",
        "--env",
        "A=1",
        "--env",
        "B=x=y",
        "--continuity",
        "fresh",
    )
    data = json.loads(rw("jobs", "show", job_id, "--json").stdout)
    assert data["command"] == "make" and data["path"] == "work" and data["timeout"] == "10m"
    assert data["retries"] == 2 and data["env"] == {"A": "1", "B": "x=y"}
    assert data["due_at"].endswith("Z") and data["continuity"] == "fresh"


def test_create_json_prints_the_record(root):
    data = json.loads(rw("jobs", "create", "X", "--command", "true", "--json").stdout)
    assert data["state"] == "queued" and data["id"].startswith("job-")


def test_list_json_shape_and_filters(root):
    a = _create("A", "--command", "true")
    b = _create("B", "--command", "true")
    rw("jobs", "cancel", b)
    rw("jobs", "create", "Nightly", "--cron", "0 3 * * *", "--command", "true")
    data = json.loads(rw("jobs", "list", "--json").stdout)
    assert [t["id"] for t in data["templates"]] == ["nightly"]
    assert sorted(j["id"] for j in data["jobs"]) == sorted([a, b])
    by_id = {j["id"]: j for j in data["jobs"]}
    assert by_id[a] == json.loads(rw("jobs", "show", a, "--json").stdout)
    only = json.loads(rw("jobs", "list", "--state", "canceled", "--json").stdout)
    assert [j["id"] for j in only["jobs"]] == [b]
    human = rw("jobs", "list").stdout
    assert "TEMPLATES" in human and "JOBS" in human and "canceled" in human


def test_cancel_queued_and_retry(root):
    job_id = _create("A", "--command", "true")
    rw("jobs", "cancel", job_id, "--reason", "superseded")
    data = json.loads(rw("jobs", "show", job_id, "--json").stdout)
    assert data["state"] == "canceled" and data["error"] == "superseded"
    assert rw("jobs", "retry", job_id).stdout.strip() == f"{job_id} queued"
    data = json.loads(rw("jobs", "show", job_id, "--json").stdout)
    assert data["state"] == "queued" and "error" not in data
    assert "retried" in data["notes"][-1]["text"]


def test_template_create_show_pause(root):
    out = rw(
        "jobs",
        "create",
        "Daily brief",
        "--path",
        ".repowire/agents/daily-brief",
        "--backend",
        "codex",
        "--cron",
        "@daily",
        "--prompt",
        "Prepare the brief.",
    ).stdout
    assert out.strip() == "daily-brief"
    job_yaml = root / ".repowire/agents/daily-brief/job.yaml"
    assert "cron: '@daily'" in job_yaml.read_text()
    assert "path:" not in job_yaml.read_text()  # the worker folder is the default
    shown = json.loads(rw("jobs", "show", "daily-brief", "--json").stdout)
    assert shown["kind"] == "template" and len(shown["next_fires"]) == 5
    assert shown["next_fires"][0]["utc"].endswith("Z")
    job_yaml.write_text("# my comment\n" + job_yaml.read_text())
    assert rw("jobs", "cancel", "daily-brief").stdout.strip() == "daily-brief paused"
    assert rw("jobs", "status", "daily-brief").stdout.strip() == "paused"
    text = job_yaml.read_text()
    assert text.startswith("# my comment\n") and "enabled: false" in text
    assert_clean_error(
        rw("jobs", "create", "Daily brief", "--cron", "@daily", "--command", "x", ok=False),
        says="already exists",
    )


def test_template_with_timezone(root):
    rw(
        "jobs",
        "create",
        "Berlin",
        "--cron",
        "0 9 * * *",
        "--timezone",
        "Europe/Berlin",
        "--command",
        "true",
    )
    shown = json.loads(rw("jobs", "show", "berlin", "--json").stdout)
    assert shown["timezone"] == "Europe/Berlin"
    assert shown["next_fires"][0]["local"].startswith(shown["next_fires"][0]["local"][:10])
    assert shown["next_fires"][0]["local"][11:16] == "09:00"


def test_note_only_update_keeps_state(root):
    job_id = _create("A", "--command", "true")
    rw("jobs", "update", job_id, "--note", "halfway", "--session-id", "abc-123")
    data = json.loads(rw("jobs", "show", job_id, "--json").stdout)
    assert data["state"] == "queued" and data["notes"][-1] == {
        "at": data["notes"][-1]["at"],
        "text": "halfway",
    }
    assert data["session_id"] == "abc-123"


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", ".x"])
@pytest.mark.parametrize("command", ["show", "status", "result", "cancel", "retry"])
def test_unsafe_ids_refused(root, bad, command):
    assert_clean_error(rw("jobs", command, bad, ok=False), says="not a valid job id")
    assert not (root / ".repowire" / "x.yaml").exists()


@pytest.mark.parametrize("command", ["show", "status", "result", "cancel", "retry"])
def test_unknown_id(root, command):
    assert_clean_error(rw("jobs", command, "job-nope", ok=False), says="no job")


def test_refused_transition_leaves_file_byte_for_byte(root):
    job_id = _create("A", "--command", "true")
    path = _job_file(root, job_id)
    before = path.read_bytes()
    result = rw("jobs", "update", job_id, "--state", "succeeded", ok=False)
    assert_clean_error(result, says="queued")
    assert "succeeded" in result.stderr
    assert path.read_bytes() == before
    assert_clean_error(rw("jobs", "retry", job_id, ok=False), says="only failed or canceled")
    assert path.read_bytes() == before


def test_terminal_job_takes_notes_but_no_state(root):
    job_id = _create("A", "--command", "true")
    rw("jobs", "cancel", job_id)
    rw("jobs", "update", job_id, "--note", "why it was canceled", "--result-summary", "none")
    assert_clean_error(
        rw("jobs", "update", job_id, "--state", "running", ok=False), says="canceled"
    )
    before = (root / ".repowire" / "jobs" / f"{job_id}.yaml").read_bytes()
    rw("jobs", "cancel", job_id)  # cancelling twice changes nothing
    assert (root / ".repowire" / "jobs" / f"{job_id}.yaml").read_bytes() == before
    rw("jobs", "update", job_id, "--state", "running", ok=False)
    other = _create("B", "--command", "true")
    rw("jobs", "update", other, "--state", "running")
    rw("jobs", "update", other, "--state", "succeeded")
    assert_clean_error(rw("jobs", "cancel", other, ok=False), says="succeeded")


@pytest.mark.parametrize(
    "args, says",
    [
        (["--command", "x", "--cron", "61 * * * *"], "not a valid cron expression"),
        (["--command", "x", "--cron", "@daily", "--timezone", "Mars/Olympus"], "time zone"),
        (["--command", "x", "--timeout", "soon"], "duration"),
        (["--command", "x", "--due-at", "yesterday-ish"], "time"),
        (["--prompt", "x", "--backend", "nope"], "known backends: shell, codex"),
        (["--command", "x", "--path", "missing"], "not a folder"),
        (["--command", "x", "--id", "../escape"], "not a valid job id"),
        (["--command", "x", "--env", "A=1"], ""),  # fine, as a control
    ],
)
def test_create_bad_values(root, args, says):
    result = rw("jobs", "create", "A", *args, ok=False)
    if not says:
        assert result.exit_code == 0
        return
    assert_clean_error(result, says=says)
    assert list((root / ".repowire" / "jobs").iterdir()) == []
    assert list((root / ".repowire" / "agents").iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [
        ["jobs", "create", "A", "--retries", "-1", "--command", "x"],
        ["jobs", "create", "A", "--env", "NOEQUALS", "--command", "x"],
        ["jobs", "create", "A", "--prompt", "x", "--prompt-file", "y"],
        ["jobs", "create", "A", "--command", "x", "--timezone", "UTC"],
        ["jobs", "update", "j"],
        ["jobs", "update", "j", "--state", "done"],
        ["jobs", "list", "--state", "done"],
        ["jobs", "frobnicate"],
        ["jobs", "show"],
    ],
)
def test_usage_errors_exit_2(root, args):
    result = rw(*args, ok=False)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert list((root / ".repowire" / "jobs").iterdir()) == []


def test_duplicate_chosen_id(root):
    _create("A", "--command", "x", "--id", "build")
    assert_clean_error(
        rw("jobs", "create", "B", "--command", "y", "--id", "build", ok=False),
        says="already exists",
    )


def test_broken_files_are_listed_invalid_and_never_rewritten(root):
    jobs = root / ".repowire" / "jobs"
    broken = {
        "bad-yaml": "name: [unclosed\n",
        "bad-type": "command: echo\nretries: many\n",
        "python-tag": "command: !!python/object/apply:os.system ['touch pwned']\n",
        "not-a-map": "- just\n- a list\n",
    }
    for name, text in broken.items():
        (jobs / f"{name}.yaml").write_text(text)
    good = _create("Good", "--command", "true")
    data = json.loads(rw("jobs", "list", "--json").stdout)
    states = {j["id"]: j["state"] for j in data["jobs"]}
    assert states == {**{n: "invalid" for n in broken}, good: "queued"}
    errors = {j["id"]: j.get("error", "") for j in data["jobs"]}
    assert "not valid YAML at line" in errors["bad-yaml"] and "retries" in errors["bad-type"]
    assert not (root / "pwned").exists()
    result = rw("validate", ok=False)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 4 and all(".yaml" in line and ": " in line for line in lines)
    for name, text in broken.items():
        assert (jobs / f"{name}.yaml").read_text() == text
    assert_clean_error(rw("jobs", "show", "bad-type", ok=False), says="retries")
    invalid_only = json.loads(rw("jobs", "list", "--state", "invalid", "--json").stdout)
    assert len(invalid_only["jobs"]) == 4


def test_validate_named_paths_and_bad_templates(root):
    agents = root / ".repowire" / "agents"
    (agents / "never").mkdir()
    (agents / "never" / "job.yaml").write_text("cron: '0 0 30 2 *'\ncommand: x\n")
    (agents / "badzone").mkdir()
    (agents / "badzone" / "job.yaml").write_text("cron: '@daily'\ntimezone: Nowhere\ncommand: x\n")
    (agents / "empty").mkdir()
    (agents / "fine").mkdir()
    (agents / "fine" / "job.yaml").write_text("cron: '@daily'\ncommand: x\n")
    assert "ok: 1 file checked" in rw("validate", str(agents / "fine")).stdout
    one = rw("validate", str(agents / "never" / "job.yaml"), ok=False)
    assert "matches no date" in one.stderr and one.exit_code == 1
    result = rw("validate", ok=False)
    assert "Nowhere" in result.stderr and "empty" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 3
    listing = json.loads(rw("jobs", "list", "--json").stdout)
    assert {t["id"]: t["state"] for t in listing["templates"]} == {
        "badzone": "invalid",
        "empty": "invalid",
        "never": "invalid",
        "fine": "enabled",
    }
    assert_clean_error(rw("jobs", "show", "never", ok=False), says="matches no date")
    (root / ".repowire" / "config.yaml").write_text("max_concurency: 3\n")
    assert "unknown key 'max_concurency'" in rw("validate", ok=False).stderr


def test_missing_repowire_folder(bare):
    for args in (["jobs", "list"], ["jobs", "show", "x"], ["validate"], ["trust"]):
        assert_clean_error(rw(*args, ok=False), says="no .repowire/ folder")
    assert not (bare / ".repowire").exists()


def test_create_outside_a_project_says_to_init_like_every_other_command(bare):
    for args in (["jobs", "create", "A", "--command", "true"], ["agents", "create", "w"]):
        assert_clean_error(rw(*args, ok=False), says="run 'repowire init'")
    assert not (bare / ".repowire").exists()


def test_repowire_that_is_a_file(bare):
    (bare / ".repowire").write_text("oops")
    assert_clean_error(rw("jobs", "list", ok=False), says="not a folder")


def test_root_option_and_env(bare, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    rw("--root", str(other), "init")
    job_id = rw("jobs", "create", "A", "--command", "true", "--root", str(other)).stdout.strip()
    assert (other / ".repowire" / "jobs" / f"{job_id}.yaml").exists()
    assert_clean_error(
        rw("jobs", "list", "--root", str(tmp_path / "nope"), ok=False),
        says="not an existing folder",
    )


def test_root_discovery_from_a_subfolder(root, monkeypatch):
    sub = root / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    job_id = rw("jobs", "create", "A", "--command", "true").stdout.strip()
    assert (root / ".repowire" / "jobs" / f"{job_id}.yaml").exists()


def test_bad_config_is_a_clear_error(root):
    (root / ".repowire" / "config.yaml").write_text("max_concurrency: lots\n")
    assert_clean_error(
        rw("jobs", "create", "A", "--prompt", "x", "--backend", "mine", ok=False),
        says="max_concurrency",
    )


def test_config_backends_are_known(root):
    (root / ".repowire" / "config.yaml").write_text(
        "backends:\n  mine:\n    command: [mine, '{prompt}']\n"
    )
    rw("jobs", "create", "A", "--prompt", "x", "--backend", "mine")


def test_trust_and_revoke(root):
    from repowire.store.config import is_trusted

    assert is_trusted(root)
    rw("trust", "--revoke")
    assert not is_trusted(root)
    rw("trust")
    assert is_trusted(root)


def test_every_command_has_help_with_an_example():
    from repowire.cli import cli

    def walk(group, prefix):
        ctx = click.Context(group)
        for name in group.list_commands(ctx):  # loads each command's module
            command = group.get_command(ctx, name)
            if hasattr(command, "commands"):
                yield from walk(command, [*prefix, name])
            else:
                yield [*prefix, name]

    for path in walk(cli, []):
        out = rw(*path, "--help").stdout
        assert "Example" in out, path
        assert "--root" in out, path


_GC_AT_EXIT = """
import atexit, gc, sys
atexit.register(lambda: print("collecting", gc.isenabled(), gc.get_freeze_count() > 0))
sys.argv[0] = "repowire"
from repowire.__main__ import main
main()
"""


def test_the_command_collects_garbage_again_once_it_has_its_root(root):
    """The entry point starts with the cyclic collector off; finding the root freezes what
    start-up made and turns it back on, so a long-running command (a runner) collects. A
    program that imports the library is left alone."""

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", _GC_AT_EXIT, *args], cwd=root, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()[-1]

    assert run("jobs", "list") == "collecting True True"
    assert run("--version") == "collecting False False"  # no root: it only prints and exits
    library = "import gc, repowire.cli, repowire.api; print(gc.isenabled())"
    assert subprocess.check_output([sys.executable, "-c", library], text=True) == "True\n"


def test_real_subprocess_round_trip(root):
    done = rw_process("jobs", "create", "A", "--command", "true", cwd=root)
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    assert rw_process("jobs", "status", job_id, cwd=root).stdout.strip() == "queued"
    bad = rw_process("jobs", "status", "../x", cwd=root)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("Error: ") and len(bad.stderr.strip().splitlines()) == 1
    usage = rw_process("jobs", "update", job_id, "--state", "bogus", cwd=root)
    assert usage.returncode == 2


def test_a_relative_due_time_is_never_early(root):
    """`--due-at 3s` is at least three seconds after the command was given, not truncated to
    the second below (which let the job start 2.0 s after the command returned)."""
    from datetime import datetime, timedelta, timezone

    before = datetime.now(timezone.utc)
    job_id = _create("Later", "--command", "true", "--due-at", "3s")
    shown = json.loads(rw("jobs", "show", job_id, "--json").stdout)
    due = datetime.fromisoformat(shown["due_at"].replace("Z", "+00:00"))
    assert due >= before + timedelta(seconds=3)


def test_broken_pipes_end_quietly(root):
    for n in range(60):
        rw("jobs", "create", f"j{n}", "--command", "true", "--id", f"j{n}")
    for args in ("jobs list", "jobs show j0 --json"):
        done = subprocess.run(
            f"{sys.executable} -m repowire {args} | head -1",
            shell=True,
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.stderr == "", done.stderr


def test_each_state_keeps_its_colour_and_no_color_is_honoured(root):
    write_job(root, "bad", command="exit 1")
    write_job(root, "good", command="true")
    run_once(root)
    write_job(root, "waiting", command="true", due_at="2099-01-01T00:00:00Z")
    _, text = on_a_terminal("jobs", "list", cwd=root)
    assert "\x1b[31mfailed" in text and "\x1b[32msucceeded" in text and "\x1b[34mqueued" in text
    _, plain = on_a_terminal("jobs", "list", cwd=root, env={"NO_COLOR": "1"})
    assert "\x1b[" not in plain and "failed" in plain


def test_not_found_says_what_the_name_is(root):
    rw("jobs", "create", "tick", "--cron", "@daily", "--command", "true")
    job_id = rw("jobs", "create", "one", "--command", "true").stdout.strip()
    for verb in ("run", "resume"):
        assert_clean_error(rw("jobs", verb, job_id, ok=False), says="is a job, not a template")
    for args in (
        ["logs", "tick"],
        ["result", "tick"],
        ["retry", "tick"],
        ["update", "tick", "--note", "x"],
    ):
        assert_clean_error(rw("jobs", *args, ok=False), says="tick is a template, not a job")


def test_output_reads_cleanly(root):
    rw("jobs", "create", "tick", "--cron", "@daily", "--command", "no-such-program-xyz")
    run_id = rw("jobs", "run", "tick").stdout.strip()
    log = run_once(root)
    assert "SIGTERM" not in log  # it ended by itself
    assert "sh: 1: eval: no-such-program-xyz: not found" in rw("jobs", "logs", run_id).stdout
    assert "repowire-executor" not in rw("jobs", "logs", run_id).stdout
    rw("jobs", "cancel", "tick")
    shown = rw("jobs", "show", "tick").stdout
    assert "False" not in shown and "enabled  " not in shown
    assert all(line == line.rstrip() for line in shown.splitlines())
    job = rw("jobs", "show", run_id).stdout
    assert "executor" in job and "{" not in job.split("executor", 1)[1].splitlines()[0]
    ok_id = rw("jobs", "create", "ok", "--command", "true").stdout.strip()
    run_once(root)
    assert_clean_error(rw("jobs", "cancel", ok_id, ok=False), says="already succeeded")
    assert (
        rw("jobs", "create", "Ünïcode näme", "--cron", "@daily", "--command", "true").stdout.strip()
        == "unicode-name"
    )
    assert "e.g." not in rw("mcp", "--help").stdout
    assert "resume: continue" in rw("jobs", "create", "--help").stdout
    assert "Port to listen on" in rw("dashboard", "--help").stdout
    assert "..." not in "".join(rw("--help").stdout.splitlines()[1:])
    assert "..." not in "".join(rw("jobs", "--help").stdout.splitlines()[1:])


def test_daemon_is_the_runners_other_name(root):
    write_job(root, "a", command="true")
    done = rw_process("daemon", "--once", cwd=root)
    assert done.returncode == 0 and state(root, "a") == "succeeded"


@pytest.mark.parametrize("args", [["jobs", "create", "x", "--command", "true", "--due-at", "soon"]])
def test_a_bad_due_time_changes_nothing(root, args):
    before = sorted(p.name for p in (root / ".repowire/jobs").glob("*.yaml"))
    assert_clean_error(rw(*args, ok=False))
    assert sorted(p.name for p in (root / ".repowire/jobs").iterdir()) == before


def test_jobs_run_of_a_finished_job_points_to_rerun_which_works(root):
    """`jobs run` takes templates; given a succeeded job it names the command that runs a
    finished job again (it advised `jobs retry`, which refuses a succeeded job)."""
    from runner_helpers import run_once, write_job

    write_job(root, "done", command="true")
    run_once(root)
    refused = rw("jobs", "run", "done", ok=False)
    assert_clean_error(refused, says="'repowire jobs rerun done'")
    again = rw("jobs", "rerun", "done")
    assert again.exit_code == 0 and again.stdout.strip()


def test_a_usage_problem_shows_the_commands_own_usage_line(root):
    """`jobs update ID` with nothing to change, and `--prompt` with `--prompt-file`, are usage
    problems of those commands: their own usage line, not `repowire jobs [OPTIONS] COMMAND`."""
    job_id = rw("jobs", "create", "x", "--command", "true").stdout.strip()
    for args, usage in (
        (["update", job_id], "jobs update [OPTIONS] ID"),
        (["create", "y", "--prompt", "a", "--prompt-file", "b"], "jobs create [OPTIONS] NAME"),
    ):
        done = rw("jobs", *args, ok=False)
        assert_clean_error(done, code=2)
        assert usage in done.stderr and "COMMAND" not in done.stderr, done.stderr


def test_status_lists_a_broken_config_among_its_problems(root):
    (root / ".repowire/config.yaml").write_text("max_concurrency: [\n")
    shown = rw("status", ok=False)
    assert shown.exit_code == 3  # no runner serves it: the status says so, as ever
    assert ".repowire/config.yaml: not valid YAML" in shown.stdout, shown.stdout
    data = json.loads(rw("status", "--json", ok=False).stdout)
    assert [p["id"] for p in data["invalid"]] == ["config.yaml"]


def test_create_refuses_what_the_runner_would_refuse_in_its_words(root):
    """A path outside the allowed paths, and a worktree run's base that is no commit, were
    accepted by `jobs create` (exit 0) and failed by the runner at once; now refused at create
    with the runner's sentence, and nothing is written."""
    from conftest import git
    from runner_helpers import read, run_once, write_job

    before = sorted(p.name for p in (root / ".repowire/jobs").glob("*.yaml"))
    outside = rw("jobs", "create", "x", "--command", "true", "--path", "../..", ok=False)
    assert_clean_error(outside, says="path ../.. is outside the allowed paths")
    write_job(root, "hand", command="true", path="../..")  # the runner's own words, the same
    run_once(root)
    assert "path ../.. is outside the allowed paths" in read(root, "hand")["error"]
    git(root, "init", "-q")
    git(root, "commit", "-q", "--allow-empty", "-m", "first")
    no_base = rw(
        "jobs", "create", "y", "--command", "true", "--workspace", "worktree", "--base", "nosuch",
        ok=False,
    )  # fmt: skip
    assert_clean_error(no_base, says="base nosuch is not a commit of the repository")
    records = sorted(p.name for p in (root / ".repowire/jobs").glob("*.yaml"))
    assert records == sorted([*before, "hand.yaml"])  # the refused ones wrote nothing


def test_jobs_list_fits_an_80_column_terminal(root):
    """Every row of `jobs list` fits the terminal: NAME and SUMMARY are cut with … (one long
    name made every row wrap)."""
    import re

    from conftest import on_a_terminal
    from runner_helpers import run_once, write_job

    write_job(root, "short", command="true")
    write_job(root, "long", name="A rather long name " * 4, command="echo " + "words " * 40)
    rw("jobs", "create", "Another job with a name longer than most", "--command", "true")
    run_once(root)
    code, text = on_a_terminal("jobs", "list", cwd=root, columns=80)
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in text.splitlines()]
    assert code == 0 and any("…" in line for line in lines)
    rows = [line for line in lines if not line.startswith("Warning:")]  # stderr, one sentence
    assert all(len(line) <= 80 for line in rows), [len(line) for line in rows]
    assert any(line.startswith("long ") for line in lines)


def test_jobs_show_reads_as_lines_with_one_time_format(root):
    """`jobs show` printed raw JSON for after, notified and usage, `cost_estimated True`, and
    notes in UTC `Z` under fields in local time: each is a readable line, one time format."""
    import re

    from runner_helpers import write_job

    write_job(root, "dep", command="true")
    write_job(
        root,
        "shown",
        command="true",
        after=["dep"],
        labels=["docs", "nightly"],
        state="succeeded",
        attempt=1,
        created_at="2026-11-26T09:00:00Z",
        finished_at="2026-11-26T09:01:00Z",
        usage={"input_tokens": 1200, "output_tokens": 300, "cost_usd": 0.0123,
               "cost_estimated": True},
        notified=[
            {"target": "desktop", "attempt": 1, "at": "2026-11-26T09:01:01Z", "status": "shown",
             "ok": True, "tries": 1},
        ],
        notes=[{"at": "2026-11-26T09:00:30Z", "text": "halfway"}],
    )  # fmt: skip
    shown = rw("jobs", "show", "shown", "--utc").stdout
    assert "[" not in shown.replace("[succeeded]", "") and "{" not in shown and "True" not in shown
    assert re.search(r"^after +dep$", shown, re.M) and "docs, nightly" in shown
    assert "input 1,200 tokens" in shown and "$0.0123 (estimated from prices)" in shown
    assert "desktop: ok, shown (attempt 1, 2026-11-26T09:01:01Z, 1 try)" in shown
    assert "  2026-11-26T09:00:30Z halfway" in shown  # as the fields above it, with --utc


def test_logs_of_a_job_that_never_started_say_so(root):
    """`jobs logs` of a queued job printed nothing and exited 0, as if its log were empty."""
    job_id = rw("jobs", "create", "later", "--command", "true").stdout.strip()
    done = rw("jobs", "logs", job_id)
    assert done.stdout == "" and f"job {job_id} has no log yet: it is queued" in done.stderr


def test_create_warns_when_the_backends_program_is_not_on_path(root, tmp_path, monkeypatch):
    """`jobs create --backend codex` without codex on PATH said nothing; the runner then
    failed the job at its start. Now a warning (the job is still created), and none when the
    program is there."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    made = rw("jobs", "create", "brief", "--backend", "codex", "--prompt", "Go.")
    assert made.exit_code == 0 and made.stdout.strip()
    assert "Warning: codex (backend codex) is not on PATH here" in made.stderr
    (bin_dir / "codex").write_text("#!/bin/sh\n")
    (bin_dir / "codex").chmod(0o755)
    again = rw("jobs", "create", "brief2", "--backend", "codex", "--prompt", "Go.")
    assert "not on PATH" not in again.stderr
