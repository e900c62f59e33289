"""Per-channel log files, rotation, settings validation."""

from __future__ import annotations

import json
import logging
import os

import pytest

from otel_trading.config import load
from otel_trading.logs import AUDIT, get_logger
from otel_trading.logs.files import RotatingWriter
from otel_trading.logs.testing import LogCapture

pytestmark = pytest.mark.usefixtures("clean_logging")


def read(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_channels_route_by_logger_level_and_channel_key(tmp_path):
    env = {"OTEL_TRADING_LOG_DIR": str(tmp_path), "OTEL_TRADING_LOG_FILES": "trading=info,market_data=warning,audit=audit"}
    with LogCapture(environ=env) as cap:
        with cap.tracer.start_as_current_span("s"):
            get_logger("trading.orders").info("placed", password="p")
            get_logger("market_data.feed").info("tick")  # below the channel's level
            get_logger("market_data").warning("gap")
            get_logger("other").audit("who")
            get_logger("other").bind(channel="trading").info("tagged")
            logging.getLogger("trading.std").warning("std line")
            logging.getLogger("x").log(AUDIT, "std audit")
    trading = read(tmp_path / "trading.log")
    assert [line["event"] for line in trading] == ["placed", "tagged", "std line"]
    assert trading[0]["password"] == "***" and trading[0]["trace_id"]
    assert [line["event"] for line in read(tmp_path / "market_data.log")] == ["gap"]
    assert [line["event"] for line in read(tmp_path / "audit.log")] == ["who", "std audit"]


def test_rotation_keeps_backups(tmp_path):
    writer = RotatingWriter(str(tmp_path / "a.log"), max_bytes=100, backups=2)
    for i in range(12):
        writer.write(b'{"n":%d,"pad":"xxxxxxxxxxxxxxxxxxxx"}\n' % i)
    writer.close()
    names = sorted(os.listdir(tmp_path))
    assert names == ["a.log", "a.log.1", "a.log.2"]
    for name in names:
        assert os.path.getsize(tmp_path / name) <= 100
    newest = read(tmp_path / "a.log")[-1]["n"]
    assert newest == 11 and read(tmp_path / "a.log.1")[-1]["n"] < read(tmp_path / "a.log")[0]["n"]


def test_rotation_through_settings(tmp_path):
    env = {
        "OTEL_TRADING_LOG_DIR": str(tmp_path),
        "OTEL_TRADING_LOG_FILES": "audit=audit",
        "OTEL_TRADING_LOG_FILE_MAX_BYTES": "2048",
        "OTEL_TRADING_LOG_FILE_BACKUPS": "1",
    }
    with LogCapture(environ=env):
        for i in range(100):
            get_logger("a").audit("event", i=i)
    assert sorted(os.listdir(tmp_path)) == ["audit.log", "audit.log.1"]
    assert read(tmp_path / "audit.log")[-1]["i"] == 99


@pytest.mark.parametrize(
    "env,value,name,default",
    [
        ("OTEL_TRADING_LOG_FORMAT", "xml", "log_format", "auto"),
        ("OTEL_TRADING_LOG_LEVEL", "loud", "log_level", "info"),
        ("OTEL_TRADING_REDACT", "maybe", "redact", True),
        ("OTEL_TRADING_REDACT_HOOK", "not a hook", "redact_hook", ""),
        ("OTEL_TRADING_LOG_FILES", "trading=verbose", "log_files", {}),
        ("OTEL_TRADING_LOG_FILES", "trading", "log_files", {}),
        ("OTEL_TRADING_LOG_FILE_MAX_BYTES", "10", "log_file_max_bytes", 50_000_000),
        ("OTEL_TRADING_LOG_FILE_BACKUPS", "-1", "log_file_backups", 10),
    ],
)
def test_bad_env_values_get_a_clear_message_and_the_default(capsys, env, value, name, default):
    settings = load({env: value})
    assert getattr(settings, name) == default
    err = capsys.readouterr().err
    assert f"{env}='{value}' is invalid" in err and "using default" in err


def test_good_env_values_parse():
    s = load({"OTEL_TRADING_LOG_FORMAT": "Console", "OTEL_TRADING_LOG_LEVEL": "AUDIT", "OTEL_TRADING_REDACT": "off",
              "OTEL_TRADING_LOG_FILES": "trading=info, audit=AUDIT", "OTEL_TRADING_REDACT_KEYS": "a, b"})
    assert (s.log_format, s.log_level, s.redact) == ("console", "audit", False)
    assert s.log_files == {"trading": "info", "audit": "audit"} and s.redact_keys == ("a", "b")


def test_bad_values_still_log_with_defaults(capsys):
    with LogCapture(environ={"OTEL_TRADING_LOG_LEVEL": "loud", "OTEL_TRADING_LOG_FORMAT": "xml"}) as cap:
        get_logger("x").debug("hidden")
        get_logger("x").info("shown")
    assert [line["event"] for line in cap.lines()] == ["shown"]
