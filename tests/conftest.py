"""Shared fixtures: a temporary root per test, CLI helpers, and a leak check."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner, Result

from repowire.cli import cli

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"


def _become_subreaper() -> None:
    """Orphaned grandchildren (executors of a killed runner) re-parent to pytest, so the leak
    check below sees them; Linux only (prctl PR_SET_CHILD_SUBREAPER)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)


_become_subreaper()


def wait_for(condition: Callable[[], object], timeout: float = 15.0, what: str = "") -> object:
    """Poll condition until it returns something true, or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves a child process or a thread behind."""
    threads_before = set(threading.enumerate())
    files_before = {f.path for f in psutil.Process().open_files()}
    yield
    me = psutil.Process()
    leaked_files = [f.path for f in me.open_files() if f.path not in files_before]
    assert not leaked_files, f"test left files open: {leaked_files}"
    deadline = time.monotonic() + 5
    while True:
        children = [c for c in me.children(recursive=True) if _alive(c)]
        threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        if not children and not threads:
            break
        if time.monotonic() > deadline:
            for child in children:
                child.kill()
            names = [(c.pid, c.cmdline()[:4]) for c in children if _alive(c)]
            raise AssertionError(f"test leaked processes {names} and threads {threads}")
        time.sleep(0.05)
    # Popen objects of in-process runners' executors, dead by now: collected here, not during
    # a later test, where their "still running" ResourceWarning would be an error there.
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    # reap our own zombies
    for child in me.children():
        try:
            os.waitpid(child.pid, os.WNOHANG)
        except ChildProcessError:
            pass


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _enter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> Path:
    """A fresh folder to work in, with its own trust store and no REPOWIRE_ROOT."""
    home = tmp_path / name
    home.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("REPOWIRE_ROOT", raising=False)
    monkeypatch.chdir(home)
    return home


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project root with .repowire/ initialised and trusted; the test runs in it."""
    home = _enter(tmp_path, monkeypatch, "root")
    result = CliRunner().invoke(cli, ["init"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return home


@pytest.fixture
def bare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder with no .repowire/; the test runs in it."""
    return _enter(tmp_path, monkeypatch, "bare")


def rw(*args: str, ok: bool = True) -> Result:
    """Run the CLI in-process with click's runner; assert success unless ok=False."""
    result = CliRunner().invoke(cli, list(args))
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


def rw_process(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a real subprocess (python -m repowire)."""
    return subprocess.run(
        [sys.executable, "-m", "repowire", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_clean_error(result: Result, code: int = 1, says: str = "") -> None:
    """One plain sentence on stderr, the exit status asked for, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert isinstance(result.exception, SystemExit), result.exception
    err = result.stderr
    assert "Traceback" not in err
    assert says.lower() in err.lower(), err
    assert err.strip().splitlines()[-1].startswith("Error: ")


def on_a_terminal(
    *args: str, cwd: Path, env: dict[str, str] | None = None, columns: int = 100
) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdin, stdout and stderr, `columns` wide (a new
    pty is 0 by 0, which Python 3.10 and 3.11 answer differently); its status and output."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "repowire", *args],
        cwd=cwd,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**os.environ, **(env or {})},
    )
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the program ended
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    return proc.wait(timeout=30), output.decode()


def git(where: Path, *args: str, check: bool = True) -> str:
    """Run git in `where` as a test user; its output, stripped."""
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=t@example.com", *args],
        cwd=where,
        capture_output=True,
        text=True,
        check=check,
    )
    return done.stdout.strip()
