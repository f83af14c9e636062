"""Telling people a job ended: which `notify` targets are due for a record, and one try at
delivering to one target (a shell command, a webhook, a desktop notice).

What is due is derived from the record alone (its state, attempt, `notify`, `quiet` and the
`notified` entries the runner wrote), so a runner killed between a job's end and its
notification delivers it after a restart: at least once, never lost.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

from repowire import clock
from repowire.record.job import Job
from repowire.record.states import TERMINAL
from repowire.times import format_time, parse_duration

__all__ = [
    "Delivery",
    "due",
    "describe",
    "deliver",
    "stop_group",
    "end_group",
    "shown_url",
    "HOOKS",
    "BODY_KEYS",
    "body_of",
    "MAX_TRIES",
    "BACKOFF",
    "RECENT",
]

MAX_TRIES = 5
BACKOFF = (5.0, 30.0, 120.0, 600.0)  # seconds before the 2nd, 3rd, 4th and 5th try
RECENT = timedelta(days=1)  # runs that ended longer ago are not told about any more
_TIMEOUTS = {"command": 60.0, "webhook": 10.0, "desktop": 10.0}
_ALL = [state.value for state in TERMINAL]
HEADER = "--- repowire notify: "  # heads a hook command's output in <id>.log
HOOKS: set[subprocess.Popen[bytes]] = set()  # hook commands running now (stopped with the runner)
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Delivery:
    """One due notification: the job, the end it tells of (its attempt), and the target."""

    job_id: str
    attempt: int
    target: dict[str, Any]
    tries: int  # tries made before this one

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.job_id, self.attempt, describe(self.target))


def describe(target: dict[str, Any]) -> str:
    """How a target is named in `notified` and in the log: a webhook's URL without its query
    or credentials (a `?token=` is a secret), told apart from another by a digest of it."""
    if "webhook" in target:
        url = str(target["webhook"])
        shown = shown_url(url)
        if shown == url:
            return f"webhook {url}"
        return f"webhook {shown} ({hashlib.sha256(url.encode()).hexdigest()[:8]})"
    if "command" in target:
        return f"command {' '.join(str(target['command']).split())[:120]}"
    return "desktop"


def shown_url(url: str) -> str:
    """The URL without userinfo, query and fragment: what may be written to logs."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def _ended(job: Job) -> datetime | None:
    return job.finished_at or job.updated_at


def due(job: Job, default: list[dict[str, Any]], now: datetime) -> list[Delivery]:
    """The targets still to be told that this job ended: its own `notify` (each for every
    terminal state unless `when` says), else config.yaml's default (for `failed` unless `when`
    says). A quiet job skips targets without an explicit `when`."""
    ended = _ended(job)
    if job.state not in TERMINAL or ended is None or now - ended > RECENT:
        return []
    out = []
    for target in job.notify or default:
        when = target.get("when") or (_ALL if job.notify else ["failed"])
        if job.state.value not in when or (job.quiet and "when" not in target):
            continue
        name = describe(target)
        tries = [e for e in job.notified if e["target"] == name and e["attempt"] == job.attempt]
        if any(e["ok"] for e in tries) or len(tries) >= MAX_TRIES:
            continue
        out.append(Delivery(job.id, job.attempt, target, len(tries)))
    return out


def deliver(
    delivery: Delivery, record: dict[str, Any], env: dict[str, str], log: IO[bytes] | None
) -> tuple[bool, str, bool]:
    """One try: (delivered, status in words, whether trying again is of no use)."""
    target = delivery.target
    timeout = float(parse_duration(target.get("timeout", _TIMEOUTS[_kind(target)])))
    if "command" in target:
        return _command(str(target["command"]), env, log, timeout)
    if "webhook" in target:
        return _webhook(target, record, timeout)
    return _desktop(record, timeout)


def _kind(target: dict[str, Any]) -> str:
    return next(k for k in ("command", "webhook", "desktop") if k in target)


def _command(
    command: str, env: dict[str, str], log: IO[bytes] | None, timeout: float
) -> tuple[bool, str, bool]:
    if log is not None:
        log.write(f"{HEADER}{format_time(clock.now())} {command[:300]}\n".encode())
        log.flush()
    try:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            cwd=env.get("REPOWIRE_ROOT"),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stopped whole on a timeout or a stop
        )
    except OSError as exc:
        return False, f"could not run: {exc.strerror or exc}", True
    with _LOCK:
        HOOKS.add(proc)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(proc)
        return False, f"no end within {timeout:g}s; stopped", False
    finally:
        with _LOCK:
            HOOKS.discard(proc)
    end_group(proc.pid)  # what it left running in the background ends with its answer
    if code == 0:
        return True, "exit status 0", False
    # 126/127: the shell could not run or find the command; trying again is of no use
    return False, f"exit status {code}", code in (126, 127)


