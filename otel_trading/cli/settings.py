"""``otel-trading settings``: the settings reference, generated from the table."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from otel_trading.config import markdown_table


def main(argv: Sequence[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="otel-trading settings",
        description="Print every setting (env var, configure() keyword, accepted values, default) as a Markdown table.",
    ).parse_args(argv)
    print(markdown_table())
    return 0
