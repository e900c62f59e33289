"""Redaction: keys, values, nested, exceptions, rendered and exported copies, spans, configuration."""

from __future__ import annotations

import io
import logging
import sys
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.trace import Link

from otel_trading.logs import get_logger
from otel_trading.logs.testing import LogCapture
from otel_trading.redaction import MASK, Redactor

TOKEN = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
CARD = "4111 1111 1111 1111"

pytestmark = pytest.mark.usefixtures("clean_logging")


@pytest.mark.parametrize(
    "key",
    ["password", "db_password", "api_key", "X-Api-Key", "apiKey", "secret", "client_secret", "token", "access_token",
     "Authorization", "cookie", "Set-Cookie", "account_number", "accountNumber", "card_number", "cvv", "iban", "pin", "pwd"],
)
def test_secret_keys_are_masked(key):
    assert Redactor().redact_event({key: "value-1234"})[key] == MASK


@pytest.mark.parametrize("key", ["symbol", "order_id", "qty", "price", "strategy", "venue", "account_alias", "pinned", "spin", "author"])
def test_ordinary_keys_are_kept(key):
    assert Redactor().redact_event({key: "AAPL"})[key] == "AAPL"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("login failed password=hunter2 for bob", "login failed password=*** for bob"),
        ("Authorization: Bearer abcdefghijklmnop", "Authorization: ***"),
        ("call with bearer abcdefghijklmnop", "call with bearer ***"),
        (f"key {TOKEN} used", "key *** used"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl", "jwt ***"),
        (f"card {CARD} charged", "card ****1111 charged"),
        ("iban DE89370400440532013000 paid", "iban *** paid"),
        ("AKIAIOSFODNN7EXAMPLE", "***"),
        ('{"api_key": "abc123"}', '{"api_key": "***"}'),
    ],
)
def test_secret_values_are_masked(text, expected):
    assert Redactor().redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    ["order placed", "ord-000123", "AAPL", "price: 187.25", "2026-11-23T13:25:10.123456Z", "id 1234567890123",
     "4bf92f3577b34da6a3ce929d0e0e4736", "qty=100 side=buy"],
)
def test_ordinary_values_are_kept(text):
    assert Redactor().redact_text(text) is text


def test_nested_structures_and_numbers():
    event = {"req": {"headers": {"Authorization": "x"}, "items": [{"secret": 1}, "token=abc123", 7]}, "acct": 4111111111111111, "qty": 5}
    out = Redactor().redact_event(event)
    assert out["req"]["headers"]["Authorization"] == MASK
    assert out["req"]["items"] == [{"secret": MASK}, "token=***", 7]
    assert out["acct"] == "****1111" and out["qty"] == 5


def test_rendered_and_exported_copies_are_redacted_structlog():
    with LogCapture() as cap:
        with cap.tracer.start_as_current_span("s"):
            log = get_logger("sec")
            log.info(f"using {TOKEN}", password="hunter2", nested={"api_key": "k"}, note=f"card {CARD}")
            try:
                raise PermissionError("rejected token=abcdef123456")
            except PermissionError:
                log.exception("auth failed")
    (line, err) = cap.lines()
    assert line["password"] == MASK and line["nested"] == {"api_key": MASK}
    assert line["event"] == "using ***" and line["note"] == "card ****1111"
    assert err["exc_message"] == "rejected token=***" and "abcdef123456" not in err["stack"]
    rec, rec_err = cap.records()
    attrs = dict(rec.log_record.attributes)
    assert rec.log_record.body == "using ***"
    assert attrs["password"] == MASK and attrs["nested"] == {"api_key": MASK} and attrs["note"] == "card ****1111"
    err_attrs = dict(rec_err.log_record.attributes)
    assert err_attrs["exception.message"] == "rejected token=***"
    assert "abcdef123456" not in err_attrs["exception.stacktrace"]
    assert TOKEN not in cap.text() and "hunter2" not in cap.text()


