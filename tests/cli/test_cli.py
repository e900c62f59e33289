"""The `otel-trading` command: `--version`, and `--help` on every subcommand shows help and runs nothing."""

from __future__ import annotations

import subprocess

import pytest
from support import BIN, clean_env

from otel_trading.cli import COMMANDS


def otel_trading(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "otel-trading"), *args], env=clean_env(), capture_output=True, text=True, timeout=60, cwd=cwd)


def test_version_names_the_installed_distribution():
    from importlib.metadata import version

    result = otel_trading("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"otel-trading {version('otel-trading')}"


def test_no_command_lists_every_subcommand_and_fails():
    result = otel_trading()
    assert result.returncode == 2
    for name in COMMANDS:
        assert name in result.stderr


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_shows_help_and_runs_nothing(command, tmp_path):
    result = otel_trading(command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: otel-trading {command}")
    assert list(tmp_path.iterdir()) == []  # the demo wrote no files, doctor probed nothing it printed
    assert "Effective configuration" not in result.stdout and "| Variable |" not in result.stdout


def test_unknown_option_of_a_subcommand_is_an_error_not_a_run(tmp_path):
    result = otel_trading("doctor", "--no-such-option", cwd=tmp_path)
    assert result.returncode == 2
    assert "unrecognized arguments: --no-such-option" in result.stderr
