"""MkDocs hook: the reference tables are generated from the code at build time.

A page holds a marker such as ``<!-- generated: settings-table -->``; the build
replaces it with the table the package renders, so the docs cannot go stale.
``tests/docs/test_docs.py`` checks the same expansion.
"""

from __future__ import annotations

from typing import Any, Callable

from otel_trading import config
from otel_trading.trading import attributes

TABLES: dict[str, Callable[[], str]] = {
    "settings-table": config.markdown_table,
    "attributes-table": attributes.markdown_table,
}


def marker(name: str) -> str:
    """The text a page writes where the generated table ``name`` goes."""
    return f"<!-- generated: {name} -->"


def expand(markdown: str) -> str:
    """``markdown`` with every marker replaced by its generated table."""
    for name, render in TABLES.items():
        markdown = markdown.replace(marker(name), render())
    return markdown


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    return expand(markdown)
