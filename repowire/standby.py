"""A standby wrapper: a shell started before it is needed, so no spawn delays a job's start.

The runner keeps one ready (LocalExecutor.refill, when a step is over): /bin/sh in a session
and process group of its own, its stdin a pipe, its environment the one every executor starts
from (executor.base_environment). A gated local start (local.py) takes it and writes it one
line: where its output goes, its folder, how its environment differs from the one it has, and
the wrapper's arguments. The shell evaluates that line and goes on as the wrapper, waiting at
the same pipe for the runner's word. Its pid and start time, known since it was started, are
the attempt's, so the record naming them is written while the shell sets itself up rather
than after a spawn: the command runs about half a millisecond sooner.

What the line cannot carry exactly is started by a fresh spawn instead: a variable whose name
the shell cannot export, or gives a meaning of its own (IFS, PWD, ...), a NUL, a relative
folder, or a line over LINE_MAX (the shell reads it a byte at a time). A standby never taken
reads the end of its input when the runner closes the pipe, or dies, and exits.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess

from .executor import Launch, base_environment

__all__ = ["Standby", "LINE_MAX"]

LINE_MAX = 4096
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# names a shell reads at its start, treats specially or keeps read-only (dash, and bash as the
# /bin/sh of macOS, along with every BASH* name); a shell started with them may differ
_SHELL_NAMES = frozenset(
    "IFS PS1 PS2 PS4 OPTIND OPTARG PPID LINENO PWD OLDPWD CDPATH ENV SHLVL _ SHELLOPTS "
    "POSIXLY_CORRECT UID EUID GROUPS RANDOM SRANDOM SECONDS HISTCMD FUNCNAME EPOCHSECONDS "
    "EPOCHREALTIME".split()
)
_OWN_NAMES = ("nl", "setup")
# $nl lets a quoted newline travel inside the one line
_PROLOGUE = "nl='\n'\nIFS= read -r setup || exit 0\neval \"$setup\"\nunset setup nl\n"


def _special(name: str) -> bool:
    """A name the line cannot export, or should not change in a shell already started."""
    return name in _SHELL_NAMES or name.startswith("BASH") or not _NAME.fullmatch(name)


def _quoted(text: str) -> str:
    return shlex.quote(text).replace("\n", "'\"$nl\"'")


class Standby:
    """One waiting shell, taken at most once."""

    def __init__(self, proc: subprocess.Popen[bytes], pipe: int, env: dict[str, str]) -> None:
        self.proc, self.pipe, self.env = proc, pipe, env
        self.start_time: float | None = None  # set by whoever timed the spawn

    @classmethod
    def start(cls, wrapper: str, name: str) -> Standby:
        """Spawn a shell that runs `wrapper` once it is told what for."""
        env = base_environment()
        read_end, write_end = os.pipe()
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", _PROLOGUE + wrapper, "sh", name, "(standby)"],
                env=env,
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        return cls(proc, write_end, env)

    def setup(self, launch: Launch, arguments: list[str]) -> bytes | None:
        """The line that makes this shell the wrapper of `launch`, run with `arguments`;
        None when a line cannot say it exactly."""
        env = launch.env
        gone = [name for name in self.env if name not in env]
        changed = [name for name, value in env.items() if self.env.get(name) != value]
        if any(_special(name) for name in gone + changed):
            return None
        if any(name in env or name in self.env for name in _OWN_NAMES):
            return None  # the prologue would change what the command sees
        if not launch.cwd.is_absolute():
            return None
        parts = [
            f"exec >>{_quoted(str(launch.log))} 2>&1",
            f"cd -P -- {_quoted(str(launch.cwd))} || exit",
            f"OLDPWD={_quoted(env['OLDPWD'])}" if "OLDPWD" in env else "unset OLDPWD",
        ]
        if gone:
            parts.append("unset " + " ".join(gone))
        if changed:
            parts.append("export " + " ".join(f"{n}={_quoted(env[n])}" for n in changed))
        parts.append("set -- " + " ".join(map(_quoted, arguments)))
        line = "; ".join(parts) + "\n"
        if "\0" in line or len(line.encode("utf-8", "surrogateescape")) > LINE_MAX:
            return None
        return line.encode("utf-8", "surrogateescape")

    def tell(self, line: bytes) -> bool:
        """Hand the shell its line; False if it is gone (it was killed meanwhile)."""
        if self.proc.poll() is not None:
            return False
        try:
            return os.write(self.pipe, line) == len(line)  # an empty pipe takes LINE_MAX whole
        except OSError:
            return False

    def close(self) -> None:
        """Let a shell never taken end (it reads the end of its input), and collect it."""
        with contextlib.suppress(OSError):
            os.close(self.pipe)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