def test_rendered_and_exported_copies_are_redacted_stdlib():
    with LogCapture() as cap:
        log = logging.getLogger("sec.std")
        log.warning("login password=%s", "hunter2", extra={"api_key": "k", "ok": "fine"})
        try:
            raise RuntimeError(f"bad {TOKEN}")
        except RuntimeError:
            log.exception("boom")
    line, err = cap.lines()
    assert line["event"] == "login password=***" and line["api_key"] == MASK and line["ok"] == "fine"
    assert err["exc_message"] == "bad ***" and TOKEN not in err["stack"]
    rec, rec_err = cap.records()
    assert rec.log_record.body == "login password=***"
    assert rec.log_record.attributes["api_key"] == MASK
    assert TOKEN not in rec_err.log_record.attributes["exception.stacktrace"]
    assert rec_err.log_record.attributes["exception.message"] == "bad ***"


def test_exported_span_attributes_and_events_are_redacted():
    with LogCapture() as cap:
        with cap.tracer.start_as_current_span("s", attributes={"password": "p", "http.url": "https://x/?token=abc123def"}) as span:
            span.set_attribute("trading.symbol", "AAPL")
            span.add_event("login", {"authorization": "Basic dXNlcjpwYXNz"})
            try:
                raise ValueError(f"key {TOKEN}")
            except ValueError as exc:
                span.record_exception(exc)
    (exported,) = cap.spans()
    assert exported.attributes["password"] == MASK
    assert exported.attributes["http.url"] == "https://x/?token=***"
    assert exported.attributes["trading.symbol"] == "AAPL"
    assert exported.events[0].attributes["authorization"] == MASK
    assert TOKEN not in exported.events[1].attributes["exception.message"]
    assert TOKEN not in exported.events[1].attributes["exception.stacktrace"]


def test_exported_span_link_attributes_are_redacted():
    with LogCapture() as cap:
        with cap.tracer.start_as_current_span("order") as order:
            pass
        link = Link(order.get_span_context(), {"api_key": "k-123", "note": f"token={TOKEN}", "why": "fill"})
        with cap.tracer.start_as_current_span("fill", links=[link]):
            pass
    (linked,) = cap.spans()[1].links
    assert linked.attributes["api_key"] == MASK
    assert TOKEN not in linked.attributes["note"]
    assert linked.attributes["why"] == "fill"


def test_redaction_can_be_turned_off():
    with LogCapture(redact=False) as cap:
        with cap.tracer.start_as_current_span("s", attributes={"password": "p"}):
            get_logger("x").info("x", password="hunter2")
    assert cap.lines()[0]["password"] == "hunter2"
    assert cap.records()[0].log_record.attributes["password"] == "hunter2"
    assert cap.spans()[0].attributes["password"] == "p"


def test_deny_allow_lists_and_hook_by_settings(monkeypatch):
    hooks = types.ModuleType("otel_trading_test_hooks")

    def hook(mapping):
        if "user" in mapping:
            mapping["user"] = "u***"

    hooks.hook = hook
    monkeypatch.setitem(sys.modules, "otel_trading_test_hooks", hooks)
    with LogCapture(redact_keys="trader_name", redact_allow="token_bucket", redact_hook="otel_trading_test_hooks:hook") as cap:
        with cap.tracer.start_as_current_span("s", attributes={"user": "bob"}):
            get_logger("x").info("x", trader_name="Alice", token_bucket=5, user="bob", token="t")
    line = cap.lines()[0]
    assert line["trader_name"] == MASK and line["token_bucket"] == 5 and line["user"] == "u***" and line["token"] == MASK
    assert cap.records()[0].log_record.attributes["user"] == "u***"
    assert cap.spans()[0].attributes["user"] == "u***"


