"""The structure the code promises (docs/ARCHITECTURE.md), checked on the source itself.

- model/ is the pure core: it never imports service/ or litestar.
- Tracker knowledge lives in service/trackers/: no other module names a tracker or branches on one.
- Imports form no cycle, so every module has a floor; service/errors.py sits below the webhooks.
- No module of service/ grows past about 400 lines.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.trackers import registry

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 420


def sources(*folders: str) -> Iterator[Path]:
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of the file (lazy imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_core_never_imports_the_service() -> None:
    for path in sources("model"):
        wrong = sorted(m for m in imports_of(path) if m.split(".")[0] in {"service", "litestar", "httpx"})
        assert not wrong, f"{path.relative_to(ROOT)} imports {wrong}"


def test_only_tracker_modules_name_a_tracker() -> None:
    names = "|".join(registry.names())
    literal = re.compile(rf"""["']({names})["']""")
    branch = re.compile(r"""\btracker\w*\s*[!=]=\s*["']""")
    offenders = []
    for path in sources("service", "model"):
        if path.parent == ROOT / "service" / "trackers":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if literal.search(line) or branch.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "tracker knowledge outside service/trackers/:\n" + "\n".join(offenders)


def test_imports_form_no_cycle() -> None:
    modules = {module_name(p): p for p in sources("service", "model")}
    graph = {
        name: {m for m in imports_of(path) if m in modules and m != name and not name.startswith(m + ".")}
        for name, path in modules.items()
    }
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for other in sorted(graph[name]):
            if state.get(other) == 1:
                cycle = [*trail[trail.index(other) :], other] if other in trail else [name, other]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if other not in state:
                visit(other, [*trail, other])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_the_error_table_depends_on_nothing_above_it() -> None:
    errors = imports_of(ROOT / "service" / "errors.py")
    assert not [m for m in errors if m.startswith(("service.webhooks", "service.routes", "service.app"))]


@pytest.mark.parametrize("path", list(sources("service")), ids=lambda p: str(p.relative_to(ROOT)))
def test_service_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines; split it by concern"
