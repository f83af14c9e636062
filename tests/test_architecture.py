"""The package's shape holds: its layers (import-linter's contracts in pyproject.toml), a folder
that shows them, and modules named for what they hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "repowire"
# Names that say how a module was cut, not what it holds (the renovation's list).
SHAPE_NAMES = {
    "functions", "whole", "newest", "written", "rows", "values", "checks", "updates",
    "changes", "live", "local", "launch", "starting", "ahead", "standby", "helpers",
    "utils", "misc", "common_code",
}  # fmt: skip


def _lint_imports() -> str | None:
    found = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    return found or shutil.which("lint-imports")


@pytest.mark.skipif(_lint_imports() is None, reason="import-linter is not installed (./dev lint)")
def test_the_layers_hold():
    """lint-imports checks the layers and that the faces go through the api."""
    done = subprocess.run(
        [str(_lint_imports())], cwd=PACKAGE.parent, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-4000:]
    assert "0 broken" in done.stdout


def test_the_folder_shows_the_layers():
    """At most ten top-level modules beside the packages, each package one concept."""
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= 10, modules
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages >= {
        "record", "store", "watch", "templates", "backends", "worktrees", "executors",
        "notify", "runner", "api", "cli", "mcp", "dashboard",
    }  # fmt: skip
    for package in packages:
        doc = (PACKAGE / package / "__init__.py").read_text().strip()
        assert doc.startswith('"""'), f"repowire/{package}/__init__.py says what lives there"


def test_no_module_is_named_for_its_shape():
    shaped = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p.stem in SHAPE_NAMES]
    assert not shaped, shaped


def test_no_docstring_cites_a_contract_that_does_not_ship():
    cited = [str(p) for p in PACKAGE.rglob("*.py") if "SPEC" in p.read_text()]
    assert not cited, cited
