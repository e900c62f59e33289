"""Redaction of secrets in log events, exported log records and span attributes.

On by default. Two checks:

* **keys** that look secret (``password``, ``token``, ``api_key``, ``secret``,
  ``authorization``, ``cookie``, ``account_number``, ``card_number``, ...): the
  whole value is replaced by ``***``. Keys are normalised (lowercase, only
  letters and digits) and the verdict is cached per key, so a known key costs
  one dict lookup.
* **values** that look secret, inside any string: ``key=value`` / ``key: value``
  pairs whose key looks secret (also ``signature=``/``nonce=`` in signed exchange URLs), ``Bearer``/``Basic`` credentials, JWTs, well
  known API key shapes (``sk_live_...``, ``AKIA...``, ``ghp_...``, ``xox?-...``),
  PEM private keys, card numbers (13-19 digits passing the Luhn check, last four
  kept) and IBANs (passing the mod-97 check), passwords in URLs and DSNs
  (``scheme://user:***@host``), FIX password tags (``554=``, ``925=``, ...),
  e-mail addresses (``***@domain``) and phone numbers written with ``+``, ``(555)``
  or ``555-123-4567`` (both PII, opt out with ``OTEL_TRADING_REDACT_PII_ALLOW``).
  A cheap prefilter (length, ``=``, ``:`` or ``@``, digit runs, token prefixes)
  keeps ordinary short values off the regular expression.

Nested dicts, lists, tuples and sets are walked (cycles and depth bounded),
``(key, value)`` pairs are judged by their key, ``bytes`` are decoded and scanned,
and any other object is judged by its ``repr``. Fail closed: what cannot be
inspected (a ``repr`` that raises, a structure too deep) is replaced by a
placeholder, never passed on unmasked. Exceptions are formatted before
redaction, so a token in an exception message is masked in ``exc_message`` and
``stack`` and in the OTLP ``exception.*`` attributes.

Adapters put the redactor on each way out: ``RedactingSpanProcessor``, ``RedactingLogRecordProcessor``,
``RedactingMetricReader`` (data-point attributes at collection time); ``Redactor.redact_argv`` masks
the value after a secret-looking command-line option (resource ``process.command_args``); module
``otel_trading.excepthooks`` prints Python's own tracebacks through it.

Configuration (env or ``configure()``): ``OTEL_TRADING_REDACT`` (on/off),
``OTEL_TRADING_REDACT_KEYS`` (extra secret key names, matched as substrings of
the normalised key), ``OTEL_TRADING_REDACT_ALLOW`` (key names never masked),
``OTEL_TRADING_REDACT_HOOK`` (``module:function`` called as ``hook(mapping)``
on every event dict and span attribute dict after the built-in rules; it may
change the mapping in place).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import Status, StatusCode

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
    "nonce",
    "bearer",
    "jwt",
)
# normalised keys secret only as a whole word (too short to match inside other words)
DENY_EXACT = frozenset({"pwd", "pin", "pan", "ssn", "otp", "auth", "key", "pass", "sid", "xapikey", "sig", "sign"})
# keys otel-trading writes itself: never scanned
SKIP_KEYS = frozenset({"timestamp", "level", "logger", "trace_id", "span_id", "service", "correlation_id", "event_name"})
# the message itself: its value is always scanned, but never masked whole by a key rule (OTEL_TRADING_REDACT_KEYS=e
# would otherwise blank every log line)
MESSAGE_KEYS = frozenset({"event", "message", "msg", "body"})

# words that make a key secret wherever they stand in it (``broker.pass``, ``pinCode``); ``key`` only after these
DENY_WORDS = frozenset({"pass", "pwd", "pin", "otp", "sig", "passcode"})
KEY_QUALIFIERS = frozenset({"session", "api", "access", "secret", "private", "signing", "auth", "encryption", "master", "client", "license", "account", "shared"})
# FIX tags whose value is a secret: Password, NewPassword, RawData (logon signature), EncryptedPassword, EncryptedNewPassword
FIX_SECRET_TAGS = ("554", "925", "96", "1402", "1404")
PII_KINDS = ("email", "phone")
# single-letter command-line options whose value is a password (mysql, many bots' CLIs); -p as a port is masked too
SHORT_SECRET_OPTIONS = frozenset({"-p"})

_KV_KEYS = r"password|passwd|passphrase|pwd|pass|secret|client[-_]?secret|token|access[-_]?token|refresh[-_]?token|api[-_]?key|apikey|access[-_]?key|private[-_]?key|session[-_]?key|authorization|auth|cookie|session[-_]?id|account[-_]?(?:number|no)|card[-_]?number|signature|sig|sign|nonce|credential|key"
@functools.cache
def _value_pattern() -> re.Pattern[str]:
    """The value scanner, compiled on first use: compiling it takes 5-12 ms, which a process that never
    scans a suspicious-looking string does not pay at start-up."""
    return re.compile(
        r"(?P<url>(?i:\b[a-z][a-z0-9+.-]*://)[^\s/@:]*:)(?P<urlv>[^\s/]+?)(?=@[^\s/@]+(?:[/?#\s]|$))"
        r"|(?P<ui>(?<![\w.%+:/-])[A-Za-z0-9._%+-]+:)(?P<uiv>[^\s/@:]+)(?=@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*(?::\d+)?(?:[/?#\s,;:\]]|$))"
        r"|(?P<fix>(?:^|(?<=\x01)|(?<=\\x01)|(?<=[|^\s]))(?:" + "|".join(FIX_SECRET_TAGS) + r")=)(?P<fixv>[^\x01|\s\\']+)"
        r"|(?P<kv>(?i:\b(?:[a-z0-9]+[-_])*(?:" + _KV_KEYS + r"))(?:[\"']?\s*[:=]\s*[\"']?|[\"'],\s*[\"']))(?P<kvv>(?:(?i:bearer|basic)\s+)?[^\s\"',;&)}\]\x01|]+)"
        r"|(?P<auth>(?i:\b(?:bearer|basic|token))\s+)(?P<authv>[A-Za-z0-9._~+/=-]{8,})"
        r"|(?P<jwt>\beyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*)"
        r"|(?P<apikey>\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{8,}|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{20,}|\bxox[abprs]-[A-Za-z0-9-]{10,})"
        r"|(?P<pem>-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$))"
        r"|(?P<card>(?<![\w.-])(?:\d[ -]?){12,18}\d(?![\w.]))"
        r"|(?P<iban>\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b)"
        r"|(?P<email>(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+)(?P<emaild>@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b)"
        r"|(?P<phone>(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}|\(\d{3}\) ?\d{3}-\d{4}|\d{3}-\d{3}-\d{4})(?![\w.]))"
    )


# What every string the value scanner can match holds, when it has no '=' nor '@' (the rules that need
# neither): a key word of the key=value / auth rules (also in tuple form, ``('password', 'x')``), a token
# prefix, or the digit shape of a card, IBAN or phone number. Strings without one (a time of day,
# ``host:port``, a UUID, an order id, ``sys.version`` in the resource) skip the scan and its compile.
_SECRET_WORDS = re.compile(r"pass|pwd|secret|token|key|auth|cookie|session|account|card|sig|nonce|credential|bearer|basic")
_SECRET_SHAPES = re.compile(r"eyJ|_live_|_test_|AKIA|gh[pousr]_|xox[abprs]-|(?:\d[ -]?){12}\d|[A-Z]{2}\d{2}|\+\d|\(\d{3}\)|\d{3}-\d{3}-\d{4}")


def _may_hold_secret(text: str) -> bool:
    """False only for text the value scanner leaves alone (the lower-cased key-word search is several
    times faster than a case-insensitive one)."""
    return "=" in text or "@" in text or _SECRET_WORDS.search(text.lower()) is not None or _SECRET_SHAPES.search(text) is not None


_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SCALARS = frozenset({float, bool, type(None)})
_MAX_DEPTH = 32
_MAX_NODES = 10_000
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


def _replace(match: re.Match, pii_allowed: frozenset[str] = frozenset()) -> str:
    kind = match.lastgroup
    if kind == "kvv":
        return match.group("kv") + MASK
    if kind == "authv":
        return match.group("auth") + MASK
    if kind == "urlv":
        return match.group("url") + MASK
    if kind == "uiv":
        return match.group("ui") + MASK
    if kind == "fixv":
        return match.group("fix") + MASK
    if kind == "emaild":
        return match.group(0) if "email" in pii_allowed else MASK + match.group("emaild")
    text = match.group(0)
    if kind == "phone":
        return text if "phone" in pii_allowed else MASK
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
    """Masks secret-looking keys and values. ``enabled=False`` makes every method a no-op.

    Never raises on hostile input: what cannot be inspected is replaced by a placeholder.
    """

    def __init__(
        self,
        enabled: bool = True,
        deny: Iterable[str] = (),
        allow: Iterable[str] = (),
        hook: Callable[[dict], Any] | str | None = None,
        mask: str = MASK,
        pii_allow: Iterable[str] = (),
    ):
        self.enabled = enabled
        self.mask = mask
        self._deny = tuple(dict.fromkeys(DENY_SUBSTRINGS + tuple(_normalise(d) for d in deny if _normalise(d))))
        self._allow = frozenset(a.strip() for a in allow) | frozenset(_normalise(a) for a in allow)
        self._replace = functools.partial(_replace, pii_allowed=frozenset(pii_allow))
        self._sub: Callable[[str], str] | None = None  # the value scanner's ``sub``, bound on first use
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
        if type(key) is not str:
            return 0
        norm = _normalise(key)
        if key in self._allow or norm in self._allow or key in MESSAGE_KEYS:
            verdict = 0
        elif norm in DENY_EXACT or any(d in norm for d in self._deny):
            verdict = 1
        else:
            words = [w.lower() for w in _WORDS.findall(key)]
            secret_key = len(words) > 1 and words[-1] == "key" and words[-2] in KEY_QUALIFIERS
            verdict = 1 if secret_key or not DENY_WORDS.isdisjoint(words) else 0
        if len(self._verdicts) < 10_000:
            self._verdicts[key] = verdict
            if verdict == 0:
                self._plain_keys.add(key)
        return verdict

    def key_is_secret(self, key: Any) -> bool:
        verdict = self._verdicts.get(key) if type(key) is str else None
        if verdict is None:
            verdict = self._learn(key)
        return verdict == 1

    # --- values -----------------------------------------------------------
    def redact_text(self, text: str) -> str:
        """The text with secret-looking parts masked (the same object when nothing matched).

        Strings found clean are remembered (bounded set): log messages and repeated values are
        mostly the same string objects, so the scan runs once per distinct string.
        """
        if len(text) < 5:
            return text
        safe = self._safe
        if text in safe:
            return text
        if not _may_hold_secret(text):
            new = text
        else:
            sub = self._sub
            if sub is None:
                sub = self._sub = functools.partial(_value_pattern().sub, self._replace)
            new = sub(text)
        if new == text:
            if len(safe) >= 4096:
                safe.clear()
            safe.add(text)
            return text
        return new

    def redact_value(self, value: Any) -> Any:
        """``value`` with secrets masked (the same object when nothing changed); never raises."""
        t = type(value)
        if t is str:
            return self.redact_text(value)
        if t in _SCALARS:
            return value
        try:
            return self._walk(value, (), [0])
        except Exception:  # noqa: BLE001 - fail closed
            return _placeholder(value)

    def _walk(self, value: Any, path: tuple, nodes: list[int]) -> Any:
        t = type(value)
        if t is str:
            return self.redact_text(value)
        if t in _SCALARS:
            return value
        if t is int:
            if value >= 1_000_000_000_000:
                digits = str(value)
                if len(digits) <= 19 and _luhn(digits):
                    return "****" + digits[-4:]
            return value
        nodes[0] += 1
        if id(value) in path:
            return "<recursive>"
        if len(path) >= _MAX_DEPTH or nodes[0] > _MAX_NODES:
            return "<too deep>"
        if isinstance(value, dict):
            return self._redact_dict(value, (*path, id(value)), nodes)
        if t is list or t is tuple or t is set or t is frozenset:
            if t is tuple and len(value) == 2 and type(value[0]) is str and self.key_is_secret(value[0]):
                return (value[0], self.mask)  # a (key, value) pair
            inner = (*path, id(value))
            items = [self._walk(v, inner, nodes) for v in value]
            if all(a is b for a, b in zip(items, value)):
                return value
            return items if t is set or t is frozenset else t(items)
        if t is bytes or t is bytearray or t is memoryview:
            text = bytes(value).decode("utf-8", "replace")
            new = self.redact_text(text)
            return value if new is text else new
        if isinstance(value, str):  # a str subclass
            text = str.__str__(value)
            new = self.redact_text(text)
            return value if new is text else new
        if isinstance(value, int) and not isinstance(value, bool):
            return self._walk(int(value), path, nodes)
        # anything else is rendered with repr(): judged by that text
        try:
            text = repr(value)
        except Exception:  # noqa: BLE001
            return _placeholder(value)
        new = self.redact_text(text)
        return value if new is text else new

    def _redact_dict(self, mapping: dict, path: tuple = (), nodes: list[int] | None = None) -> dict:
        nodes = [0] if nodes is None else nodes
        out = None
        verdicts = self._verdicts
        for k, v in mapping.items():
            verdict = verdicts.get(k) if type(k) is str else None
            if verdict is None:
                verdict = self._learn(k)
            if verdict == 2:
                continue
            new = self.mask if verdict == 1 else self._walk(v, path, nodes)
            if new is not v:
                if out is None:
                    out = dict(mapping)
                out[k] = new
        return mapping if out is None else out

    # --- whole events ------------------------------------------------------
    def redact_event(self, event_dict: dict) -> dict:
        """Mask in place (structlog event dicts are per call); never raises.

        One pass, no further Python call for a clean event: every log line comes through here."""
        if not self.enabled:
            return event_dict
        try:
            safe = self._safe
            verdicts = self._verdicts
            for k, v in event_dict.items():
                verdict = verdicts.get(k) if type(k) is str else None
                if verdict is None:
                    verdict = self._learn(k)
                if verdict:
                    if verdict == 1:
                        event_dict[k] = self.mask
                    continue
                t = type(v)
                if t is str:
                    # inlined prefilter of redact_text: short values without '=', ':' or '@' cannot match
                    n = len(v)
                    if n > 4 and (n > 12 or "=" in v or ":" in v or "@" in v) and v not in safe:
                        new = self.redact_text(v)
                        if new is not v:
                            event_dict[k] = new
                elif t is int:
                    if v >= 1_000_000_000_000:
                        event_dict[k] = self.redact_value(v)
                elif t not in _SCALARS:
                    new = self.redact_value(v)
                    if new is not v:
                        event_dict[k] = new
            if self.hook is not None:
                self._call_hook(event_dict)
            return event_dict
        except Exception:  # noqa: BLE001 - e.g. a dict mutated by another thread: redo it key by key
            return self.redact_event_closed(event_dict)

    def redact_event_closed(self, event_dict: dict) -> dict:
        """Key by key, anything that fails replaced by a placeholder: the fail-closed path."""
        for key in list(event_dict):
            value = event_dict[key]
            try:
                event_dict[key] = self.mask if self.key_is_secret(key) else self.redact_value(value)
            except Exception:  # noqa: BLE001
                event_dict[key] = _placeholder(value)
        return event_dict

    def is_clean(self, mapping: dict) -> bool:
        """True when no key of ``mapping`` is secret or skipped and no value can need masking.

        The fast path of every per-item check (a log event, a span's attributes): the key test
        is one set comparison in C; a value passes when it is a known-clean or short plain
        string, a small int or another scalar.
        """
        return mapping.keys() <= self._plain_keys and self._values_clean(mapping.values())

    def message_clean(self, text: str, args: Any) -> bool:
        """True when a stdlib record's rendered message ``text`` has nothing to mask (``redact_text(text)
        is text``) and walking its ``%``-arguments ``args`` (``redact_value(args)``) cannot mask anything
        either: no ``(secret_key, value)`` pair, every argument a value ``is_clean`` would pass.

        The stdlib fast path in one call (every line calls it): the text is scanned, the walk spared."""
        if len(text) > 4 and text not in self._safe and self.redact_text(text) is not text:
            return False
        if not args:
            return True
        if type(args) is not tuple or (len(args) == 2 and type(args[0]) is str and self.key_is_secret(args[0])):
            return False
        safe = self._safe
        for v in args:  # _values_clean(args) inlined
            t = type(v)
            if t is str:
                n = len(v)
                if n > 4 and (n > 12 or "=" in v or ":" in v or "@" in v) and v not in safe:
                    return False
            elif t is int:
                if v >= 1_000_000_000_000:
                    return False
            elif t not in _SCALARS:
                return False
        return True

    def _values_clean(self, values: Iterable[Any]) -> bool:
        """Every value a known-clean or short plain string, a small int or another scalar."""
        safe = self._safe
        for v in values:
            t = type(v)
            if t is str:
                n = len(v)
                if n > 4 and (n > 12 or "=" in v or ":" in v or "@" in v) and v not in safe:
                    return False
            elif t is int:
                if v >= 1_000_000_000_000:
                    return False
            elif t not in _SCALARS:
                return False
        return True

    def redact_mapping(self, mapping: Any) -> Any:
        """A redacted copy of an attribute mapping (the same object when nothing changed); never raises."""
        if not self.enabled or not mapping:
            return mapping
        try:
            out = self._redact_dict(dict(mapping.items()) if not isinstance(mapping, dict) else mapping)
        except Exception:  # noqa: BLE001 - fail closed
            out = self.redact_event_closed(dict(mapping.items()))
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
            report_once(f"redaction hook {self.hook!r} raised {type(exc).__name__}; its changes are skipped")

    def redact_argv(self, argv: Iterable[Any]) -> list[Any]:
        """A command line's arguments with the value of every secret-looking option masked, the rest kept.

        ``--api-key XYZ``, ``--password=XYZ``, ``-p XYZ``, ``-pXYZ``: an option is judged by its name
        with the key rules (``--db-password``, ``--token``, ``--key``; single-letter options only ``-p``),
        and the item after an option without ``=`` is masked unless it is itself a long option.
        Every item is then scanned like any value (``https://u:pw@host``, ``sk_live_...``).
        """
        out: list[Any] = []
        mask_next = False
        for arg in argv:
            if type(arg) is not str:
                out.append(arg)
                mask_next = False
                continue
            if mask_next and not arg.startswith("--"):
                out.append(self.mask)
                mask_next = False
                continue
            mask_next = False
            if arg[:2] in SHORT_SECRET_OPTIONS:  # -p XYZ, -pXYZ, -p=XYZ
                out.append(arg if arg == arg[:2] else arg[:2] + ("=" if arg[2] == "=" else "") + self.mask)
                mask_next = arg == arg[:2]
                continue
            name, eq, _ = arg.partition("=")
            key = name.lstrip("-")
            if name.startswith("-") and len(key) > 1 and self.key_is_secret(key):  # --api-key XYZ, --password=XYZ
                out.append(name + "=" + self.mask if eq else arg)
                mask_next = not eq
                continue
            out.append(self.redact_text(arg))
        return out

    # structlog processor interface
    def __call__(self, logger: Any, method_name: str, event_dict: dict) -> dict:
        return self.redact_event(event_dict)


def _placeholder(value: Any) -> str:
    """What replaces a value that cannot be inspected (its type name only: nothing of its content)."""
    try:
        return f"<unrenderable {type(value).__name__}>"
    except Exception:  # noqa: BLE001
        return "<unrenderable>"


_REDACTOR = Redactor()


def get_redactor() -> Redactor:
    """The process-wide redactor used by the structlog chain, the stdlib handler and span redaction."""
    return _REDACTOR


def configure_redaction(
    enabled: bool = True,
    deny: Iterable[str] = (),
    allow: Iterable[str] = (),
    hook: Callable[[dict], Any] | str | None = None,
    pii_allow: Iterable[str] = (),
) -> Redactor:
    """Replace the process-wide redactor's rules (keeps the same object, so installed processors see the change)."""
    fresh = Redactor(enabled, deny, allow, hook, pii_allow=pii_allow)
    _REDACTOR.__dict__.update(fresh.__dict__)
    _configured_from[0] = None
    return _REDACTOR


_configured_from: list[Any] = [None]  # the settings object the rules were last built from


def configure_redaction_from(settings: Any) -> Redactor:
    """The process-wide redactor with the rules of ``settings`` (OTEL_TRADING_REDACT*); idempotent: the
    providers and ``logs.install()`` (which must also work on its own) share the rules built once."""
    if _configured_from[0] is settings:
        return _REDACTOR
    rules = (settings.redact, settings.redact_keys, settings.redact_allow)
    try:
        configure_redaction(*rules, settings.redact_hook or None, settings.redact_pii_allow)
    except ValueError as exc:
        report_once(f"OTEL_TRADING_REDACT_HOOK: {exc}; redacting without the hook")
        configure_redaction(*rules, pii_allow=settings.redact_pii_allow)
    _configured_from[0] = settings
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
        try:
            _redact_name(redactor, span)
            _redact_bounded(redactor, getattr(span, "_attributes", None))
            status = getattr(span, "_status", None)
            if status is not None and status.description:
                # the status message of an exception that escaped the span (its event is masked below)
                description = redactor.redact_text(status.description)
                if description is not status.description:
                    span._status = Status(status.status_code, description)
            # the SDK's BoundedList keeps events / links in a deque: tested and iterated in C, not
            # through its Python __len__ / __iter__
            events, links = getattr(span, "_events", None), getattr(span, "_links", None)
            for event in getattr(events, "_dq", events) or ():
                _redact_name(redactor, event)
                _redact_bounded(redactor, getattr(event, "_attributes", None))
            for link in getattr(links, "_dq", links) or ():
                _redact_bounded(redactor, getattr(link, "_attributes", None))
        except Exception as exc:  # noqa: BLE001 - fail closed: a span that cannot be checked leaves nothing of its data
            report_once(f"span redaction failed ({type(exc).__name__}); the span's attributes and events are dropped")
            span._attributes = {}
            span._events = ()
            span._status = Status(span._status.status_code) if getattr(span, "_status", None) else Status(StatusCode.UNSET)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _redact_name(redactor: Redactor, item: Any) -> None:
    name = getattr(item, "_name", None)
    if type(name) is str:
        new = redactor.redact_text(name)
        if new is not name:
            item._name = new


def _redact_bounded(redactor: Redactor, attributes: Any) -> None:
    store = getattr(attributes, "_dict", attributes)  # BoundedAttributes' dict, tested in C (not its __len__)
    if not store or not isinstance(store, dict):
        return
    if redactor.hook is None and type(store) is dict and redactor.is_clean(store):
        return  # the usual span: nothing to mask, nothing copied
    new = redactor.redact_mapping(store)
    if new is not store:
        for key, value in new.items():
            if store.get(key) is not value:
                store[key] = value


_already_redacted = threading.local()


class already_redacted:  # noqa: N801 - used as a context manager around an emit
    """Marks records emitted inside the block as redacted by otel-trading's own log pipeline
    (structlog processor, stdlib handler), so ``RedactingLogRecordProcessor`` does not scan them twice."""

    def __enter__(self) -> None:
        _already_redacted.on = True

    def __exit__(self, *exc: Any) -> None:
        _already_redacted.on = False


class RedactingLogRecordProcessor(LogRecordProcessor):
    """Masks log records made through the OTel Logs API by anyone (the ``exceptions``
    instrumentation, libraries, ``logger.emit``): body, attributes, event name.
    Installed by default before the exporting processors; records from otel-trading's own
    structlog processor and stdlib handler are already redacted and pass untouched."""

    skips_redacted = True  # so those emitters may hand their fields to the export helper directly (logs.otlp)

    def __init__(self, redactor: Redactor | None = None):
        self._redactor = redactor or _REDACTOR

    def on_emit(self, log_record: Any) -> None:
        redactor = self._redactor
        if not redactor.enabled or getattr(_already_redacted, "on", False):
            return
        record = getattr(log_record, "log_record", log_record)
        try:
            if record.body is not None:
                record.body = redactor.redact_value(record.body)
            if type(record.event_name) is str:
                record.event_name = redactor.redact_text(record.event_name)
            attributes = record.attributes
            if attributes:
                store = getattr(attributes, "_dict", attributes)
                new = redactor.redact_mapping(store)
                if new is not store:
                    for key, value in new.items():
                        if store.get(key) is not value:
                            store[key] = value
        except Exception as exc:  # noqa: BLE001 - fail closed: keep the record, drop what could not be checked
            report_once(f"log record redaction failed ({type(exc).__name__}); the record's body and attributes are dropped")
            record.body = _placeholder(record.body)
            record.attributes = {}

    def enabled(self, *args: Any, **kwargs: Any) -> bool:
        return True

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class RedactingMetricReader:
    """Masks secrets in metric data-point attributes (and exemplars' filtered attributes) at collection time.

    Installed on a reader with :meth:`wrap`: it takes the place of the reader's ``_receive_metrics``, the
    method the SDK documents for readers to override, which every collection passes through on its way
    out (the periodic reader's exporter: OTLP, local files, console; a Prometheus scrape). ``add()``
    and ``record()`` are untouched: collection runs once per export interval or scrape, and each
    distinct attribute set is redacted once (the SDK hands the same attributes object to every
    collection of a series; the verdict is kept while that object lives).
    """

    _CACHE_MAX = 20_000

    def __init__(self, receive: Callable[..., Any], redactor: Redactor):
        self._receive = receive
        self._redactor = redactor
        # id(attributes) -> (attributes, redacted): the original is held, so its id cannot be reused while cached
        self._cache: dict[int, tuple[Any, Any]] = {}

    @classmethod
    def wrap(cls, reader: Any, redactor: Redactor | None = None) -> None:
        redactor = redactor or _REDACTOR
        if redactor.enabled and not isinstance(reader._receive_metrics, cls):
            reader._receive_metrics = cls(reader._receive_metrics, redactor)

    def __call__(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> Any:
        if metrics_data is not None and self._redactor.enabled:
            try:
                metrics_data = self._redact(metrics_data)
            except Exception as exc:  # noqa: BLE001 - fail closed: a collection that cannot be checked is not passed on
                report_once(f"metric redaction failed ({type(exc).__name__}); this collection of metrics is dropped")
                return None
        return self._receive(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def _attributes(self, attributes: Any) -> Any:
        if not attributes:
            return attributes
        cached = self._cache.get(id(attributes))
        if cached is not None and cached[0] is attributes:
            return cached[1]
        redacted = self._redactor.redact_mapping(attributes)
        if len(self._cache) >= self._CACHE_MAX:
            self._cache.clear()
        self._cache[id(attributes)] = (attributes, redacted)
        return redacted

    def _point(self, point: Any) -> Any:
        attributes = self._attributes(point.attributes)
        exemplars = [
            e if not e.filtered_attributes else dataclasses.replace(e, filtered_attributes=self._redactor.redact_mapping(e.filtered_attributes))
            for e in point.exemplars
        ]
        if attributes is point.attributes and all(a is b for a, b in zip(exemplars, point.exemplars)):
            return point
        return dataclasses.replace(point, attributes=attributes, exemplars=exemplars)

    def _redact(self, data: Any) -> Any:
        replace = dataclasses.replace
        resources = []
        for rm in data.resource_metrics:
            scopes = []
            for sm in rm.scope_metrics:
                metrics = []
                for metric in sm.metrics:
                    points = [self._point(p) for p in metric.data.data_points]
                    if any(a is not b for a, b in zip(points, metric.data.data_points)):
                        metric = replace(metric, data=replace(metric.data, data_points=points))
                    metrics.append(metric)
                scopes.append(replace(sm, metrics=metrics))
            resources.append(replace(rm, scope_metrics=scopes))
        return replace(data, resource_metrics=resources)
