"""Log events that cannot be rendered still become a rendered, redacted line and an exported
record; nothing reaches the app (issue 11, section 1).

Hypothesis builds event values from hostile pieces: containers that contain themselves, objects
whose ``__repr__``/``__str__`` raise (or reveal a secret), exceptions whose ``__str__`` raises,
bytes holding a FIX password, huge strings, huge ints, (key, value) pairs with secret keys. Each
goes through structlog (default chain) and stdlib logging (as a %-argument and as ``extra``).
"""

from __future__ import annotations

import logging

import orjson
import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_trading.logs.testing import LogCapture

SECRET = "hunter2-Zq8"
pytestmark = pytest.mark.usefixtures("clean_logging")


class RaisingRepr:
    def __repr__(self) -> str:
        raise RuntimeError(f"password={SECRET}")

    __str__ = __repr__


class RevealingRepr:
    def __repr__(self) -> str:
        return f"Conn(password={SECRET})"


class RaisingStrError(Exception):
    def __str__(self) -> str:
        raise RuntimeError(SECRET)


def _self_dict() -> dict:
    d: dict = {"password": SECRET}
    d["self"] = d
    return d


def _self_list() -> list:
    items: list = [f"token={SECRET}"]
    items.append(items)
    return items


def _deep() -> list:
    value: list = [f"secret={SECRET}"]
    for _ in range(5000):
        value = [value]
    return value


LEAVES = st.sampled_from(
    [
        RaisingRepr(),
        RevealingRepr(),
        RaisingStrError(),
        f"8=FIX.4.4\x01554={SECRET}\x0110=1".encode(),
        "x" * 1_000_000 + f" password={SECRET}",
        2**200,
        ("password", SECRET),
        [("session_key", SECRET), ("user", "bob")],
        f"https://bob:{SECRET}@db.example.com/x",
        float("nan"),
        None,
    ]
).map(lambda v: v)
SHAPES = st.one_of(LEAVES, st.builds(_self_dict), st.builds(_self_list), st.builds(_deep))
EVENTS = st.dictionaries(st.sampled_from(["a", "b", "detail", "broker.pass", "payload", 7, ("k",)]), SHAPES, min_size=1, max_size=4)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(EVENTS)
def test_structlog_events_of_any_shape_are_rendered_redacted_and_exported(event):
    with LogCapture() as cap:
        log = structlog.get_logger("hostile")
        log.info("hostile", **{str(k): v for k, v in event.items()})
        try:
            raise RaisingStrError()
        except RaisingStrError:
            log.exception("hostile error", detail=event.get("a"))
        text = cap.text()
        records = cap.records()
    lines = [orjson.loads(line) for line in text.splitlines()]
    assert [line["event"] for line in lines] == ["hostile", "hostile error"]
    assert SECRET not in text
    assert [r.log_record.body for r in records] == ["hostile", "hostile error"]
    assert SECRET not in repr([(r.log_record.body, dict(r.log_record.attributes or {})) for r in records])


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(SHAPES)
def test_stdlib_arguments_of_any_shape_are_rendered_redacted_and_exported(value):
    with LogCapture() as cap:
        std = logging.getLogger("hostile.std")
        std.warning("value %s", value)
        std.warning("extra", extra={"payload": value})
        try:
            raise RaisingStrError()
        except RaisingStrError:
            std.exception("failed with %r", value)
        text = cap.text()
        records = cap.records()
    assert len(text.splitlines()) == 3 and all(orjson.loads(line) for line in text.splitlines())
    assert SECRET not in text
    assert len(records) == 3
    assert SECRET not in repr([(r.log_record.body, dict(r.log_record.attributes or {})) for r in records])