def test_deny_allow_and_hook_by_env(monkeypatch):
    hooks = types.ModuleType("otel_trading_test_hooks2")
    hooks.hook = lambda mapping: mapping.update({"desk": "hidden"}) if "desk" in mapping else None
    monkeypatch.setitem(sys.modules, "otel_trading_test_hooks2", hooks)
    env = {"OTEL_TRADING_REDACT_KEYS": "nickname", "OTEL_TRADING_REDACT_ALLOW": "cookie_count", "OTEL_TRADING_REDACT_HOOK": "otel_trading_test_hooks2:hook"}
    with LogCapture(environ=env) as cap:
        get_logger("x").info("x", nickname="n", cookie_count=2, desk="d")
    line = cap.lines()[0]
    assert (line["nickname"], line["cookie_count"], line["desk"]) == (MASK, 2, "hidden")


def test_hook_that_cannot_load_or_raises_is_reported_and_skipped(capsys):
    with LogCapture(redact_hook="no_such_module_xyz:hook") as cap:
        get_logger("x").info("x", password="p")
    assert "OTEL_TRADING_REDACT_HOOK" in capsys.readouterr().err
    assert cap.lines()[0]["password"] == MASK

    def broken(mapping):
        raise RuntimeError("oops")

    redactor = Redactor(hook=broken)
    assert redactor.redact_event({"password": "p"}) == {"password": MASK}
    assert "raised" in capsys.readouterr().err


def test_configure_keywords_reach_redaction():
    from otel_trading.config import load

    settings = load({}, redact_keys=("desk_code",), redact_allow=("secret_sauce_version",))
    assert settings.redact_keys == ("desk_code",)
    with LogCapture(redact_keys=("desk_code",), redact_allow=("secret_sauce_version",)) as cap:
        get_logger("x").info("x", desk_code="D1", secret_sauce_version=3)
    line = cap.lines()[0]
    assert line["desk_code"] == MASK and line["secret_sauce_version"] == 3


def test_optional_log_record_processor_for_direct_api_records():
    from opentelemetry._logs import LogRecord
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import (
        InMemoryLogRecordExporter,
        SimpleLogRecordProcessor,
    )

    from otel_trading.redaction import RedactingLogRecordProcessor

    provider = LoggerProvider(shutdown_on_exit=False)
    memory = InMemoryLogRecordExporter()
    provider.add_log_record_processor(RedactingLogRecordProcessor())
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    provider.get_logger("direct").emit(LogRecord(body=f"key {TOKEN}", attributes={"password": "p", "n": 1}))
    (record,) = memory.get_finished_logs()
    assert record.log_record.body == "key ***"
    assert dict(record.log_record.attributes) == {"password": MASK, "n": 1}


def hook_for_configure(mapping):
    if "desk" in mapping:
        mapping["desk"] = "hidden"


def test_configure_accepts_a_module_level_hook_function():
    with LogCapture(redact_hook=hook_for_configure) as cap:
        get_logger("x").info("x", desk="d1")
    assert cap.lines()[0]["desk"] == "hidden"
    assert cap.settings.redact_hook == f"{__name__}:hook_for_configure"


def test_a_deny_key_that_matches_the_message_key_masks_secrets_in_it_not_the_whole_message():
    redactor = Redactor(deny=["e"])  # a careless OTEL_TRADING_REDACT_KEYS: every key with an "e"
    out = redactor.redact_event({"event": "order sent password=hunter2", "venue": "XNAS"})
    assert out["event"].startswith("order sent") and "hunter2" not in out["event"]
    assert out["venue"] == "***"


