"""Running git for worktree runs: one function, which waits out another git's lock."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from repowire.errors import RepowireError

__all__ = ["GitError", "run_git", "git_output", "commit_of", "LOCK_WAIT"]

LOCK_WAIT = 10.0  # how long a command that meets another git's lock file is tried again
# Commits repowire makes of what an executor left are its own, whoever runs the runner.
_IDENTITY = {
    "GIT_AUTHOR_NAME": "repowire",
    "GIT_AUTHOR_EMAIL": "repowire@localhost",
    "GIT_COMMITTER_NAME": "repowire",
    "GIT_COMMITTER_EMAIL": "repowire@localhost",
}
# Variables that would point git at another repository, index or tree than the one asked for.
_ELSEWHERE = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)
_LOCKED = ("index.lock", ".lock': File exists", "cannot lock ref", "Unable to create")


class GitError(RepowireError):
    """git is missing, or a git command failed; the sentence is git's own."""


def _environment() -> dict[str, str]:
    """The runner's environment without what would point git elsewhere, in plain English
    (so a lock can be told from other failures), never asking for a password."""
    env = {k: v for k, v in os.environ.items() if k not in _ELSEWHERE}
    env.update(_IDENTITY, LC_ALL="C", GIT_TERMINAL_PROMPT="0")
    return env


def run_git(args: list[str], cwd: Path, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    """git ARGS in cwd. A command that meets another git's lock (the user's own commit, a
    gc) is tried again with backoff for up to LOCK_WAIT seconds, never failed at once."""
    program = shutil.which("git")
    if program is None:
        raise GitError("git is not on PATH; a worktree run needs git")
    deadline = time.monotonic() + LOCK_WAIT
    delay = 0.05
    while True:
        done = subprocess.run(
            [program, *args],
            cwd=cwd,
            env=_environment(),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        locked = done.returncode != 0 and any(m in done.stderr for m in _LOCKED)
        if not locked or time.monotonic() >= deadline:
            return done
        time.sleep(delay)  # another git holds the lock; it lets go within moments
        delay = min(delay * 2, 1.0)


def git_output(args: list[str], cwd: Path) -> str:
    """What git ARGS prints; GitError with git's own first line when it fails."""
    done = run_git(args, cwd)
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        why = lines[0] if lines else f"exit status {done.returncode}"
        raise GitError(f"git {args[0]} failed: {why.removeprefix('fatal: ')}")
    return done.stdout


def commit_of(repo: Path, ref: str) -> str | None:
    """The commit a ref names, or None when it names none."""
    done = run_git(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], repo
    )
    return done.stdout.strip() if done.returncode == 0 else None
