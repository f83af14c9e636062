"""`repowire validate` and the problems it reports: every one, with paths from the root."""

from __future__ import annotations

from conftest import rw
from runner_helpers import in_process_runner


def test_a_problem_is_shown_with_paths_relative_to_the_root(root):
    (root / ".repowire/jobs/broken.yaml").write_text("retries: many\ncommand: 'true'\n")
    (root / ".repowire/agents/bad").mkdir()
    (root / ".repowire/agents/bad/job.yaml").write_text("cron: nope\ncommand: 'true'\n")
    listing = rw("jobs", "list").stdout
    assert "retries: expected a whole number" in listing and "not a valid cron" in listing
    assert str(root) not in listing
    problems = rw("validate", ok=False).stderr
    assert ".repowire/jobs/broken.yaml: retries:" in problems and str(root) not in problems
    runner, out = in_process_runner(root)
    runner.step()
    assert "skipped .repowire/jobs/broken.yaml: retries:" in out.getvalue()


def test_every_problem_duplicate_keys_and_prompt_files(root):
    (root / ".repowire/jobs/two.yaml").write_text("retries: many\ntimeout: soon\ncommand: 'true'\n")
    (root / ".repowire/jobs/dup.yaml").write_text("command: 'true'\ncommand: 'rm -rf x'\n")
    (root / ".repowire/jobs/escape.yaml").write_text(
        "backend: claude\nprompt_file: ../../../etc/passwd\n"
    )
    problems = rw("validate", ok=False).stderr.splitlines()
    assert any("two.yaml: retries:" in p for p in problems)
    assert any("two.yaml: timeout:" in p for p in problems)
    assert any("dup.yaml" in p and "given twice" in p for p in problems)
    assert any("escape.yaml" in p and "must stay inside" in p for p in problems)


def test_a_job_after_itself_is_reported_as_a_cycle(root):
    """A hand-written `after: [self]` is a cycle, as a two-job cycle is: it never runs."""
    (root / ".repowire/jobs/selfie.yaml").write_text("command: 'true'\nafter: [selfie]\n")
    problems = rw("validate", ok=False).stderr
    assert ".repowire/jobs/selfie.yaml: after: a cycle, selfie -> selfie" in problems


def test_a_worker_folder_with_only_agents_md_is_no_broken_template(root):
    """`agents create NAME` without --cron prepares a folder for one-off jobs: validate (and
    so the pre-commit hook) checks nothing there, whether it looks at everything, at the
    folder, or at the AGENTS.md a commit changed (it was read as a job record)."""
    assert rw("agents", "create", "prep", "--backend", "codex").exit_code == 0
    folder = root / ".repowire/agents/prep"
    assert (folder / "AGENTS.md").exists() and not (folder / "job.yaml").exists()
    for args in ([], [str(folder)], [str(folder / "AGENTS.md")]):
        done = rw("validate", *args)
        assert done.exit_code == 0, (args, done.output)
