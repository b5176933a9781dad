"""The design's boundaries, checked on the source: strategies/ and risk/ stay pure."""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {"numpy", "pandas", "strategies", "risk", "__future__"}
JOURNAL_ONLY = {"structlog"}
CLOCK_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("date", "today"),
    ("time", "time"),
    ("time", "monotonic"),
    ("pd", "now"),
    ("Timestamp", "now"),
}


def pure_modules() -> list[Path]:
    return sorted([*ROOT.joinpath("strategies").glob("*.py"), *ROOT.joinpath("risk").glob("*.py")])


def imported_roots(tree: ast.AST) -> set[str]:
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", pure_modules(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_pure_modules_import_only_the_standard_library_numpy_and_pandas(path):
    tree = ast.parse(path.read_text())
    allowed = ALLOWED | (JOURNAL_ONLY if path.name == "journal.py" else set())
    foreign = {
        r for r in imported_roots(tree) if r not in allowed and r not in sys.stdlib_module_names
    }
    assert not foreign, f"{path.name} imports {sorted(foreign)}"
    forbidden_stdlib = {"sqlite3", "socket", "subprocess", "urllib", "http", "requests"}
    assert not imported_roots(tree) & forbidden_stdlib


@pytest.mark.parametrize("path", pure_modules(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_pure_modules_never_read_the_clock(path):
    tree = ast.parse(path.read_text())
    calls = {
        (node.func.value.id, node.func.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
    }
    assert not calls & CLOCK_CALLS, f"{path.name} reads the clock: {calls & CLOCK_CALLS}"


def test_only_agent_may_import_exchange_clients():
    for path in [*ROOT.joinpath("strategies").rglob("*.py"), *ROOT.joinpath("risk").rglob("*.py")]:
        assert not imported_roots(ast.parse(path.read_text())) & {"ccxt", "alpaca"}, path
