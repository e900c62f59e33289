"""The public API: every name `otel_trading` exports (and the docs import from it) resolves, type
checkers see the same names, the package imports nothing of the SDK, and no module imports in a cycle."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import otel_trading
from otel_trading.config import SETTINGS, loader
from otel_trading.config.typed import Keywords, SettingsFields

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "otel_trading"


def test_every_exported_name_resolves():
    for name in otel_trading.__all__:
        assert getattr(otel_trading, name) is not None, name


def test_type_checkers_see_exactly_the_lazy_names():
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    seen = {alias.asname: node.module for node in block.body for alias in node.names}
    assert seen == otel_trading._EXPORTS


def test_names_the_docs_import_from_the_package_exist():
    texts = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    names = set()
    for path in texts:
        text = path.read_text()
        for group in re.findall(r"from otel_trading import (\([^)]*\)|[\w, ]+)", text):
            names |= {n.strip() for n in re.split(r"[,\s()]+", group) if n.strip()}
        names |= set(re.findall(r"\botel_trading\.([A-Za-z_]\w*)\(", text))
    modules = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    missing = sorted(n for n in names - modules if not hasattr(otel_trading, n))
    assert not missing, f"the docs import these from otel_trading, which has no such names: {missing}"


def test_typed_views_are_generated_from_the_table():
    assert (PACKAGE / "config" / "typed.py").read_text() == loader.typed_source(), "run: python -m otel_trading.config"
    assert list(SettingsFields.__annotations__) == [s.name for s in SETTINGS]
    assert list(Keywords.__annotations__) == [s.name for s in SETTINGS]


def test_importing_the_package_loads_no_sdk_module():
    code = "import sys, otel_trading; print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Modules of the package that ``path`` imports at module level (function-level imports are lazy by design)."""
    found = set()
    for node in ast.parse(path.read_text()).body:  # top level only: TYPE_CHECKING blocks do not run
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("otel_trading"):
            submodules = {f"{node.module}.{a.name}" for a in node.names} & modules  # `from pkg import module`
            found |= submodules if len(submodules) == len(node.names) else submodules | {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("otel_trading")}
    return found


def test_no_import_cycles():
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph = {name: {m for m in _imports(path, set(modules)) if m in modules and m != name} for name, path in modules.items()}

    def cycle_from(start: str) -> list[str] | None:
        stack, path, seen = [(start, iter(sorted(graph[start])))], [start], {start}
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
            elif child == start:
                return [*path, start]
            elif child not in seen:
                seen.add(child)
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)
        return None

    cycles = [c for c in map(cycle_from, sorted(graph)) if c]
    assert not cycles, f"import cycles: {cycles[:3]}"
