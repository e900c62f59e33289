"""The ``otel-trading`` command."""

from __future__ import annotations

import os
import signal
import sys

USAGE = """usage: otel-trading COMMAND [ARGS]

commands:
  doctor      show the effective configuration, invalid values, and whether the OTLP endpoint answers
  demo        run the simulated trading pipeline (otel-trading demo --help)
  traces      show traces recorded by the demo's local-files mode (otel-trading traces --help)
  settings    print the settings table (Markdown)
"""


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:  # `otel-trading traces | head`: the reader left; end quietly like other CLI tools
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit must not fail again
        return 128 + signal.SIGPIPE


def _run(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command == "doctor":
        from otel_trading.cli import doctor

        return doctor.run(rest)
    if command == "demo":
        from otel_trading import demo

        return demo.main(rest)
    if command == "traces":
        from otel_trading.export import localfiles

        return localfiles.show_traces(rest)
    if command == "settings":
        from otel_trading.config import markdown_table

        print(markdown_table())
        return 0
    print(USAGE, file=sys.stderr if command not in ("-h", "--help") else sys.stdout)
    return 0 if command in ("-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main())
