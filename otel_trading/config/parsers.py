"""Parsers for setting values: each turns an env string into a value, or says what it accepts.

A parser raises ``ValueError`` on a value it cannot use; the loader reports it
with ``accepted`` and falls back to the default.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any, Callable, NamedTuple
from urllib.parse import urlparse

from opentelemetry.util._importlib_metadata import entry_points


class Parser(NamedTuple):
    """Turns an env string into a value; ``accepted`` is shown when it cannot."""

    parse: Callable[[str], Any]
    accepted: str
    format: Callable[[Any], str] = str
    type: str = "str"  # the parsed value's type, as written in the generated typed views (config/typed.py)


def _check(ok: bool) -> None:
    if not ok:
        raise ValueError


INT64_MAX = 2**63 - 1  # the SDK's limits become C sizes (deque maxlen, ssize_t): nothing larger works


def _int(text: str, low: int | None, high: int) -> int:
    text = text.strip()
    _check(len(text) <= 20)  # int() of a huge digit string is slow and beyond any bound anyway
    value = int(text)
    _check((low is None or value >= low) and value <= high)
    return value


def integer(low: int | None = None, high: int = INT64_MAX) -> Parser:
    bounds = " and ".join(b for b in (low is not None and f">= {low}", f"<= {high}") if b)
    return Parser(lambda t: _int(t, low, high), f"an integer {bounds}", type="int")


def _number(text: str, low: float, high: float, low_inclusive: bool) -> float:
    value = float(text.strip())
    _check(math.isfinite(value) and (value >= low if low_inclusive else value > low) and value <= high)
    return value


def number(low: float = 0.0, high: float = 86_400.0, low_inclusive: bool = False) -> Parser:
    """A finite number: threads wait with it, and ``Condition.wait`` overflows past ~292 years."""
    return Parser(lambda t: _number(t, low, high, low_inclusive), f"a number {'>=' if low_inclusive else '>'} {low:g} and <= {high:g}", repr, type="float")


def up_to(high: float) -> Parser:
    """A finite number > 0 and <= ``high``."""
    return number(0.0, high)


def _bool(text: str) -> bool:
    value = text.strip().lower()
    _check(value in ("true", "false", "1", "0", "yes", "no", "on", "off"))
    return value in ("true", "1", "yes", "on")


BOOLEAN = Parser(_bool, "true or false", lambda v: "true" if v else "false", type="bool")
TEXT = Parser(str.strip, "any text")


def choice(*options: str) -> Parser:
    def parse(text: str) -> str:
        value = text.strip().lower()
        _check(value in options)
        return value

    return Parser(parse, "one of " + ", ".join(options))


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _items(text: str) -> tuple[str, ...]:
    """Comma-separated items, none of them empty (the SDK looks up ``a,,b``'s empty name and fails)."""
    items = tuple(n.strip() for n in text.split(","))
    _check(all(items))
    return items


NAMES = Parser(_names, "a comma-separated list of names", lambda v: v if isinstance(v, str) else ",".join(v), type="tuple[str, ...]")


def names_from(*options: str) -> Parser:
    """A comma-separated list drawn from ``options`` (empty: none of them)."""

    def parse(text: str) -> tuple[str, ...]:
        names = tuple(n.lower() for n in _names(text))
        _check(all(n in options for n in names))
        return names

    return Parser(parse, "a comma-separated list of: " + ", ".join(options) + " (or empty)", NAMES.format, type="tuple[str, ...]")


def _floats(text: str) -> tuple[float, ...]:
    values = tuple(float(v) for v in _items(text))
    _check(len(values) <= 500 and all(0 < b < math.inf for b in values) and list(values) == sorted(set(values)))
    return values


FLOATS = Parser(
    _floats,
    "at most 500 comma-separated finite positive numbers in increasing order",
    lambda v: v if isinstance(v, str) else ",".join(f"{b:g}" for b in v),
    type="tuple[float, ...]",
)


def _pairs(text: str) -> dict[str, str]:
    pairs = {}
    for item in _names(text):
        key, sep, value = item.partition("=")
        _check(bool(sep and key.strip()))
        pairs[key.strip()] = value.strip()
    return pairs


PAIRS = Parser(
    _pairs,
    "comma-separated key=value pairs",
    lambda v: v if isinstance(v, str) else ",".join(f"{k}={x}" for k, x in v.items()),
    type="dict[str, str]",
)


LOG_LEVELS = ("debug", "info", "business", "audit", "warning", "error", "critical")


def _channels(text: str) -> dict[str, str]:
    channels = {name: level.lower() for name, level in _pairs(text).items()}
    _check(all(level in LOG_LEVELS for level in channels.values()))
    return channels


CHANNELS = Parser(_channels, "comma-separated channel=level pairs; levels: " + ", ".join(LOG_LEVELS), PAIRS.format, type="dict[str, str]")


def _hook(text: str) -> str:
    _check(re.fullmatch(r"(?:[A-Za-z_][\w.]*:[A-Za-z_][\w.]*)?", text.strip()) is not None)
    return text.strip()


HOOK = Parser(
    _hook,
    "`package.module:function` (or, in `configure()`, a module-level function)",
    lambda v: v if isinstance(v, str) else f"{v.__module__}:{v.__qualname__}",
)


def _url(text: str) -> str:
    parsed = urlparse(text.strip())
    _check(parsed.scheme in ("http", "https") and bool(parsed.netloc))
    return text.strip()


URL = Parser(_url, "an http:// or https:// URL with a host, e.g. http://localhost:4317")


def _file(text: str) -> str:
    _check(os.path.isfile(text.strip()))
    return text.strip()


FILE = Parser(_file, "the path of a readable file")


def entry_point_names(group: str, *extra: str, single: bool = False) -> Parser:
    """Names registered in an entry point group (exporters, samplers, propagators, resource detectors),
    looked up only when used. Exact spelling: the SDK looks the names up case-sensitively."""

    def known() -> set[str]:
        return {ep.name for ep in entry_points(group=group)} | set(extra)

    def parse(text: str) -> tuple[str, ...] | str:
        names = _items(text)
        _check(len(names) == 1 or not single)
        available = known()
        _check(all(n in available for n in names))
        return names[0] if single else names

    def accepted() -> str:
        return ("one of: " if single else "a comma-separated list of: ") + ", ".join(sorted(known()))

    return Parser(parse, _Lazy(accepted), NAMES.format, type="str" if single else "tuple[str, ...]")


class _Lazy(str):
    """An ``accepted`` text computed only when an error is reported."""

    compute: Callable[[], str]

    def __new__(cls, compute: Callable[[], str]):
        self = super().__new__(cls, "")
        self.compute = compute
        return self

    def __str__(self) -> str:
        return self.compute()
