"""Redaction of secrets in log events, exported log records and span attributes.

On by default. Two checks:

* **keys** that look secret (``password``, ``token``, ``api_key``, ``secret``,
  ``authorization``, ``cookie``, ``account_number``, ``card_number``, ...): the
  whole value is replaced by ``***``. Keys are normalised (lowercase, only
  letters and digits) and the verdict is cached per key, so a known key costs
  one dict lookup.
* **values** that look secret, inside any string: ``key=value`` / ``key: value``
  pairs whose key looks secret, ``Bearer``/``Basic`` credentials, JWTs, well
  known API key shapes (``sk_live_...``, ``AKIA...``, ``ghp_...``, ``xox?-...``),
  PEM private keys, card numbers (13-19 digits passing the Luhn check, last four
  kept) and IBANs (passing the mod-97 check). A cheap prefilter (length, ``=``
  or ``:``, digit runs, token prefixes) keeps ordinary short values off the
  regular expression.

Nested dicts, lists and tuples are walked. Exceptions are formatted before
redaction, so a token in an exception message is masked in ``exc_message`` and
``stack`` and in the OTLP ``exception.*`` attributes.

Configuration (env or ``configure()``): ``OTEL_TRADING_REDACT`` (on/off),
``OTEL_TRADING_REDACT_KEYS`` (extra secret key names, matched as substrings of
the normalised key), ``OTEL_TRADING_REDACT_ALLOW`` (key names never masked),
``OTEL_TRADING_REDACT_HOOK`` (``module:function`` called as ``hook(mapping)``
on every event dict and span attribute dict after the built-in rules; it may
change the mapping in place).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from otel_trading.report import report_once

MASK = "***"

# normalised substrings: a key containing one of these is secret
DENY_SUBSTRINGS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "signingkey",
    "authorization",
    "credential",
    "cookie",
    "accountnumber",
    "accountno",
    "acctnumber",
    "acctno",
    "accountnum",
    "cardnumber",
    "creditcard",
    "ccnumber",
    "cvv",
    "cvc",
    "iban",
    "routingnumber",
    "signature",
    "bearer",
    "jwt",
)
# normalised keys secret only as a whole word (too short to match inside other words)
DENY_EXACT = frozenset({"pwd", "pin", "pan", "ssn", "otp", "auth", "key", "pass", "sid", "xapikey"})
# keys otel-trading writes itself: never scanned
SKIP_KEYS = frozenset({"timestamp", "level", "logger", "trace_id", "span_id", "service", "correlation_id", "event_name"})

_KV_KEYS = r"password|passwd|passphrase|pwd|secret|client[-_]?secret|token|access[-_]?token|refresh[-_]?token|api[-_]?key|apikey|access[-_]?key|private[-_]?key|authorization|auth|cookie|session[-_]?id|account[-_]?(?:number|no)|card[-_]?number"
_VALUE_RE = re.compile(
    r"(?P<kv>(?i:\b(?:[a-z0-9]+[-_])*(?:" + _KV_KEYS + r"))[\"']?\s*[:=]\s*[\"']?)(?P<kvv>(?:(?i:bearer|basic)\s+)?[^\s\"',;&)}\]]+)"
    r"|(?P<auth>(?i:\b(?:bearer|basic|token))\s+)(?P<authv>[A-Za-z0-9._~+/=-]{8,})"
    r"|(?P<jwt>\beyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*)"
    r"|(?P<apikey>\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{8,}|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{20,}|\bxox[abprs]-[A-Za-z0-9-]{10,})"
    r"|(?P<pem>-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$))"
    r"|(?P<card>(?<![\w.-])(?:\d[ -]?){12,18}\d(?![\w.]))"
    r"|(?P<iban>\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b)"
)
# cheap test for strings of 13+ characters without '=' or ':' before the full scan
_LONG_PREFILTER = re.compile(r"\d{4}|eyJ|AKIA|_live_|_test_|gh[pousr]_|xox[abprs]-|[Bb]earer |[Bb]asic |[Tt]oken |PRIVATE KEY")
_NORMALISE = re.compile(r"[^a-z0-9]")


def _luhn(digits: str) -> bool:
    total, odd = 0, False
    for ch in reversed(digits):
        d = ord(ch) - 48
        if odd:
            d *= 2
            if d > 9:
                d -= 9
        total += d
        odd = not odd
    return total % 10 == 0


def _iban_ok(text: str) -> bool:
    s = text.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    s = s[4:] + s[:4]
    try:
        return int("".join(str(int(c, 36)) for c in s)) % 97 == 1
    except ValueError:
        return False


def _replace(match: re.Match) -> str:
    kind = match.lastgroup
    if kind == "kvv":
        return match.group("kv") + MASK
    if kind == "authv":
        return match.group("auth") + MASK
    text = match.group(0)
    if kind == "card":
        digits = text.replace(" ", "").replace("-", "")
        if 13 <= len(digits) <= 19 and _luhn(digits):
            return "****" + digits[-4:]
        return text
    if kind == "iban":
        return MASK if _iban_ok(text) else text
    return MASK


def _normalise(key: str) -> str:
    return _NORMALISE.sub("", key.lower())


def load_hook(spec: str) -> Callable[[dict], Any]:
    """``"package.module:function"`` -> the function; ValueError with a clear message otherwise."""
    module_name, sep, attr = spec.strip().partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"redaction hook {spec!r} must look like 'package.module:function'")
    try:
        target = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"redaction hook {spec!r} cannot be loaded: {exc}") from None
    if not callable(target):
        raise ValueError(f"redaction hook {spec!r} is not callable")
    return target


class Redactor:
    """Masks secret-looking keys and values. ``enabled=False`` makes every method a no-op."""

    def __init__(
        self,
        enabled: bool = True,
        deny: Iterable[str] = (),
        allow: Iterable[str] = (),
        hook: Callable[[dict], Any] | str | None = None,
        mask: str = MASK,
    ):
        self.enabled = enabled
        self.mask = mask
        self._deny = tuple(dict.fromkeys(DENY_SUBSTRINGS + tuple(_normalise(d) for d in deny if _normalise(d))))
        self._allow = frozenset(a.strip() for a in allow) | frozenset(_normalise(a) for a in allow)
        if isinstance(hook, str):
            hook = load_hook(hook) if hook.strip() else None
        self.hook = hook
        # key -> 0 scan value, 1 mask, 2 leave alone
        self._verdicts: dict[str, int] = {k: 2 for k in SKIP_KEYS}
        # strings already scanned and found clean
        self._safe: set[str] = set()
        # keys known to be ordinary (verdict 0): an event made only of these needs no per-key work
        self._plain_keys: set[str] = set()

    # --- keys -------------------------------------------------------------
    def _learn(self, key: Any) -> int:
        if not isinstance(key, str):
            return 0
        norm = _normalise(key)
        if key in self._allow or norm in self._allow:
            verdict = 0
        elif norm in DENY_EXACT or any(d in norm for d in self._deny):
            verdict = 1
        else:
            verdict = 0
        if len(self._verdicts) < 10_000:
            self._verdicts[key] = verdict
            if verdict == 0:
                self._plain_keys.add(key)
        return verdict

    def key_is_secret(self, key: str) -> bool:
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._learn(key)
        return verdict == 1

    # --- values -----------------------------------------------------------
    def redact_text(self, text: str) -> str:
        """The text with secret-looking parts masked (the same object when nothing matched).

        Strings found clean are remembered (bounded set): log messages and repeated values are
        mostly the same string objects, so the scan runs once per distinct string.
        """
        n = len(text)
        if n < 5:
            return text
        safe = self._safe
        if text in safe:
            return text
        if "=" not in text and ":" not in text and (n < 13 or _LONG_PREFILTER.search(text) is None):
            new = text
        else:
            new = _VALUE_RE.sub(_replace, text)
        if new == text:
            if len(safe) >= 4096:
                safe.clear()
            safe.add(text)
            return text
        return new

    def redact_value(self, value: Any) -> Any:
        t = type(value)
        if t is str:
            return self.redact_text(value)
        if t is int:
            if value >= 1_000_000_000_000 and not isinstance(value, bool):
                digits = str(value)
                if len(digits) <= 19 and _luhn(digits):
                    return "****" + digits[-4:]
            return value
        if t is dict or isinstance(value, dict):
            return self._redact_dict(value)
        if t is list or t is tuple:
            new = [self.redact_value(v) for v in value]
            return value if all(a is b for a, b in zip(new, value)) else t(new)
        return value

    def _redact_dict(self, mapping: dict) -> dict:
        out = None
        verdicts = self._verdicts
        for k, v in mapping.items():
            verdict = verdicts.get(k)
            if verdict is None:
                verdict = self._learn(k)
            if verdict == 2:
                continue
            new = self.mask if verdict == 1 else self.redact_value(v)
            if new is not v:
                if out is None:
                    out = dict(mapping)
                out[k] = new
        return mapping if out is None else out

    # --- whole events ------------------------------------------------------
    def redact_event(self, event_dict: dict) -> dict:
        """Mask in place (structlog event dicts are per call)."""
        if not self.enabled:
            return event_dict
        safe = self._safe
        if event_dict.keys() <= self._plain_keys:
            # fast path (set comparison in C): no secret or skipped key, only values to look at
            for v in event_dict.values():
                t = type(v)
                if t is str:
                    n = len(v)
                    if n > 4 and (n > 12 or "=" in v or ":" in v) and v not in safe:
                        break
                elif t is int:
                    if v >= 1_000_000_000_000:
                        break
                elif t is dict or t is list or t is tuple:
                    break
            else:
                if self.hook is not None:
                    self._call_hook(event_dict)
                return event_dict
        verdicts = self._verdicts
        for k, v in event_dict.items():
            verdict = verdicts.get(k)
            if verdict is None:
                verdict = self._learn(k)
            if verdict:
                if verdict == 1:
                    event_dict[k] = self.mask
                continue
            t = type(v)
            if t is str:
                # inlined prefilter of redact_text: short values without '=' or ':' cannot match
                n = len(v)
                if n > 4 and (n > 12 or "=" in v or ":" in v) and v not in safe:
                    new = self.redact_text(v)
                    if new is not v:
                        event_dict[k] = new
            elif t is int:
                if v >= 1_000_000_000_000:
                    event_dict[k] = self.redact_value(v)
            elif t is dict or t is list or t is tuple:
                new = self.redact_value(v)
                if new is not v:
                    event_dict[k] = new
        if self.hook is not None:
            self._call_hook(event_dict)
        return event_dict

    def redact_mapping(self, mapping: Any) -> Any:
        """A redacted copy of an attribute mapping (the same object when nothing changed)."""
        if not self.enabled or not mapping:
            return mapping
        out = self._redact_dict(dict(mapping.items()) if not isinstance(mapping, dict) else mapping)
        if self.hook is not None:
            out = dict(out) if out is mapping else out
            self._call_hook(out)
        return out

    def _call_hook(self, mapping: dict) -> None:
        if self.hook is None:
            return
        try:
            self.hook(mapping)
        except Exception as exc:  # a user hook must never break logging
            report_once(f"redaction hook {self.hook!r} raised {exc!r}; its changes are skipped")

    # structlog processor interface
    def __call__(self, logger: Any, method_name: str, event_dict: dict) -> dict:
        return self.redact_event(event_dict)


_REDACTOR = Redactor()


def get_redactor() -> Redactor:
    """The process-wide redactor used by the structlog chain, the stdlib handler and span redaction."""
    return _REDACTOR


def configure_redaction(
    enabled: bool = True,
    deny: Iterable[str] = (),
    allow: Iterable[str] = (),
    hook: Callable[[dict], Any] | str | None = None,
) -> Redactor:
    """Replace the process-wide redactor's rules (keeps the same object, so installed processors see the change)."""
    fresh = Redactor(enabled, deny, allow, hook)
    _REDACTOR.__dict__.update(fresh.__dict__)
    return _REDACTOR


