"""docs/ stays true: the command line page is the program's own --help, and the file format page
names every key the parser accepts, every state and transition, and the executor's variables."""

from __future__ import annotations

import re

from cli_reference import render
from conftest import REPO

from repowire.executors.preparation import prepare_launch
from repowire.record.handle import Handle
from repowire.record.job import Worktree
from repowire.record.parsing import _JOB_KEYS, TEMPLATE_KEYS
from repowire.record.states import TRANSITIONS, State

FORMAT = (REPO / "docs" / "file-format.md").read_text()
CONFIG_KEYS = ("max_concurrency", "kill_grace", "allowed_paths", "backends", "slurm")


def test_cli_page_is_the_programs_help():
    assert (REPO / "docs" / "cli.md").read_text() == render(), "run ./dev docs"


def test_file_format_names_every_key():
    keys = [*_JOB_KEYS, *TEMPLATE_KEYS, *CONFIG_KEYS]
    keys += list(Handle._fields)
    keys += [f"worktree.{name}" for name in Worktree._fields]
    missing = [key for key in keys if f"`{key}`" not in FORMAT]
    assert not missing, missing


def test_file_format_names_every_state_and_transition():
    for state in State:
        assert f"{state.value}" in FORMAT
    picture = FORMAT.split("## States", 1)[1].split("##", 1)[0]
    for old, new in TRANSITIONS:
        assert old.value in picture and new.value in picture


def test_file_format_names_the_executors_variables(root):
    from repowire.record.job import Job
    from repowire.store.config import Config
    from repowire.store.records import Store

    launch = prepare_launch(Store(root), Config(), Job(id="j", command="true"), None)
    for name in sorted(v for v in launch.env if v.startswith("REPOWIRE_")):
        assert f"`{name}`" in FORMAT, name
    assert "`REPOWIRE_SESSION_ID`" in FORMAT


def test_readme_links_both_pages():
    readme = (REPO / "README.md").read_text()
    assert re.search(r"\(docs/file-format\.md\)", readme) and "(docs/cli.md)" in readme
