"""The dashboard: its JSON API through an HTTP client, and the page in a real headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time

import httpx
import pytest
from conftest import REPO, rw, rw_process, wait_for
from dashboard_helpers import Dashboard
from runner_helpers import read, run_once, state, write_job

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def board(root):
    dash = Dashboard(root)
    yield dash
    dash.close()


def test_api_lists_jobs_templates_and_broken_files(root, board):
    job_id = rw("jobs", "create", "Build", "--command", "true").stdout.strip()
    rw("jobs", "create", "Nightly", "--cron", "0 9 * * 1-5", "--command", "true")
    (root / ".repowire/jobs/broken.yaml").write_text("retries: [\n")
    jobs = board.client.get("/api/jobs").json()["jobs"]
    assert {j["id"]: j["state"] for j in jobs} == {job_id: "queued", "broken": "invalid"}
    templates = board.client.get("/api/templates").json()["templates"]
    assert templates[0]["id"] == "nightly"
    assert templates[0]["schedule"] == "At 09:00, Monday through Friday"
    detail = board.client.get(f"/api/jobs/{job_id}").json()
    assert detail["state"] == "queued" and detail["log"] == {"offset": 0, "text": ""}
    assert board.client.get("/api/jobs/nope").status_code == 404
    assert board.client.get("/api/jobs/..%2Fx").status_code in (400, 404)


def test_actions_go_through_the_library_and_refusals_are_sentences(root, board):
    job_id = rw("jobs", "create", "Build", "--command", "true").stdout.strip()
    assert board.post(f"/api/jobs/{job_id}/cancel").json()["state"] == "canceled"
    refused = board.post(f"/api/jobs/{job_id}/cancel")
    assert refused.status_code == 200  # cancelling twice changes nothing
    assert board.post(f"/api/jobs/{job_id}/retry").json()["state"] == "queued"
    again = board.post(f"/api/jobs/{job_id}/retry")
    assert again.status_code == 409
    assert (
        again.json()["error"]
        == f"job {job_id} is queued; only failed or canceled jobs can be retried"
    )
    rw("jobs", "create", "Nightly", "--cron", "@daily", "--command", "echo fired")
    assert board.post("/api/templates/nightly/pause").json()["state"] == "paused"
    assert "enabled: false" in (root / ".repowire/agents/nightly/job.yaml").read_text()
    run = board.post("/api/templates/nightly/run").json()
    assert run["template"] == "nightly" and state(root, run["id"]) == "queued"
    assert board.post("/api/templates/nightly/resume").json()["state"] == "enabled"


def test_cross_site_and_tokenless_posts_are_refused(root, board):
    job_id = rw("jobs", "create", "Build", "--command", "true").stdout.strip()
    before = (root / f".repowire/jobs/{job_id}.yaml").read_bytes()
    evil = board.post(f"/api/jobs/{job_id}/cancel", Origin="http://evil.example")
    assert evil.status_code == 403 and "cross-site" in evil.json()["error"]
    bare = board.client.post(f"/api/jobs/{job_id}/cancel")
    assert bare.status_code == 403
    rebound = board.client.get("/api/state", headers={"Host": "evil.example"})
    assert rebound.status_code == 403
    assert (root / f".repowire/jobs/{job_id}.yaml").read_bytes() == before


def test_non_loopback_needs_a_token(root):
    result = rw("dashboard", "--host", "0.0.0.0", ok=False)
    assert result.exit_code == 2 and "--token" in result.output
    dash = Dashboard(root, "--host", "127.0.0.1", "--token", "s3cret")
    try:
        assert httpx.get(f"{dash.url}/api/jobs").status_code == 401
        assert httpx.get(f"{dash.url}/").status_code == 401
        good = httpx.get(f"{dash.url}/api/jobs", headers={"X-Repowire-Token": "s3cret"})
        assert good.status_code == 200
        assert dash.token == "s3cret"  # the page, opened with ?token=, carries it
    finally:
        dash.close()


def test_marking_a_finished_run_read_answers_its_record(root, board):
    """POST /api/jobs/ID/read (what opening a finished run does) answers 200 with the record,
    as every action does (it answered HTTP 500: the action's list of ids is no record), and
    the run leaves the inbox."""
    write_job(root, "done", command="true")
    run_once(root)
    assert board.client.get("/api/state").json()["inbox"] == ["done"]
    answer = board.post("/api/jobs/done/read")
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == "done" and answer.json()["state"] == "succeeded"
    assert board.client.get("/api/state").json()["inbox"] == []


needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


@pytest.fixture
def page(board):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as play:
        browser = play.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        tab = browser.new_page(viewport={"width": 1280, "height": 800})
        tab.goto(board.url)
        yield tab
        browser.close()


@needs_chromium
def test_page_lists_and_updates_without_reload(root, board, page):
    rw("jobs", "create", "Nightly", "--cron", "0 3 * * *", "--command", "true")
    page.wait_for_selector("#templates tbody tr[data-id=nightly]")
    page.wait_for_function("document.querySelector('#templates').innerText.includes('At 03:00')")
    job_id = rw("jobs", "create", "Made in the CLI", "--command", "true").stdout.strip()
    page.wait_for_selector(f"#jobs tbody tr[data-id='{job_id}']")
    assert "queued" in page.inner_text(f"#jobs tbody tr[data-id='{job_id}']")


@needs_chromium
def test_cancel_and_retry_from_the_page_change_the_files(root, board, page):
    job_id = rw("jobs", "create", "Doomed", "--command", "exit 3").stdout.strip()
    row = f"#jobs tbody tr[data-id='{job_id}']"
    page.wait_for_selector(row)
    page.click(f"{row} [data-act='jobs:cancel:{job_id}']")
    wait_for(lambda: state(root, job_id) == "canceled", what="cancel from the page")
    page.wait_for_selector(f"{row} [data-act='jobs:retry:{job_id}']")
    assert page.locator(f"{row} [data-act='jobs:cancel:{job_id}']").count() == 0
    page.click(f"{row} [data-act='jobs:retry:{job_id}']")
    wait_for(lambda: state(root, job_id) == "queued", what="retry from the page")
    run_once(root)
    page.wait_for_selector(f"{row} .state.failed")
    page.click(f"{row} td")
    page.wait_for_selector("#detail:not([hidden]) #log")
    assert "exit status 3" in page.inner_text("#detail")


@needs_chromium
def test_refusal_sentence_is_shown_when_the_state_changed(root, board, page):
    job_id = rw("jobs", "create", "Racy", "--command", "true").stdout.strip()
    rw("jobs", "cancel", job_id)
    page.wait_for_selector(f"[data-act='jobs:retry:{job_id}']")
    rw("jobs", "retry", job_id)  # meanwhile, from the CLI
    page.evaluate("(id) => act('jobs', id, 'retry')", job_id)
    page.wait_for_selector("#message:not([hidden])")
    assert "only failed or canceled jobs can be retried" in page.inner_text("#message")


@needs_chromium
def test_run_now_says_the_run_was_fired_not_done(root, board, page):
    """Run now fires a run that a runner starts later: the page said "run done" at once."""
    rw("jobs", "create", "Nightly", "--cron", "@daily", "--command", "true")
    page.wait_for_selector("[data-act='templates:run:nightly']")
    page.click("[data-act='templates:run:nightly']")
    page.wait_for_selector("#message:not([hidden])")
    said = page.inner_text("#message")
    assert "fired nightly-" in said and "a runner starts it" in said and "done" not in said


@needs_chromium
def test_cross_site_post_from_a_page_is_refused(root, board, page):
    job_id = rw("jobs", "create", "Target", "--command", "true").stdout.strip()
    page.goto("about:blank")
    status = page.evaluate(
        """async ([url, id]) => {
             try {
               const r = await fetch(`${url}/api/jobs/${id}/cancel`, {method: 'POST',
                 headers: {'X-Repowire-Token': 'guess'}});
               return r.status;
             } catch (e) { return 'blocked'; }
           }""",
        [board.url, job_id],
    )
    assert status in (403, "blocked")
    assert state(root, job_id) == "queued"


@needs_chromium
def test_live_log_and_screenshot(root, board, page):
    write_job(root, "demo-run", name="Nightly report", command="echo building; echo done")
    rw(
        "jobs",
        "create",
        "Daily brief",
        "--cron",
        "@daily",
        "--backend",
        "codex",
        "--prompt",
        "Prepare the brief.",
    )
    rw("jobs", "create", "Flaky", "--command", "exit 1", "--id", "flaky")
    run_once(root)
    rw("jobs", "create", "Waiting", "--command", "true", "--due-at", "1h")
    page.wait_for_selector("#jobs tbody tr[data-id=flaky] .state.failed")
    shots = os.environ.get("REPOWIRE_SCREENSHOT")  # the README's pictures: REPOWIRE_SCREENSHOT=1
    if shots:
        page.screenshot(path=str(REPO / "docs" / "dashboard.png"))
    page.click("#jobs tbody tr[data-id=demo-run] td")
    page.wait_for_selector("#detail:not([hidden])")
    assert "building" in page.inner_text("#log")
    if shots:
        page.screenshot(path=str(REPO / "docs" / "dashboard-detail.png"))
    page.set_viewport_size({"width": 390, "height": 800})  # a phone
    page.click("#close")
    assert page.is_visible("#jobs tbody tr[data-id=flaky]")
    assert read(root, "flaky")["state"] == "failed"


@needs_chromium
def test_detail_of_a_worktree_run_shows_branch_base_head_and_files_changed(root, board, page):
    from conftest import git

    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    base = git(root, "rev-parse", "HEAD")
    write_job(root, "agent-fix", command="echo a > a.txt; echo b > b.txt", workspace="worktree")
    run_once(root)
    head = read(root, "agent-fix")["worktree"]["head"]
    page.wait_for_selector("#jobs tbody tr[data-id=agent-fix] .state.succeeded")
    page.click("#jobs tbody tr[data-id=agent-fix] td")
    page.wait_for_selector("#detail:not([hidden]) dl.worktree")
    shown = page.inner_text("dl.worktree")
    for text in ("repowire/agent-fix", base, head, "files changed\n2"):
        assert text in shown, (text, shown)


@needs_chromium
def test_cost_per_run_and_per_template(root, board, page):
    rw("jobs", "create", "Brief", "--cron", "@daily", "--command", "true")
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    for job_id, cost in (("brief-20260101T000000Z", 0.0123), ("brief-20260102T000000Z", 1.5)):
        write_job(
            root,
            job_id,
            command="true",
            template="brief",
            scheduled_for=at,
            state="succeeded",
            finished_at=at,
            usage={"input_tokens": 10, "cost_usd": cost},
        )
    page.wait_for_selector("#jobs tbody tr[data-id=brief-20260101T000000Z] .state.succeeded")
    assert "$0.0123" in page.inner_text("#jobs tbody tr[data-id=brief-20260101T000000Z]")
    assert "$1.50" in page.inner_text("#jobs tbody tr[data-id=brief-20260102T000000Z]")
    page.wait_for_function(
        "document.querySelector('#templates tr[data-id=brief]').innerText.includes('$1.51')"
    )


@needs_chromium
def test_inbox_count_filter_and_opening_a_run_marks_it_seen(root, board, page):
    for job_id, at in (("seen-soon", "2026-11-26T01:00:00Z"), ("later", "2026-11-26T02:00:00Z")):
        write_job(root, job_id, command="true", state="succeeded", attempt=1, finished_at=at)
    write_job(root, "queued-one", command="true")
    page.wait_for_function("document.querySelector('#unread').textContent === '2'")
    page.click("#inbox-filter")
    page.wait_for_selector("#jobs tbody tr[data-id=later]")
    assert page.locator("#jobs tbody tr[data-id=queued-one]").count() == 0
    page.click("#jobs tbody tr[data-id=seen-soon] td")
    page.wait_for_function("document.querySelector('#unread').textContent === '1'")
    assert [r["id"] for r in json.loads(rw("inbox", "--json").stdout)["runs"]] == ["later"]
    rw("inbox", "--all")  # from the CLI: the page follows
    page.wait_for_function("document.querySelector('#unread').textContent === '0'")


def test_a_busy_port_is_one_sentence(root):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = rw_process("dashboard", "--port", str(port), cwd=root, timeout=30)
    assert done.returncode == 1 and done.stdout == ""
    assert (
        done.stderr.startswith("Error: cannot listen on 127.0.0.1:")
        and "Traceback" not in done.stderr
    )