class RedactingSpanProcessor(SpanProcessor):
    """Masks secrets in span attributes and span event attributes when the span ends.

    Add it to the TracerProvider **before** the exporting (batch) processor: span
    processors run in registration order, so the exporter only ever sees the
    redacted copy. The SDK's ended span is read-only through its API, so the
    values are replaced in the span's attribute storage directly.
    """

    def __init__(self, redactor: Redactor | None = None):
        self._redactor = redactor or _REDACTOR

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        redactor = self._redactor
        if not redactor.enabled:
            return
        _redact_bounded(redactor, getattr(span, "_attributes", None))
        for event in getattr(span, "_events", ()) or ():
            _redact_bounded(redactor, getattr(event, "_attributes", None))
        for link in getattr(span, "_links", ()) or ():
            _redact_bounded(redactor, getattr(link, "_attributes", None))

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _redact_bounded(redactor: Redactor, attributes: Any) -> None:
    if not attributes:
        return
    store = getattr(attributes, "_dict", None)
    if store is None:
        if isinstance(attributes, dict):
            store = attributes
        else:
            return
    new = redactor.redact_mapping(store)
    if new is not store:
        for key, value in new.items():
            if store.get(key) is not value:
                store[key] = value


class RedactingLogRecordProcessor(LogRecordProcessor):
    """Optional ``LogRecordProcessor`` masking log records emitted straight through the OTel Logs API
    (records from otel-trading's structlog processor and stdlib handler are already redacted).
    Add it to the LoggerProvider before the exporting processor."""

    def __init__(self, redactor: Redactor | None = None):
        self._redactor = redactor or _REDACTOR

    def on_emit(self, log_record: Any) -> None:
        redactor = self._redactor
        if not redactor.enabled:
            return
        record = getattr(log_record, "log_record", log_record)
        if isinstance(record.body, (str, dict, list, tuple)):
            record.body = redactor.redact_value(record.body)
        attributes = record.attributes
        if attributes:
            store = getattr(attributes, "_dict", attributes)
            new = redactor.redact_mapping(store)
            if new is not store:
                for key, value in new.items():
                    if store.get(key) is not value:
                        store[key] = value

    def enabled(self, *args: Any, **kwargs: Any) -> bool:
        return True

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
