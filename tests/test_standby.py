"""The standby wrapper: a shell started ahead, taken by a gated start instead of a spawn.

A command run by it must see exactly what a freshly spawned wrapper gives it; what one line
cannot carry is spawned as ever; a standby never taken, or whose runner died, ends."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest
from conftest import wait_for
from runner_helpers import RunnerProcess, kill_executors, read, state, write_job

from repowire.executor import Launch, base_environment
from repowire.handles import Handle
from repowire.local import LocalExecutor, process_identity
from repowire.standby import LINE_MAX

# printed by each run: its arguments, environment (NUL-separated), folder, and PWD
REPORT = 'printf \'%s|%s|\\n\' "$0" "$#"; env -0; printf \'\\001%s\\001%s\' "$(pwd)" "$PWD"'


def _run(
    local: LocalExecutor, folder: Path, name: str, launch_env: dict[str, str], files: Path
) -> int:
    """Start REPORT gated in `folder`, say go, wait for it; returns the wrapper's pid."""
    place = files.absolute()  # where its files go (the runner names them so)
    record = place / "record.yaml"
    record.write_text("state: queued\n")
    launch = Launch(
        name,
        ["/bin/sh", "-c", REPORT],
        folder,
        launch_env,
        place / f"{name}.log",
        place / f"{name}.exit",
    )
    handle, gate = local.start_gated(launch, Handle(kind="local"), record)
    assert handle.pid and handle.start_time == process_identity(handle.pid)
    gate.open()
    assert local.children[handle.pid].wait(timeout=15) == 0
    assert (place / f"{name}.exit").read_text() == "0\n"
    return handle.pid


def _report(folder: Path, name: str) -> tuple[str, dict[str, str], list[str]]:
    head, rest = (folder / f"{name}.log").read_bytes().split(b"\n", 1)
    env_text, *places = rest.split(b"\1")
    pairs = [item.split(b"=", 1) for item in env_text.split(b"\0") if item]
    env = {k.decode(): v.decode("utf-8", "surrogateescape") for k, v in pairs}
    return head.decode(), env, [p.decode() for p in places]


def test_a_command_sees_the_same_through_the_standby_as_through_a_spawn(tmp_path, monkeypatch):
    """Environment (values with newlines, quotes, `$(...)`, backslashes, none at all; a
    variable of ours the job's environment drops), folder, PWD, OLDPWD, arguments, log and
    exit file: all alike."""
    monkeypatch.setenv("OLDPWD", "/some/where/before")
    monkeypatch.setenv("DROPPED_BY_THE_JOB", "x")
    folder = tmp_path / "a folder with 'quotes' and\nnewline"
    folder.mkdir()
    env = base_environment()
    del env["DROPPED_BY_THE_JOB"]
    env.update(
        MULTI="one\ntwo\n\nthree\n",
        QUOTES='it\'s "quoted" and \\escaped\\',
        SUBST="$(touch pwned) `touch pwned` $HOME ${PATH}",
        EMPTY="",
        UNICODE="grüße ✓",
        SEMI="a; exit 9 && echo no",
    )
    local = LocalExecutor()
    spawned = _run(local, folder, "spawned", env, folder)
    local.refill()
    assert local.standby is not None
    waiting = local.standby.proc.pid
    taken = _run(local, folder, "taken", env, folder)
    assert taken == waiting and spawned != taken and local.standby is None
    one, two = _report(folder, "spawned"), _report(folder, "taken")
    assert one[0] == two[0] == "sh|0|"
    assert one[1] == two[1] and one[1]["MULTI"] == env["MULTI"]
    assert "DROPPED_BY_THE_JOB" not in two[1] and two[1]["OLDPWD"] == "/some/where/before"
    assert one[2] == two[2] == [str(folder), str(folder)]
    assert not list(tmp_path.rglob("pwned"))


@pytest.mark.parametrize(
    "change",
    [
        "bad-name",
        "IFS",
        "PWD",
        "SHELLOPTS",
        "BASH_ENV",
        "nl",
        "too long",
        "relative folder",
        "missing folder",
    ],
)
def test_a_launch_one_line_cannot_carry_is_spawned_and_the_standby_kept(tmp_path, change):
    """A name the shell cannot export or treats as its own, a line the shell would read too
    slowly, a folder that is not absolute or not there: spawned as ever."""
    env, folder = base_environment(), tmp_path
    if change == "too long":
        env["LONG"] = "x" * LINE_MAX
    elif change == "relative folder":
        folder = Path(os.path.relpath(tmp_path))
    elif change == "missing folder":
        folder = tmp_path / "gone"
    else:
        env[{"bad-name": "A-B"}.get(change, change)] = " changed\t"
    local = LocalExecutor()
    local.refill()
    assert local.standby is not None
    waiting = local.standby
    if change == "missing folder":
        with pytest.raises(FileNotFoundError):
            _run(local, folder, "job", env, tmp_path)
    else:
        assert _run(local, folder, "job", env, tmp_path) != waiting.proc.pid
        _head, seen, _places = _report(tmp_path, "job")
        assert {
            k: v for k, v in env.items() if k not in ("PWD", "IFS", "A-B")
        }.items() <= seen.items()
    assert local.standby is waiting and waiting.proc.poll() is None
    local.close()
    assert waiting.proc.returncode == 0  # it read the end of its input, and ended


def test_a_standby_killed_while_waiting_is_not_taken(tmp_path):
    local = LocalExecutor()
    local.refill()
    assert local.standby is not None
    killed = local.standby.proc
    killed.kill()
    killed.wait(timeout=15)
    assert _run(local, tmp_path, "job", base_environment(), tmp_path) != killed.pid
    local.refill()  # a new one replaces it
    assert local.standby is not None and local.standby.proc.pid != killed.pid
    local.close()


def _ended(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _standbys(runner: psutil.Process) -> list[psutil.Process]:
    found = []
    for child in runner.children():
        try:
            if "(standby)" in child.cmdline():
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def test_a_runner_runs_its_next_job_in_its_standby_and_leaves_none_behind(root):
    runner = RunnerProcess(root)
    try:
        me = psutil.Process(runner.proc.pid)
        waiting = wait_for(lambda: _standbys(me), what="a standby wrapper")
        assert isinstance(waiting, list) and len(waiting) == 1
        write_job(root, "first", command="echo $REPOWIRE_JOB_ID; exit 3")
        wait_for(lambda: state(root, "first") == "failed", what="first ends")
        record = read(root, "first")
        assert record["executor"]["pid"] == waiting[0].pid and record["exit_code"] == 3
        assert (root / ".repowire/jobs/first.log").read_text().splitlines()[-1] == "first"
        again = wait_for(lambda: _standbys(me), what="a new standby")
        assert isinstance(again, list) and again[0].pid != waiting[0].pid
        runner.proc.send_signal(signal.SIGKILL)  # its standby reads the end of its input
        runner.stop()
        wait_for(lambda: _ended(again[0]), what="the standby's end")
    finally:
        runner.stop()
        kill_executors(root)