def test_the_rules_are_built_once_and_shared_by_the_providers_and_logs_install(monkeypatch):
    from opentelemetry.sdk._logs import LoggerProvider

    from otel_trading import config, logs, redaction

    hooks = types.ModuleType("otel_trading_test_hooks3")
    hooks.hook = lambda mapping: None
    monkeypatch.setitem(sys.modules, "otel_trading_test_hooks3", hooks)
    built = []
    monkeypatch.setattr(redaction, "Redactor", lambda *a, **k: built.append(a) or Redactor(*a, **k))
    settings = config.load({"OTEL_TRADING_REDACT_HOOK": "otel_trading_test_hooks3:hook", "OTEL_TRADING_REDACT_KEYS": "desk_code"})
    try:
        shared = redaction.configure_redaction_from(settings)  # what the providers do first
        logs.install(settings, LoggerProvider(), stream=io.StringIO())  # and then logs.install, which also works alone
        assert len(built) == 1 and redaction.get_redactor() is shared and shared.hook is hooks.hook
        assert shared.redact_event({"desk_code": "D1"})["desk_code"] == MASK
    finally:
        logs.uninstall()


@pytest.mark.slow
def test_extra_deny_keys_apply_to_resource_attributes(otlp):
    from support import otlp_env, run_python

    app = "from opentelemetry import trace\nwith trace.get_tracer('t').start_as_current_span('one'):\n    pass\n"
    env = otlp_env(otlp, OTEL_TRADING_REDACT_KEYS="desk_code", OTEL_RESOURCE_ATTRIBUTES="desk_code=D-77,region=eu")
    assert run_python(app, env).returncode == 0
    (span,) = otlp.wait_for(lambda r: r.spans())
    assert span.resource["desk_code"] == MASK and span.resource["region"] == "eu"


# pieces the value scanner's rules are made of (key words, token prefixes, digit runs, separators), so that
# generated strings come close to every rule
_PIECES = [
    "password", "Passwd", "pwd", "secret", "client_secret", "TOKEN", "access-token", "api_key", "ApiKey", "private key",
    "session_id", "sessionid", "account_no", "card-number", "Signature", "sig", "sign", "nonce", "credential", "key",
    "Authorization", "auth", "cookie", "Bearer ", "basic ", "eyJhbGciOi.eyJzdWIiOi.sig", "sk_live_", "pk_test_", "AKIA",
    "ghp_", "xoxb-", "-----BEGIN RSA PRIVATE KEY-----", "4111 1111 1111 1111", "4111-1111-1111-1111", "1234567890123",
    "DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "+44 20 7946 0958", "(212) 555-0100", "212-555-0100",
    ":", ": ", "'", '"', ",", " ", "-", "_", ".", "/", "(", ")", "[", "]", "main", "GCC", "2026", "07:35:25", "12", "9", "x",
]


@given(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=12).map("".join))
@settings(max_examples=400, deadline=None)
def test_strings_skipped_without_a_scan_are_those_the_scan_leaves_alone(text):
    from otel_trading.redaction import _may_hold_secret, _value_pattern

    text = text.replace("=", "").replace("@", "")  # with '=' or '@' the scan always runs
    if not _may_hold_secret(text):
        assert _value_pattern().search(text) is None, text


@pytest.mark.parametrize(
    "text",
    [
        "password: hunter2xyz",
        "Authorization: Bearer abcdefgh12345",
        "card: 4111 1111 1111 1111",
        "iban: DE89 3704 0044 0532 0130 00",
        "call me at: +44 20 7946 0958",
        "jwt: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
        "stripe: sk_live_abcdefghijkl",
        "('password', 'hunter2xyz')",  # a key/value pair printed as a tuple: no ':' nor digits
        "['api_key', 'abcdefghijkl']",
    ],
)
def test_secrets_the_prefilter_must_let_through_are_masked(text):
    assert Redactor().redact_text(text) != text


def test_the_resource_a_process_starts_with_compiles_no_value_scanner():
    from otel_trading.redaction import _value_pattern

    _value_pattern.cache_clear()
    resource = {
        "process.runtime.description": sys.version,
        "service.instance.id": "dc79bf47-712f-4ac0-91bb-8366c5be74c0",  # 4 digits in a row: a full scan before
        "process.executable.path": "/srv/bots/venv-2026/bin/python3.11",
    }
    assert Redactor().redact_mapping(resource) == resource
    assert _value_pattern.cache_info().currsize == 0
