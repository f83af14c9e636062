"""The package uses only the public, documented API of its dependencies: a private module or
name (one with a leading underscore), or a module its library does not document, fails here."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "repowire"
# Modules that their libraries ship without documenting them as an interface; each was, or
# would be, a reason for a fresh install to break (watchdog changed inotify_c in 7.0, 7.1 and
# 7.1.1).
UNDOCUMENTED = {
    "watchdog.observers.inotify_c",
    "watchdog.observers.inotify_buffer",
    "watchdog.observers.inotify_move_event_grouper",
    "watchdog.observers.fsevents2",
    "watchdog.utils",
    "mcp.server.lowlevel",
    "starlette._utils",
    "filelock._core",
}


def _external_imports(tree: ast.AST) -> list[tuple[int, str, str]]:
    """(line, module, name) of each import of a module outside the package and the standard
    library; name is "" for a plain import."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found += [(node.lineno, node.module, alias.name) for alias in node.names]
    top = {"repowire", *sys.stdlib_module_names}
    return [item for item in found if item[1].split(".")[0] not in top]


def private_uses(source: str) -> list[str]:
    """What the source imports that is not a dependency's public API."""
    bad = []
    for line, module, name in _external_imports(ast.parse(source)):
        parts = module.split(".")
        private = any(part.startswith("_") for part in parts) or name.startswith("_")
        undocumented = any(".".join(parts[: n + 1]) in UNDOCUMENTED for n in range(len(parts)))
        if private or undocumented:
            bad.append(f"line {line}: {module}{'.' + name if name else ''}")
    return bad


def test_the_package_imports_no_private_module_of_a_dependency():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        bad += [
            f"{path.relative_to(PACKAGE.parent)} {use}" for use in private_uses(path.read_text())
        ]
    assert not bad, bad


def test_the_check_catches_each_kind_of_private_import():
    assert private_uses("from watchdog.observers.inotify_c import InotifyFD") != []
    assert private_uses("import watchdog.utils.delayed_queue") != []
    assert private_uses("from filelock._core import Timeout") != []
    assert private_uses("from click import _compat") != []
    assert private_uses("from watchdog.observers import Observer") == []
    assert private_uses("import _thread\nfrom os import _exit") == []  # the standard library
    assert private_uses("from repowire._x import y") == []  # the package's own
