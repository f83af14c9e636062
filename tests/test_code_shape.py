"""The package's shape holds: short functions and modules, no import cycle, one door for faces."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "repowire"
FACES = ("cli", "mcp_server", "dashboard")
# What a face may import from the package: the API, and plain values it prints or names.
FACE_MAY_IMPORT = {"api", "functions", "errors", "model", "values", "clock", "cli", "dashboard"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """The package modules that module `name` imports (at its top or inside functions)."""
    path = MODULES[name]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = ".".join(package[: len(package) - node.level + 1] + [node.module or ""])
            base = base.rstrip(".")
            subs = {f"{base}.{a.name}" for a in node.names} & MODULES.keys()
            out |= subs or ({base} & MODULES.keys())
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("repowire"):
            out |= {str(node.module)} & MODULES.keys()
    out.discard(name)
    return out


def test_no_function_over_40_lines():
    long = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > 40:
                    long.append(f"{name}.{node.name}: {size} lines")
    assert not long, long


def test_no_import_cycle():
    graph = {name: _imports(name) for name in MODULES}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph[start]:
            if nxt == goal or (nxt not in seen and (seen.add(nxt) or reaches(nxt, goal, seen))):
                return True
        return False

    cycles = sorted(name for name in graph if reaches(name, name, set()))
    assert not cycles, f"modules on an import cycle: {cycles}"


def test_faces_go_through_the_api_only():
    reaching = []
    for name in MODULES:
        top = name.split(".")[1] if "." in name else ""
        if top not in FACES:
            continue
        for target in _imports(name):
            inner = target.split(".")[1]
            if inner not in FACE_MAY_IMPORT and inner not in FACES:
                reaching.append(f"{name} imports {target}")
    assert not reaching, reaching


def test_no_docstring_cites_a_contract_that_does_not_ship():
    cited = [n for n, p in MODULES.items() if "SPEC" in p.read_text()]
    assert not cited, cited
