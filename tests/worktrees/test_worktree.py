"""Worktree runs: each run works in a git worktree on a branch of its own, and the user's
checkout (files, index, stash, branch), dirty as it is, is byte for byte the same afterwards.

Real git repositories in temporary folders, real runners and executors."""

from __future__ import annotations

import os
import random
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
from conftest import assert_clean_error, git, rw, wait_for
from runner_helpers import RunnerProcess, kill_executors, read, run_once, state, write_job

from repowire.worktrees.git import run_git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def snapshot(repo: Path) -> dict[str, object]:
    """Everything of the user's checkout a run must not touch."""
    files = {
        str(p.relative_to(repo)): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and not {".git", ".repowire"} & set(p.relative_to(repo).parts)
    }
    return {
        "files": files,
        "index": (repo / ".git" / "index").read_bytes(),
        "status": git(repo, "status", "--porcelain", "--untracked-files=all", "--", ":!.repowire"),
        "stash": git(repo, "stash", "list"),
        "head": git(repo, "rev-parse", "HEAD"),
        "branch": git(repo, "symbolic-ref", "-q", "--short", "HEAD", check=False),
    }


@pytest.fixture
def repo(root: Path) -> Path:
    """The root is a git repository with a commit, a stash, and a dirty checkout: a tracked
    file changed, another staged, a file untracked."""
    git(root, "init", "-q", "-b", "main")
    (root / "app.py").write_text("print('v1')\n")
    (root / "notes.txt").write_text("first\n")
    (root / "sub").mkdir()
    (root / "sub" / "data.txt").write_text("data\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    (root / "notes.txt").write_text("stashed work\n")
    git(root, "stash", "-q")
    (root / "app.py").write_text("print('my unfinished edit')\n")
    (root / "notes.txt").write_text("staged edit\n")
    git(root, "add", "notes.txt")
    (root / "scratch.txt").write_text("untracked\n")
    return root


def worktree_entries(repo: Path) -> list[str]:
    return [
        line.split(" ", 1)[1]
        for line in git(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]


def branches(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/").splitlines()


def left_in_worktrees(repo: Path) -> list[str]:
    folder = repo / ".repowire" / "worktrees"
    return (
        sorted(p.name for p in folder.iterdir() if p.name != ".gitignore")
        if folder.exists()
        else []
    )


EDIT = (
    "printf 'print(\"agent\")\\n' > app.py && git add app.py && "
    "git -c user.name=Agent -c user.email=a@x commit -q -m 'agent commit' && "
    "echo new > added.txt && echo more >> sub/data.txt && pwd > where.txt"
)


def test_a_worktree_run_leaves_the_dirty_checkout_alone_and_its_work_on_a_branch(repo):
    before = snapshot(repo)
    start = git(repo, "rev-parse", "HEAD")
    write_job(repo, "fix", command=EDIT, workspace="worktree")
    run_once(repo)
    record = read(repo, "fix")
    assert record["state"] == "succeeded", record
    assert snapshot(repo) == before
    tree = record["worktree"]
    assert tree["branch"] == "repowire/fix" and tree["base"] == start
    assert tree["path"] == ".repowire/worktrees/fix"
    assert tree["head"] == git(repo, "rev-parse", "repowire/fix") and tree["files_changed"] == 4
    assert any("4 files changed on branch repowire/fix" in n["text"] for n in record["notes"])
    # the agent's own commit, then what it left uncommitted, by repowire
    log = git(repo, "log", "--format=%an %s", f"{start}..repowire/fix").splitlines()
    assert log[1] == "Agent agent commit" and log[0].startswith("repowire repowire: what job fix")
    assert git(repo, "show", "repowire/fix:where.txt").endswith(".repowire/worktrees/fix")
    assert git(repo, "show", "repowire/fix:sub/data.txt") == "data\nmore"
    assert worktree_entries(repo) == [str(repo)] and left_in_worktrees(repo) == []
    stat = rw("jobs", "diff", "fix", "--stat").output
    assert "added.txt" in stat and "app.py" in stat and "4 files changed" in stat
    assert '+print("agent")' in rw("jobs", "diff", "fix").output
    shown = rw("jobs", "show", "fix").output
    assert f"repowire/fix  {start[:12]}..{tree['head'][:12]}, 4 files changed" in shown


def test_a_run_that_changes_nothing_leaves_no_branch(repo):
    write_job(repo, "look", command="cat app.py", workspace="worktree")
    run_once(repo)
    record = read(repo, "look")
    assert record["state"] == "succeeded"
    assert record["worktree"]["head"] == "" and record["worktree"]["files_changed"] == 0
    assert "repowire/look" not in branches(repo)
    assert worktree_entries(repo) == [str(repo)] and left_in_worktrees(repo) == []
    assert rw("jobs", "diff", "look").output == ""
    # the worktree holds the committed file, not the user's unfinished edit
    assert "print('v1')" in (repo / ".repowire" / "jobs" / "look.log").read_text()


def test_keep_worktree_keeps_the_folder_and_a_failed_run_keeps_its_work(repo):
    write_job(
        repo, "keep", command="echo x > out.txt; exit 3", workspace="worktree", keep_worktree=True
    )
    run_once(repo)
    record = read(repo, "keep")
    assert record["state"] == "failed" and record["exit_code"] == 3
    assert record["worktree"]["files_changed"] == 1
    kept = repo / ".repowire" / "worktrees" / "keep"
    assert (kept / "out.txt").read_text() == "x\n"
    assert str(kept) in worktree_entries(repo)
    assert git(repo, "show", "repowire/keep:out.txt") == "x"


def test_base_names_the_commit_a_run_starts_from(repo):
    first = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "v1")
    git(repo, "commit", "-q", "--allow-empty", "-m", "later")  # the staged edit goes in too
    rw(
        "jobs",
        "create",
        "old",
        "--command",
        "cat notes.txt",
        "--workspace",
        "worktree",
        "--base",
        "v1",
        "--id",
        "old",
    )
    run_once(repo)
    record = read(repo, "old")
    assert record["worktree"]["base"] == first and record["workspace"] == "worktree"
    assert record["base"] == "v1"
    assert "first" in (repo / ".repowire" / "jobs" / "old.log").read_text()


def test_a_retry_goes_on_from_the_branch_the_last_attempt_left(repo):
    write_job(
        repo,
        "again",
        command='echo "attempt $REPOWIRE_ATTEMPT" >> progress.txt; [ "$REPOWIRE_ATTEMPT" = 2 ]',
        workspace="worktree",
        retries=1,
        retry_delay=0,
    )
    run_once(repo)
    record = read(repo, "again")
    assert record["state"] == "succeeded" and record["attempt"] == 2
    assert git(repo, "show", "repowire/again:progress.txt") == "attempt 1\nattempt 2"
    assert record["worktree"]["base"] == git(repo, "rev-parse", "main")


def test_the_root_may_sit_in_a_subfolder_of_the_repository(tmp_path, monkeypatch):
    top = tmp_path / "top"
    (top / "project").mkdir(parents=True)
    git(top, "init", "-q")
    (top / "README").write_text("top\n")
    (top / "project" / "code.txt").write_text("code\n")
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "start")
    monkeypatch.chdir(top / "project")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    rw("init")
    root = top / "project"
    write_job(
        root,
        "here",
        command="cat code.txt && echo $REPOWIRE_WORKTREE > w && echo y > code.txt",
        workspace="worktree",
    )
    run_once(root)
    record = read(root, "here")
    assert record["state"] == "succeeded", record
    assert git(top, "show", "repowire/here:project/code.txt") == "y"
    assert (root / "code.txt").read_text() == "code\n"
    shown = git(top, "show", "repowire/here:project/w")
    assert shown.endswith(".repowire/worktrees/here/project")


def test_two_overlapping_runs_never_share_files(repo):
    before = snapshot(repo)
    for name in ("one", "two"):
        write_job(repo, name, command=f"sleep 0.3; echo {name} > app.py", workspace="worktree")
    run_once(repo, max_concurrency=2)
    assert git(repo, "show", "repowire/one:app.py") == "one"
    assert git(repo, "show", "repowire/two:app.py") == "two"
    assert snapshot(repo) == before


# --- templates ----------------------------------------------------------------------------------


def _template(repo: Path, name: str, continuity: str) -> None:
    folder = repo / ".repowire" / "agents" / name
    folder.mkdir()
    (folder / "job.yaml").write_text(
        "cron: '@yearly'\npath: .\nworkspace: worktree\n"
        f"continuity: {continuity}\n"
        "command: 'date +%N >> log.txt; cat log.txt | wc -l > count.txt'\n"
    )


def test_resumed_template_runs_share_one_worktree_and_go_on_from_the_last(repo):
    _template(repo, "steady", "resume")
    first = rw("jobs", "run", "steady").stdout.strip()
    run_once(repo)
    time.sleep(1.1)  # the next run is named for the next second
    second = rw("jobs", "run", "steady").stdout.strip()
    run_once(repo)
    one, two = read(repo, first)["worktree"], read(repo, second)["worktree"]
    assert one["branch"] == two["branch"] == "repowire/steady"
    assert one["path"] == two["path"] == ".repowire/worktrees/steady"
    assert two["base"] == one["head"] and two["head"] == git(repo, "rev-parse", "repowire/steady")
    assert git(repo, "show", "repowire/steady:count.txt") == "2"
    assert (repo / ".repowire" / "worktrees" / "steady" / "count.txt").exists()  # kept
    assert "+2" in rw("jobs", "diff", second).output  # the run's own change alone


def test_fresh_template_runs_get_a_worktree_each(repo):
    _template(repo, "each", "fresh")
    first = rw("jobs", "run", "each").stdout.strip()
    run_once(repo)
    assert read(repo, first)["worktree"]["branch"] == f"repowire/{first}"
    assert git(repo, "show", f"repowire/{first}:count.txt") == "1"
    assert left_in_worktrees(repo) == []


def test_template_runs_stay_out_of_git_status_and_one_off_records_do_not(root):
    git(root, "init", "-q")
    folder = root / ".repowire" / "agents" / "minutely"
    folder.mkdir()
    (folder / "job.yaml").write_text("cron: '* * * * *'\ncommand: echo hi > out.txt\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "repowire set up")
    for _ in range(2):
        rw("jobs", "run", "minutely")
        run_once(root)
        time.sleep(1.1)
    runs = [
        p.name for p in (root / ".repowire" / "jobs").iterdir() if p.name.startswith("minutely-")
    ]
    assert len([r for r in runs if r.endswith(".yaml")]) == 2 and any(
        r.endswith(".log") for r in runs
    )
    status = git(root, "status", "--porcelain", "--untracked-files=all")
    assert status == "?? .repowire/agents/minutely/out.txt", status
    rw("jobs", "create", "once", "--command", "true", "--id", "once")
    assert "?? .repowire/jobs/once.yaml" in git(
        root, "status", "--porcelain", "--untracked-files=all"
    )


def test_init_adds_missing_ignore_lines_to_an_older_gitignore(root):
    ignore = root / ".repowire" / ".gitignore"
    ignore.write_text("# mine\nlocks/\n*.log\nsecret.txt\n")
    rw("init")
    text = ignore.read_text()
    assert text.startswith("# mine\nlocks/\n*.log\nsecret.txt\n")
    assert "worktrees/" in text and "Z.*" in text and text.count("locks/") == 1
    rw("init")
    assert ignore.read_text() == text


# --- reviewing and removing -----------------------------------------------------------------------


def test_rm_and_prune_delete_branches_only_when_asked(repo):
    for name in ("a", "b", "c"):
        write_job(repo, name, command=f"echo {name} > {name}.txt", workspace="worktree")
    run_once(repo)
    assert rw("jobs", "rm", "a").output == "removed a\n"
    assert "repowire/a" in branches(repo)
    assert rw("jobs", "rm", "b", "--branches", "--dry-run").output == (
        "would remove b\nwould delete branch repowire/b\n"
    )
    assert "repowire/b" in branches(repo)
    assert rw("jobs", "rm", "b", "--branches").output == "removed b\ndeleted branch repowire/b\n"
    assert "repowire/b" not in branches(repo)
    assert "deleted branch repowire/c" in rw("jobs", "prune", "--branches").output
    assert [b for b in branches(repo) if b.startswith("repowire/")] == ["repowire/a"]


def test_diff_of_a_running_worktree_run_shows_its_work_so_far(repo):
    write_job(
        repo,
        "slow",
        command='echo changed > app.py; touch "$REPOWIRE_ROOT/ready"; '
        'while [ ! -f "$REPOWIRE_ROOT/go" ]; do sleep 0.05; done',
        workspace="worktree",
    )
    runner = RunnerProcess(repo)
    try:
        wait_for(lambda: (repo / "ready").exists(), what="the run to edit")
        assert "+changed" in rw("jobs", "diff", "slow").output
        assert "still working" not in rw("jobs", "show", "slow").output
        assert "working in .repowire/worktrees/slow" in rw("jobs", "show", "slow").output
        (repo / "go").touch()
        wait_for(lambda: state(repo, "slow") == "succeeded", what="the run to end")
        wait_for(lambda: left_in_worktrees(repo) == [], what="the worktree to go")
    finally:
        runner.stop()
        kill_executors(repo)


def test_bad_worktree_options_are_refused_before_anything_is_written(repo):
    assert_clean_error(
        rw("jobs", "create", "x", "--command", "true", "--base", "main", ok=False),
        says="base and keep_worktree apply only with workspace: worktree",
    )
    assert_clean_error(
        rw("jobs", "create", "x", "--command", "true", "--workspace", "elsewhere", ok=False),
        code=2,
    )
    assert_clean_error(rw("jobs", "diff", "nope", ok=False), says="no job")
    assert list((repo / ".repowire" / "jobs").iterdir()) == []
    write_job(repo, "plain", command="true")
    assert_clean_error(rw("jobs", "diff", "plain", ok=False), says="did not run in a worktree")


# --- what cannot start, and what goes wrong on the way ---------------------------------------


def _fails_unstarted(root: Path, job_id: str, says: str) -> dict[str, object]:
    run_once(root)
    record = read(root, job_id)
    assert record["state"] == "failed", record
    assert says in record["error"], record["error"]
    assert not (root / ".repowire" / "jobs" / f"{job_id}.log").exists()  # it never started
    return record


def test_a_root_that_is_not_a_git_repository_fails_the_run_saying_so(root):
    write_job(root, "nogit", command="touch ran", workspace="worktree")
    _fails_unstarted(root, "nogit", "is not in a git repository")
    assert not (root / "ran").exists() and left_in_worktrees(root) == []


def test_a_repository_with_no_commits_yet_fails_the_run_saying_so(root):
    git(root, "init", "-q")
    write_job(root, "empty", command="true", workspace="worktree")
    _fails_unstarted(root, "empty", "has no commits yet")


def test_an_unknown_base_fails_the_run_saying_so(repo):
    write_job(repo, "bad", command="true", workspace="worktree", base="no-such-ref")
    _fails_unstarted(repo, "bad", "base no-such-ref is not a commit")


def test_a_branch_that_exists_already_is_not_taken_over(repo):
    git(repo, "branch", "repowire/taken")
    mine = git(repo, "rev-parse", "repowire/taken")
    write_job(repo, "taken", command="echo x > x.txt", workspace="worktree")
    _fails_unstarted(repo, "taken", "branch repowire/taken already exists")
    assert git(repo, "rev-parse", "repowire/taken") == mine


def test_git_missing_from_path_fails_the_run_saying_so(repo, monkeypatch):
    bare_path = repo.parent / "no-git-bin"
    bare_path.mkdir()
    monkeypatch.setenv("PATH", str(bare_path))
    write_job(repo, "nopath", command="true", workspace="worktree")
    _fails_unstarted(repo, "nopath", "git is not on PATH")


def test_a_detached_head_is_a_fine_base_and_stays_detached(repo):
    git(repo, "checkout", "-q", "--detach")
    before = snapshot(repo)
    write_job(repo, "det", command="echo d > d.txt", workspace="worktree")
    run_once(repo)
    record = read(repo, "det")
    assert record["state"] == "succeeded"
    assert record["worktree"]["base"] == before["head"]
    assert snapshot(repo) == before and before["branch"] == ""


def test_a_path_not_committed_is_not_in_the_tree(repo):
    (repo / "newdir").mkdir()
    write_job(repo, "nodir", command="true", workspace="worktree", path="newdir")
    run_once(repo)
    record = read(repo, "nodir")
    assert record["state"] == "failed" and "is not in the worktree" in record["error"]
    assert record["worktree"]["head"] == ""  # settled: nothing ran, nothing changed
    assert left_in_worktrees(repo) == [] and "repowire/nodir" not in branches(repo)
    assert worktree_entries(repo) == [str(repo)]


def test_a_worktree_deleted_by_hand_mid_run_ends_the_run_and_leaves_no_entry(repo):
    write_job(
        repo,
        "gone",
        command="git -c user.name=A -c user.email=a@x commit -q --allow-empty -m kept; "
        'touch "$REPOWIRE_ROOT/ready"; while [ ! -f "$REPOWIRE_ROOT/go" ]; do sleep 0.05; done; '
        "echo late > late.txt",
        workspace="worktree",
    )
    runner = RunnerProcess(repo)
    try:
        wait_for(lambda: (repo / "ready").exists(), what="the run to start")
        shutil.rmtree(repo / ".repowire" / "worktrees" / "gone")
        (repo / "go").touch()
        wait_for(lambda: state(repo, "gone") in ("failed", "succeeded"), what="its end")
        wait_for(lambda: worktree_entries(repo) == [str(repo)], what="the entry to go")
    finally:
        runner.stop()
        kill_executors(repo)
    record = read(repo, "gone")
    assert record["worktree"]["head"] == git(repo, "rev-parse", "repowire/gone")
    assert any("removed while it ran" in n["text"] for n in record["notes"])


def test_git_waits_out_another_gits_lock_instead_of_failing(repo):
    git(repo, "branch", "scratch")
    lock = repo / ".git" / "packed-refs.lock"
    lock.touch()
    timer = threading.Timer(0.5, lock.unlink)
    timer.start()
    try:
        began = time.monotonic()
        done = run_git(["branch", "-D", "scratch"], repo)
    finally:
        timer.join()
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - began >= 0.4
    assert "scratch" not in branches(repo)


def test_a_lock_held_while_a_run_ends_delays_its_tidying_but_loses_nothing(repo):
    write_job(repo, "locked", command="true", workspace="worktree")
    lock = repo / ".git" / "packed-refs.lock"
    runner = RunnerProcess(repo)
    try:
        lock.touch()
        timer = threading.Timer(1.0, lock.unlink)
        timer.start()
        wait_for(lambda: state(repo, "locked") == "succeeded", what="the run")
        timer.join()
        wait_for(lambda: "repowire/locked" not in branches(repo), what="the empty branch to go")
    finally:
        runner.stop()
        kill_executors(repo)
    assert worktree_entries(repo) == [str(repo)]


# --- crashes ------------------------------------------------------------------------------------


def test_a_runner_killed_mid_run_leaves_the_next_runner_to_commit_and_tidy(repo):
    write_job(
        repo,
        "long",
        command='echo work > work.txt; touch "$REPOWIRE_ROOT/ready"; '
        'while [ ! -f "$REPOWIRE_ROOT/go" ]; do sleep 0.05; done',
        workspace="worktree",
    )
    first = RunnerProcess(repo)
    wait_for(
        lambda: (repo / "ready").exists() and "pid" in read(repo, "long")["executor"],
        what="the run to start and its executor to be recorded",
    )
    first.stop(signal.SIGKILL)
    (repo / "go").touch()
    pid = read(repo, "long")["executor"]["pid"]
    wait_for(lambda: not _alive(pid), what="the executor to end")
    second = RunnerProcess(repo)
    try:
        wait_for(lambda: state(repo, "long") == "succeeded", what="the run recorded")
        wait_for(lambda: left_in_worktrees(repo) == [], what="the worktree removed")
    finally:
        second.stop()
        kill_executors(repo)
    assert git(repo, "show", "repowire/long:work.txt") == "work"
    assert worktree_entries(repo) == [str(repo)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return (
        Path(f"/proc/{pid}/stat").exists() and ") Z " not in Path(f"/proc/{pid}/stat").read_text()
    )


@pytest.mark.slow
def test_a_crash_loop_leaves_every_run_done_once_and_no_worktree_behind(repo):
    """SIGKILL the runner again and again while worktree runs start and end: each runs once,
    each branch holds its work, and nothing is left in `git worktree list`."""
    chance = random.Random(17)
    names = [f"w{i}" for i in range(6)]
    for name in names:
        write_job(
            repo,
            name,
            command=f"echo {name} >> ran-{name}.txt; echo x >> $REPOWIRE_ROOT/count-{name}; "
            "sleep 0.2",
            workspace="worktree",
        )
    kills = 0
    while kills < 40 and (kills < 12 or not all(state(repo, n) == "succeeded" for n in names)):
        runner = RunnerProcess(repo, "--max-concurrency", "2")
        time.sleep(chance.uniform(0.0, 0.4))  # a kill at a different point of each life
        runner.stop(signal.SIGKILL)
        kills += 1
    final = RunnerProcess(repo)
    try:
        wait_for(lambda: all(state(repo, n) == "succeeded" for n in names), 60, "all runs")
        wait_for(lambda: left_in_worktrees(repo) == [], 30, "every worktree removed")
    finally:
        final.stop()
        kill_executors(repo)
    assert worktree_entries(repo) == [str(repo)]
    for name in names:
        assert (repo / f"count-{name}").read_text() == "x\n", name  # it ran once
        assert git(repo, "show", f"repowire/{name}:ran-{name}.txt") == name
        assert read(repo, name)["worktree"]["files_changed"] == 1


def test_diff_of_a_committed_record_writes_nothing_and_runs_nothing_it_names(repo, tmp_path):
    """A record committed in a clone named `base: --output=FILE`: `jobs diff` overwrote that
    file with the diff (only `head` was checked). Every value passed to git is checked to be a
    commit id and placed after --end-of-options, the worktree path must be repowire's own, and
    no external diff driver runs."""
    head = git(repo, "rev-parse", "HEAD")
    target = tmp_path / "notes.txt"
    target.write_text("mine\n")
    forged = {"branch": "repowire/opt", "base": f"--output={target}", "head": head}
    for name, worktree in (
        ("opt", {**forged, "path": ".repowire/worktrees/opt"}),
        ("far", {"branch": "repowire/far", "base": head, "path": "../../..", "head": None}),
    ):
        write_job(repo, name, command="true", state="succeeded", attempt=1, worktree=worktree)
        done = rw("jobs", "diff", name, ok=False)
        assert_clean_error(done, says="refusing")
    assert target.read_text() == "mine\n"
    (repo / ".gitattributes").write_text("*.py diff=evil\n")
    git(repo, "config", "diff.evil.command", f"touch {tmp_path / 'ran'}")
    (repo / "app.py").write_text("print('v2')\n")
    git(repo, "commit", "-qam", "v2")
    write_job(repo, "ok", command="true", state="succeeded", attempt=1,
              worktree={"branch": "repowire/ok", "base": head, "path": ".repowire/worktrees/ok",
                        "head": git(repo, "rev-parse", "HEAD")})  # fmt: skip
    assert "v2" in rw("jobs", "diff", "ok").stdout
    assert not (tmp_path / "ran").exists()  # the repository's diff driver never ran
