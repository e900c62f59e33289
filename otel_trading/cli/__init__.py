"""The ``otel-trading`` command: one subcommand per module, each with its own ``--help``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from otel_trading import __version__

# subcommand -> (module whose ``main(argv) -> int`` runs it, one line of help)
COMMANDS = {
    "doctor": ("otel_trading.cli.doctor", "show the effective configuration, invalid values, and whether the OTLP endpoint answers"),
    "demo": ("otel_trading.demo", "run the simulated trading pipeline"),
    "traces": ("otel_trading.cli.traces", "show traces recorded by the local exporters"),
    "settings": ("otel_trading.cli.settings", "print the settings reference (Markdown)"),
    "audit": ("otel_trading.cli.audit", "verify the audit trail's hash chain (audit verify PATH...)"),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="otel-trading", description="OpenTelemetry for trading systems: tools.")
    parser.add_argument("--version", action="version", version=f"otel-trading {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, summary) in COMMANDS.items():
        commands.add_parser(name, help=summary, add_help=False)  # the subcommand parses (and helps) itself
    args, rest = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.main(rest) or 0)
    except BrokenPipeError:  # `otel-trading traces | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0