def end_group(pgid: int) -> None:
    """SIGKILL what is left of a process group whose leader has ended (none: nothing)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a hook command's whole group, and collect it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


# What a receiver is told of a job: never its `notify` list (secrets), nor the handle.
BODY_KEYS = (
    "id",
    "name",
    "state",
    "attempt",
    "template",
    "result_summary",
    "error",
    "exit_code",
    "created_at",
    "started_at",
    "finished_at",
)


def body_of(record: dict[str, Any]) -> dict[str, Any]:
    """A webhook's JSON body: what a receiver needs of the record, and where the record is."""
    body = {key: record[key] for key in BODY_KEYS if record.get(key) is not None}
    body["record"] = f".repowire/jobs/{record['id']}.yaml"
    return body


def _payload(target: dict[str, Any], record: dict[str, Any]) -> bytes:
    if target.get("format") == "slack":
        words = record.get("result_summary") or record.get("error") or ""
        name = record.get("name") or record["id"]
        text = f"repowire: {name} ({record['id']}) {record.get('state')}" + (
            f": {words}" if words else ""
        )
        return json.dumps({"text": text}).encode()
    return json.dumps(body_of(record), ensure_ascii=False).encode()


def _webhook(
    target: dict[str, Any], record: dict[str, Any], timeout: float
) -> tuple[bool, str, bool]:
    """POST the body; the whole try (connect, send, the answer's status line and headers)
    has `timeout` seconds, however slowly a receiver trickles. Redirects are not followed (a
    POST's body would be lost on the way): a 3xx is a failure that says where it pointed."""
    body = _payload(target, record)
    headers = {"Content-Type": "application/json", "User-Agent": "repowire"}
    secret = target.get("secret")
    if target.get("secret_env"):
        secret = os.environ.get(str(target["secret_env"]))
        if not secret:
            return False, f"secret_env {target['secret_env']} is not set for the runner", True
    if secret:
        digest = hmac.new(str(secret).encode(), body, hashlib.sha256).hexdigest()
        headers["X-Repowire-Signature-256"] = f"sha256={digest}"
    url = urllib.parse.urlsplit(str(target["webhook"]))
    if url.scheme not in ("http", "https") or not url.hostname:
        return False, "unreachable: not an http(s) URL", True
    kind = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    connection = kind(url.hostname, url.port, timeout=timeout)
    cutoff = threading.Timer(timeout, _cut, (connection,))  # the try's total deadline
    cutoff.daemon = True
    started = time.monotonic()
    cutoff.start()
    try:
        path = urllib.parse.urlunsplit(("", "", url.path or "/", url.query, ""))
        connection.request("POST", path, body=body, headers=headers)
        answer = connection.getresponse()
        status, where = answer.status, answer.getheader("Location")
    except (OSError, http.client.HTTPException) as exc:
        if time.monotonic() - started >= timeout or isinstance(exc, TimeoutError):
            return False, f"no answer within {timeout:g}s", False
        return False, f"unreachable: {_reason(exc)}", False
    finally:
        cutoff.cancel()
        connection.close()
    if 300 <= status < 400:
        pointed = f" to {shown_url(where)}" if where else ""
        return False, f"HTTP {status}, a redirect{pointed}; not followed", True
    if status >= 400:
        return False, f"HTTP {status}", status in (400, 401, 403, 404, 405, 410, 422)
    return True, f"HTTP {status}", False


def _cut(connection: http.client.HTTPConnection) -> None:
    """End a try at its deadline: the socket is shut, so a read that waits returns."""
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _reason(exc: object) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(getattr(exc, "strerror", None) or exc)[:200]


def _desktop(record: dict[str, Any], timeout: float) -> tuple[bool, str, bool]:
    title = f"repowire: {record.get('name') or record['id']} {record.get('state')}"
    words = str(record.get("result_summary") or record.get("error") or "")[:200]
    if shutil.which("notify-send"):
        argv = ["notify-send", "--app-name=repowire", title, words]
    elif sys.platform == "darwin" and shutil.which("osascript"):
        script = f"display notification {json.dumps(words)} with title {json.dumps(title)}"
        argv = ["osascript", "-e", script]
    else:
        return False, "no desktop notifier here (notify-send or osascript)", True
    try:
        done = subprocess.run(
            argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, env=os.environ
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{argv[0]} failed: {exc}", False
    if done.returncode == 0:
        return True, f"shown by {argv[0]}", False
    return False, f"{argv[0]} exit status {done.returncode}", False
