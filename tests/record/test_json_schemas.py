"""The JSON Schemas: every parser key has its fragment, each fixture gets the same verdict from
the schema and from `repowire validate`, editors are pointed at them, and the pre-commit hook
runs `repowire validate` through the real pre-commit tool."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import FIXTURES, REPO, rw

from repowire.record.json_schemas import CONFIG, DEFINITION, RECORD, TEMPLATE, schema_for
from repowire.record.parsing import _JOB_KEYS, TEMPLATE_KEYS
from repowire.store.config import Config

SAMPLES = sorted((FIXTURES / "schema").glob("*/*.yaml"))
PLACES = {
    "job": ".repowire/jobs/{stem}.yaml",
    "template": ".repowire/agents/{stem}/job.yaml",
    "config": ".repowire/config.yaml",
}


def _plain(value):
    """YAML's timestamps as the ISO text an editor's schema check sees."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def test_every_key_the_parser_accepts_has_a_schema_fragment():
    assert set(_JOB_KEYS) <= set(DEFINITION) | set(RECORD)
    assert set(TEMPLATE_KEYS) <= set(TEMPLATE)
    assert set(CONFIG) == {f for f in Config.__dataclass_fields__}


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_schema_and_validate_agree(root, sample):
    kind = sample.parent.name
    target = root / PLACES[kind].format(stem=sample.stem)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(sample, target)
    by_validate = rw("validate", str(target), ok=False).exit_code == 0
    data = _plain(yaml.safe_load(sample.read_text()))
    errors = list(jsonschema.Draft202012Validator(schema_for(kind)).iter_errors(data))
    assert by_validate == (not errors), (errors[:1], rw("validate", str(target), ok=False).stderr)
    assert by_validate == sample.stem.startswith("good"), sample.name


def test_schemas_are_printed_written_and_named_in_the_files_init_makes(root):
    for kind in ("job", "template", "config"):
        printed = json.loads(rw("schema", kind).stdout)
        assert printed == json.loads((root / f".repowire/schemas/{kind}.json").read_text())
        jsonschema.Draft202012Validator.check_schema(printed)
    config = (root / ".repowire/config.yaml").read_text()
    assert config.startswith("# yaml-language-server: $schema=schemas/config.json\n")
    rw("agents", "create", "brief", "--cron", "@daily", "--command", "true")
    job = (root / ".repowire/agents/brief/job.yaml").read_text()
    assert job.startswith("# yaml-language-server: $schema=../../schemas/template.json\n")
    assert rw("validate").exit_code == 0
    assert rw("schema", "nope", ok=False).exit_code == 2


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_pre_commit_hook_runs_validate(tmp_path):
    """The real pre-commit tool installs this repository's hook and runs it on a scratch repo."""
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    scratch = tmp_path / "scratch"
    (scratch / ".repowire/jobs").mkdir(parents=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q"], cwd=scratch, check=True)
    (scratch / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {REPO}\n    rev: {head}\n    hooks:\n      - id: repowire-validate\n"
    )
    (scratch / ".repowire/jobs/good.yaml").write_text("command: 'true'\n")
    (scratch / ".repowire/jobs/bad.yaml").write_text("command: 'true'\nretries: many\n")
    env = {
        "PRE_COMMIT_HOME": str(tmp_path / "cache"),
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "HOME": str(tmp_path),
        # pre-commit pip-installs the hook: from the wheels ./dev test made, not from an index
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(Path(sys.executable).parent.parent / "wheelhouse"),
    }

    def run_hooks() -> subprocess.CompletedProcess[str]:
        subprocess.run([*git, "add", "-A"], cwd=scratch, check=True)
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", "run", "--all-files"],
            cwd=scratch,
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )

    done = run_hooks()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "bad.yaml: retries:" in done.stdout and "good.yaml:" not in done.stdout
    (scratch / ".repowire/jobs/bad.yaml").unlink()
    again = run_hooks()
    assert again.returncode == 0, again.stdout + again.stderr
