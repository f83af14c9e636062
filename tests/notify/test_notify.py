"""Notifications and the inbox: real HTTP servers on 127.0.0.1, real hook processes, a runner
killed between a job's end and its notification, and the inbox's seen marks."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import assert_clean_error, rw, wait_for
from runner_helpers import RunnerProcess, kill_executors, read, run_once, set_config, write_job


class Hooks:
    """A webhook receiver: records each POST; answers with the statuses queued (200 after),
    after a delay when asked."""

    def __init__(self) -> None:
        self.posts: list[dict[str, object]] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hooks.posts.append({"path": self.path, "headers": dict(self.headers), "body": body})
                time.sleep(hooks.delay)
                status = hooks.statuses.pop(0) if hooks.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def hooks():
    receiver = Hooks()
    yield receiver
    receiver.close()


def notified(root: Path, job_id: str) -> list[dict]:
    return read(root, job_id).get("notified", [])


def test_a_webhook_gets_the_record_signed_and_the_try_is_noted(root, hooks):
    write_job(
        root,
        "done",
        command="echo all good",
        notify=[
            {"webhook": f"{hooks.url}/in", "secret": "s3cret"},
            {"webhook": f"{hooks.url}/slack", "format": "slack"},
        ],
    )
    log = run_once(root)
    plain = next(p for p in hooks.posts if p["path"] == "/in")
    assert plain["headers"]["Content-Type"] == "application/json"
    body = json.loads(plain["body"])
    shown = json.loads(rw("jobs", "show", "done", "--json").stdout)
    told = ("id", "name", "state", "attempt", "result_summary", "created_at", "finished_at")
    assert {k: body[k] for k in told if k in body} == {k: shown[k] for k in told if k in shown}
    assert body["record"] == ".repowire/jobs/done.yaml"
    assert not {"notify", "executor", "notified", "env"} & set(body)  # secrets, the handle
    assert body["id"] == "done" and body["state"] == "succeeded"
    assert body["result_summary"] == "all good"
    expected = hmac.new(b"s3cret", plain["body"], hashlib.sha256).hexdigest()
    assert plain["headers"]["X-Repowire-Signature-256"] == f"sha256={expected}"
    slack = next(p for p in hooks.posts if p["path"] == "/slack")
    assert json.loads(slack["body"]) == {"text": "repowire: done (done) succeeded: all good"}
    assert "X-Repowire-Signature-256" not in slack["headers"]
    entries = notified(root, "done")
    assert {e["target"] for e in entries} == {
        f"webhook {hooks.url}/in",
        f"webhook {hooks.url}/slack",
    }
    assert all(e["ok"] and e["status"] == "HTTP 200" and e["attempt"] == 1 for e in entries)
    assert f"notified done: webhook {hooks.url}/in: HTTP 200" in log
    assert len(hooks.posts) == 2  # once each
    assert "HTTP 200" in rw("jobs", "show", "done").stdout


def test_a_hook_command_sees_the_job_and_writes_to_its_log(root):
    write_job(
        root,
        "hooked",
        command="echo result line; exit 3",
        notify=[
            {
                "command": 'echo "told $REPOWIRE_JOB_ID $REPOWIRE_STATE [$REPOWIRE_SUMMARY] in '
                '$PWD"; test -n "$REPOWIRE_RESULT_FILE" && test -f "$REPOWIRE_JOB_FILE"'
            },
        ],
    )
    run_once(root)
    text = (root / ".repowire" / "jobs" / "hooked.log").read_text()
    header, told = text.split("--- repowire notify: ", 1)
    assert "result line" in header
    assert f"told hooked failed [result line] in {root}" in told
    assert notified(root, "hooked")[0]["status"] == "exit status 0"


def test_when_picks_the_states_and_the_config_default_tells_of_failures(root, hooks):
    set_config(root, f"notify:\n  - webhook: {hooks.url}/default\n")
    write_job(root, "fine", command="true")
    write_job(root, "broken", command="exit 1")
    write_job(
        root, "picky", command="true", notify=[{"webhook": f"{hooks.url}/p", "when": ["failed"]}]
    )
    run_once(root)
    assert [p["path"] for p in hooks.posts] == ["/default"]
    assert json.loads(hooks.posts[0]["body"])["id"] == "broken"
    assert notified(root, "fine") == [] and notified(root, "picky") == []


def test_failures_are_noted_and_never_fail_or_hold_up_the_job(root, hooks):
    hooks.statuses = [500]
    write_job(
        root,
        "j",
        command="echo fine",
        notify=[
            {"webhook": "http://127.0.0.1:1/closed"},
            {"webhook": f"{hooks.url}/500"},
            {"command": "exit 4"},
            {"command": "no-such-program-here"},
        ],
    )
    started = time.monotonic()
    log = run_once(root)
    assert time.monotonic() - started < 30
    record = read(root, "j")
    assert record["state"] == "succeeded"
    by = {e["target"]: e for e in record["notified"]}
    assert by["webhook http://127.0.0.1:1/closed"]["status"].startswith("unreachable")
    assert by[f"webhook {hooks.url}/500"]["status"] == "HTTP 500"
    assert by["command exit 4"]["status"] == "exit status 4"
    missing = by["command no-such-program-here"]
    assert missing["status"] == "exit status 127; not tried again" and missing["tries"] == 5
    assert not any(e["ok"] for e in record["notified"])
    assert "notification failed for j: webhook http://127.0.0.1:1/closed" in log


def test_a_webhook_that_never_answers_times_out_on_its_own(root, hooks):
    hooks.delay = 3.0
    write_job(root, "slowhook", command="true", notify=[{"webhook": hooks.url, "timeout": "1s"}])
    started = time.monotonic()
    run_once(root)
    assert time.monotonic() - started < 2.9
    entry = notified(root, "slowhook")[0]
    assert not entry["ok"] and entry["status"] == "no answer within 1s"
    assert read(root, "slowhook")["state"] == "succeeded"


def test_desktop_without_a_notifier_says_so_once(root, monkeypatch, tmp_path):
    tools = tmp_path / "bin"  # a PATH with what the executor's wrapper needs, and no notifier
    tools.mkdir()
    (tools / "mv").symlink_to(shutil.which("mv"))
    monkeypatch.setenv("PATH", str(tools))
    for name in ("d1", "d2"):
        write_job(root, name, command="true", notify=[{"desktop": True}])
    log = run_once(root)
    assert log.count("no desktop notifier here") == 1
    for name in ("d1", "d2"):
        entry = notified(root, name)[0]
        assert entry["status"].startswith("no desktop notifier") and not entry["ok"]


def test_a_failed_try_is_made_again_after_its_backoff(root, hooks):
    hooks.statuses = [503]
    write_job(root, "retry-hook", command="true", notify=[{"webhook": hooks.url}])
    runner = RunnerProcess(root)
    try:
        wait_for(lambda: any(e["ok"] for e in notified(root, "retry-hook")), 20, "the second try")
    finally:
        runner.stop()
        kill_executors(root)
    entries = notified(root, "retry-hook")
    assert [e["status"] for e in entries] == ["HTTP 503", "HTTP 200"]
    assert [e["tries"] for e in entries] == [1, 2]
    assert len(hooks.posts) == 2


def test_a_runner_killed_before_the_delivery_delivers_after_restart(root, hooks):
    hooks.delay = 3.0  # the first POST is still being answered when the runner is killed
    write_job(root, "crashy", command="true", notify=[{"webhook": hooks.url}])
    first = RunnerProcess(root)
    wait_for(lambda: hooks.posts, 15, "the first POST")
    first.stop(signal.SIGKILL)
    assert notified(root, "crashy") == []
    hooks.delay = 0.0
    second = RunnerProcess(root)
    try:
        wait_for(lambda: notified(root, "crashy"), 15, "the delivery after the restart")
    finally:
        second.stop()
        kill_executors(root)
    entries = notified(root, "crashy")
    assert [e["ok"] for e in entries] == [True]  # exactly one record of success
    assert 1 <= len(hooks.posts) <= 2  # at most one duplicate POST


def test_bad_targets_make_the_file_invalid(root):
    for target, says in (
        ({"webhook": "ftp://example.com/x"}, "expected an http or https URL"),
        ({"command": "true", "secret": "x"}, "secret, secret_env and format go with a webhook"),
        ({"webhook": "http://x", "secret": "a", "secret_env": "B"}, "secret or secret_env, not"),
        ({"webhook": "http://x", "secret_env": "not a name"}, "environment variable"),
        ({"webhook": "http://x", "command": "y"}, "give one of command, webhook or desktop"),
        ({"webhook": "http://x", "when": ["done"]}, "expected one of succeeded, failed, canceled"),
        ({"desktop": True, "colour": "red"}, "unknown key"),
    ):
        write_job(root, "bad", command="true", notify=[target])
        result = rw("validate", ok=False)
        assert result.exit_code == 1 and says in result.output, (target, result.output)
    set_config(root, "notify:\n  - webhook: mailto:me@example.com\n")
    result = rw("validate", ok=False)
    assert "expected an http or https URL" in result.output


# --- the inbox --------------------------------------------------------------------------------


def test_the_inbox_lists_unseen_runs_newest_first_and_marks_them_seen(root):
    write_job(
        root,
        "older",
        command="echo first",
        finished_at="2026-11-26T01:00:00Z",
        state="succeeded",
        attempt=1,
        result_summary="first",
    )
    write_job(
        root,
        "newer",
        command="exit 2",
        finished_at="2026-11-26T02:00:00Z",
        state="failed",
        attempt=1,
        error="exit status 2",
        usage={"cost_usd": 0.25},
    )
    write_job(root, "waiting", command="true")
    listing = json.loads(rw("inbox", "--json").stdout)
    assert [r["id"] for r in listing["runs"]] == ["newer", "older"] and listing["unread"] == 2
    text = rw("inbox").stdout
    assert "exit status 2" in text and "$0.2500" in text and "2 unread" in text
    assert rw("inbox", "--read", "newer").stdout == "seen newer\n"
    assert [r["id"] for r in json.loads(rw("inbox", "--json").stdout)["runs"]] == ["older"]
    rw("inbox", "--all")
    assert json.loads(rw("inbox", "--json").stdout)["runs"] == []
    assert "Nothing new" in rw("inbox").stdout
    write_job(
        root,
        "newer",
        command="exit 2",
        finished_at="2099-01-01T00:00:00Z",
        state="failed",
        attempt=2,
        error="again",
    )
    assert [r["id"] for r in json.loads(rw("inbox", "--json").stdout)["runs"]] == ["newer"]


def test_quiet_runs_stay_out_of_the_inbox_and_default_notices(root, hooks):
    write_job(
        root,
        "q1",
        command='echo "<!-- repowire: quiet -->\nchecked, nothing new" > "$REPOWIRE_RESULT_FILE"',
        notify=[{"webhook": f"{hooks.url}/all"}],
    )
    write_job(
        root,
        "q2",
        command='repowire jobs update "$REPOWIRE_JOB_ID" --quiet',
        notify=[
            {"webhook": f"{hooks.url}/all"},
            {"webhook": f"{hooks.url}/explicit", "when": ["succeeded"]},
        ],
    )
    write_job(root, "loud", command="echo news")
    run_once(root)
    assert read(root, "q1")["quiet"] is True and read(root, "q2")["quiet"] is True
    assert read(root, "q1")["result_summary"] == "checked, nothing new"
    assert [p["path"] for p in hooks.posts] == ["/explicit"]
    assert [r["id"] for r in json.loads(rw("inbox", "--json").stdout)["runs"]] == ["loud"]


def test_inbox_refuses_bad_calls(root):
    write_job(
        root, "x", command="true", state="succeeded", attempt=1, finished_at="2026-11-26T01:00:00Z"
    )
    assert_clean_error(rw("inbox", "--read", ok=False), code=2, says="give the ids")
    assert_clean_error(rw("inbox", "x", ok=False), code=2, says="--read")
    assert_clean_error(rw("inbox", "--read", "nope", ok=False), says="no job")
    assert not (root / ".repowire" / "locks" / "inbox.seen").exists()  # nothing marked
    assert_clean_error(rw("jobs", "update", "x", ok=False), code=2, says="quiet")


def test_desktop_notices_go_through_notify_send_and_a_template_tells_of_its_runs(
    root, monkeypatch, tmp_path
):
    tools = tmp_path / "bin"
    tools.mkdir()
    shown = tmp_path / "shown.txt"
    fake = tools / "notify-send"  # a stand-in that keeps what it was asked to show
    fake.write_text(f'#!/bin/sh\nprintf "%s|" "$@" >> {shown}\necho >> {shown}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    folder = root / ".repowire" / "agents" / "nightly"
    folder.mkdir(parents=True)
    (folder / "job.yaml").write_text(
        "cron: '@yearly'\ncommand: echo report ready\nnotify:\n  - desktop: true\n"
    )
    run_id = rw("jobs", "run", "nightly").stdout.strip()
    run_once(root)
    entry = notified(root, run_id)[0]
    assert entry["ok"] and entry["status"] == "shown by notify-send"
    assert shown.read_text() == "--app-name=repowire|repowire: nightly succeeded|report ready|\n"


class _Trickle:
    """A receiver that answers a POST with one byte of its status line every `pause` seconds
    (a read's timeout never passes), or with a redirect."""

    def __init__(self, pause: float = 0.0, redirect: str = "") -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.pause, self.redirect, self.stop = pause, redirect, threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.server.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            with conn:
                conn.recv(65536)
                if self.redirect:
                    conn.sendall(
                        f"HTTP/1.1 302 Found\r\nLocation: {self.redirect}\r\n"
                        "Content-Length: 0\r\n\r\n".encode()
                    )
                    continue
                for byte in b"HTTP/1.1 200 OK\r\n":
                    if self.stop.wait(self.pause):
                        break
                    with contextlib.suppress(OSError):
                        conn.sendall(bytes([byte]))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.server.close()


def test_a_receiver_that_trickles_is_cut_at_the_tries_deadline(root):
    """Each try has a total deadline: a receiver sending a byte of its answer every 0.4 s kept
    a delivery alive forever (the timeout is per read), and `runner --once` never ended."""
    receiver = _Trickle(pause=0.4)
    try:
        write_job(
            root, "trickled", command="true", notify=[{"webhook": receiver.url, "timeout": "1s"}]
        )
        started = time.monotonic()
        run_once(root)
        assert time.monotonic() - started < 6
        entry = notified(root, "trickled")[0]
        assert not entry["ok"] and entry["status"] == "no answer within 1s"
    finally:
        receiver.close()


def test_a_redirect_is_a_failure_that_says_where_and_urls_are_shown_without_secrets(root):
    """A POST is never followed to where a 3xx points (it went on as a GET without the body
    and was noted `HTTP 200, ok: true`); a URL's query and credentials (a `?token=`) stay out
    of the runner's log and of `notified`."""
    receiver = _Trickle(redirect="http://user:pw@127.0.0.1:9/elsewhere?token=abc")
    try:
        target = receiver.url.replace("http://", "http://me:hunter2@") + "/in?token=s3cret"
        write_job(root, "moved", command="true", notify=[{"webhook": target}])
        log = run_once(root)
        entry = notified(root, "moved")[0]
        assert not entry["ok"] and "HTTP 302" in entry["status"]
        assert "redirect to http://127.0.0.1:9/elsewhere" in entry["status"]
        assert entry["target"].startswith(f"webhook {receiver.url}/in (")
        written = log + (root / ".repowire/jobs/moved.yaml").read_text().split("notify:")[0]
        written += json.dumps(notified(root, "moved"))
        for secret in ("s3cret", "hunter2", "token=abc", "pw@"):
            assert secret not in written, secret
    finally:
        receiver.close()


def test_a_hook_and_a_precondition_leave_nothing_running_once_they_answer(root):
    """The process group of a notify command and of a `run_if` is ended once it answers: a
    subshell a hook left behind wrote into the job's log after `runner --once` exited, and
    `run_if: sleep 45 & exit 0` left the sleep alive after the job succeeded."""

    hook_pid, gate_pid = root / "hook.pid", root / "gate.pid"
    write_job(
        root,
        "left",
        command="true",
        run_if=f"sh -c 'echo $$ > {gate_pid}; sleep 45' & {_until(gate_pid)}",
        notify=[
            {"command": f"sh -c 'echo $$ > {hook_pid}; sleep 45; echo late' & {_until(hook_pid)}"}
        ],
    )
    run_once(root)
    assert read(root, "left")["state"] == "succeeded"
    for path in (hook_pid, gate_pid):
        wait_for(path.exists, what=f"{path.name}")
        pid = int(path.read_text())
        wait_for(lambda pid=pid: _ended(pid), what=f"{path.name}'s process to end")


def _until(path: Path) -> str:
    """Shell words that wait until the background child has written its pid, then exit 0."""
    return f"while [ ! -s {path} ]; do sleep 0.05; done; exit 0"


def _ended(pid: int) -> bool:
    """Gone, or a zombie (killed orphans wait for this test process to collect them)."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_webhook_secret_is_never_sent_nor_shown_and_may_come_from_the_environment(
    root, hooks, monkeypatch
):
    """Two webhooks, one signed: neither body carries the secret (each was the whole record,
    its `notify` list included), `jobs show`, `jobs list --json` and the MCP/dashboard views
    mask it, and `secret_env` names a variable of the runner's instead of a committed value."""
    write_job(
        root,
        "signed",
        command="true",
        notify=[
            {"webhook": f"{hooks.url}/a", "secret": "s3cret"},
            {"webhook": f"{hooks.url}/b"},
            {"webhook": f"{hooks.url}/c", "secret_env": "HOOK_SECRET"},
        ],
    )
    monkeypatch.setenv("HOOK_SECRET", "from-env")
    run_once(root)
    assert len(hooks.posts) == 3
    for post in hooks.posts:
        assert b"s3cret" not in post["body"] and b"from-env" not in post["body"]
        assert b"root_token" not in post["body"]
    by_path = {p["path"]: p for p in hooks.posts}
    signed = hmac.new(b"from-env", by_path["/c"]["body"], hashlib.sha256).hexdigest()
    assert by_path["/c"]["headers"]["X-Repowire-Signature-256"] == f"sha256={signed}"
    assert "X-Repowire-Signature-256" not in by_path["/b"]["headers"]
    for printed in (
        rw("jobs", "show", "signed").stdout,
        rw("jobs", "show", "signed", "--json").stdout,
        rw("jobs", "list", "--json").stdout,
    ):
        assert "s3cret" not in printed and "********" in printed
    assert "secret: s3cret" in (root / ".repowire/jobs/signed.yaml").read_text()  # kept


def test_an_unset_secret_env_is_a_failure_said_once(root, hooks, monkeypatch):
    monkeypatch.delenv("NO_SUCH_SECRET", raising=False)
    write_job(
        root,
        "unset",
        command="true",
        notify=[{"webhook": hooks.url, "secret_env": "NO_SUCH_SECRET"}],
    )
    run_once(root)
    entry = notified(root, "unset")[0]
    assert not entry["ok"] and "NO_SUCH_SECRET is not set" in entry["status"]
    assert entry["tries"] == 5 and hooks.posts == []  # not tried again, nothing sent unsigned
