"""The documentation site: it builds strictly, its generated reference is complete, the README links resolve."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from otel_trading import config
from otel_trading.trading import attributes

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"


def load_hook() -> ModuleType:
    """docs/hooks.py, the module `mkdocs build` runs (it is not part of the package)."""
    spec = importlib.util.spec_from_file_location("otel_trading_docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_page_gets_the_settings_table_with_every_setting():
    """The reference is the table itself (was: a copy pasted in the README that could go stale)."""
    hook = load_hook()
    page = (DOCS / "configuration.md").read_text()
    assert hook.marker("settings-table") in page, "configuration.md lost the settings-table marker"
    built = hook.expand(page)
    assert config.markdown_table() in built
    documented = set(re.findall(r"^\| `(OTEL_[A-Z0-9_]+)` \|", built, flags=re.MULTILINE))
    missing = {s.env for s in config.SETTINGS} - documented
    assert not missing, f"settings missing from the generated reference: {sorted(missing)}"
    assert any(s.env.startswith("OTEL_TRADING_") for s in config.SETTINGS)


def test_tracing_page_gets_the_attribute_table():
    hook = load_hook()
    page = (DOCS / "tracing.md").read_text()
    assert hook.marker("attributes-table") in page, "tracing.md lost the attributes-table marker"
    built = hook.expand(page)
    assert attributes.markdown_table() in built and hook.marker("attributes-table") not in built


def test_readme_links_point_at_existing_docs_pages():
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\((docs/[^)#\s]+)(?:#[^)]*)?\)", readme)
    assert targets, "the README links into docs/"
    missing = [t for t in targets if not (ROOT / t).is_file()]
    assert not missing, f"README links to docs pages that do not exist: {missing}"


def test_every_docs_page_is_in_the_nav():
    config = (ROOT / "mkdocs.yml").read_text()
    pages = {p.name for p in DOCS.glob("*.md")}
    in_nav = set(re.findall(r":\s*([\w-]+\.md)\s*$", config, flags=re.MULTILINE))
    assert pages == in_nav, f"pages not in the nav: {sorted(pages - in_nav)}; nav entries without a page: {sorted(in_nav - pages)}"


def test_docs_build_strictly(tmp_path):
    """`mkdocs build --strict`: a broken link, a missing page or an unknown anchor fails the build."""
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("mkdocs and mkdocs-material are required in CI: pip install -e '.[test,docs]'")
        pytest.skip("the docs extra is not installed: pip install -e '.[docs]'")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    configuration = (tmp_path / "site" / "configuration" / "index.html").read_text()
    assert "OTEL_TRADING_LOCAL_DIR" in configuration and "generated: settings-table" not in configuration


def test_every_test_named_beside_a_guarantee_exists():
    """docs/reliability.md puts each guarantee beside its test: a moved or renamed test must update it."""
    page = (DOCS / "reliability.md").read_text()
    refs = re.findall(r"`([\w/]*\.py)?(?:::(test_\w+))?`", page)
    missing, current = [], None
    for path, name in refs:
        if path:
            current = ROOT / "tests" / path
            if not current.is_file():
                missing.append(path)
                continue
        if name and (current is None or f"def {name}(" not in current.read_text()):
            missing.append(f"{current}::{name}")
    assert sum(1 for path, name in refs if name) >= 20, "the page names the tests that prove each guarantee"
    assert not missing, f"docs/reliability.md names tests that do not exist: {missing}"
