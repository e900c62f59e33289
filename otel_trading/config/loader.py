"""Reads the settings from the environment and ``configure()`` keywords: the one reader of both.

Standard ``OTEL_*`` variables are validated here but read by the SDK itself:
a bad value is removed from the environment (so the SDK falls back to its own
default, or ours), and reported once on stderr naming the variable. Nothing here
raises into the user's process.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from otel_trading.config.parsers import HOOK
from otel_trading.config.table import BY_NAME, SETTINGS, Setting
from otel_trading.report import report

if TYPE_CHECKING:
    from otel_trading.config.typed import SettingsFields
else:  # the typed views are for type checkers: building them (a TypedDict of every setting) costs ~1-2 ms a start
    SettingsFields = object


class Settings(SettingsFields):
    """The effective settings: attribute per setting, where each came from, what was wrong."""

    def __init__(self, values: dict[str, Any], sources: dict[str, str], problems: list[str]):
        self.__dict__.update(values)
        self.sources = sources
        self.problems = problems

    def __repr__(self) -> str:
        """Secret settings masked: Python prints this repr when an atexit callback is interrupted."""
        return f"Settings({', '.join(f'{k}={shown(s, getattr(self, k))}' for k, s in BY_NAME.items())})"


def shown(setting: Setting, value: Any, limit: int | None = 80) -> str:
    """A setting's value as printed anywhere (repr, doctor, problems): secrets masked, at most ``limit`` characters."""
    if value is None or value in ("", (), {}):
        return repr(value)
    if setting.secret:
        return "***"
    text = value if isinstance(value, str) else setting.parser.format(value)
    try:
        from otel_trading.redaction import (
            get_redactor,  # late: SDK modules read the environment at import
        )

        text = get_redactor().redact_text(text)
    except Exception:  # noqa: BLE001 - fail closed: nothing of a value that could not be checked
        return f"<{len(text)} characters>"
    return repr(text if limit is None or len(text) <= limit else text[: limit - 3] + "...")


def load(environ: os._Environ | dict | None = None, **overrides: Any) -> Settings:
    """Read every setting from ``environ`` (default ``os.environ``) and ``overrides``.

    Overrides (``configure()`` keywords) win over the environment. Standard
    settings given as overrides are written to the environment, so the SDK reads
    them exactly as it reads variables. A bad value is reported, dropped from
    the environment and replaced by the default.
    """
    environ = os.environ if environ is None else environ
    unknown = set(overrides) - set(BY_NAME)
    if unknown:
        raise TypeError(f"unknown setting(s) {', '.join(sorted(unknown))}; see otel_trading.config.SETTINGS")
    values, sources, bad = {}, {}, []
    for setting in SETTINGS:
        if setting.name in overrides and overrides[setting.name] is not None:
            raw, source = overrides[setting.name], "argument"
            raw = raw if isinstance(raw, str) else setting.parser.format(raw)
        elif setting.env in environ:
            raw, source = environ[setting.env], "env"
        else:
            values[setting.name], sources[setting.name] = setting.default, "default"
            continue
        try:
            values[setting.name] = value = setting.parser.parse(raw)
            sources[setting.name] = source
            if setting.standard:
                # the SDK reads exactly what was validated (e.g. ` GRPC ` -> `grpc`)
                canonical = setting.parser.format(value)
                if source == "argument" or canonical != raw:
                    environ[setting.env] = canonical
        except (ValueError, TypeError, OverflowError):
            bad.append((setting, raw))
            values[setting.name], sources[setting.name] = setting.default, "default"
            environ.pop(setting.env, None)  # reported once; whoever reads the environment next sees the default
            if environ is not os.environ and os.environ.get(setting.env) == raw:
                os.environ.pop(setting.env)  # checked on a copy (doctor, start-up check): SDK imports read the real one
            if setting.standard and setting.default is not None:
                environ[setting.env] = setting.parser.format(setting.default)
    problems = []
    for setting, raw in bad:  # worded after the loop: every bad value is out of the environment by now
        problem = f"{setting.env}={shown(setting, raw)} is invalid: accepted {setting.parser.accepted}; using default {_shown_default(setting)}"
        problems.append(problem)
        report(problem)
    return Settings(values, sources, problems)


_current: Settings | None = None


def current() -> Settings:
    """The settings in force: those ``configure()`` loaded, else read once from the environment.

    The trading helpers read their policy (strict mode, per-symbol metrics, registry size) here, so
    an app that uses them without ``configure()`` (the API's no-op providers) follows the same variables.
    """
    global _current
    if _current is None:
        _current = load(dict(os.environ))
    return _current


def use(settings: Settings) -> None:
    """Make ``settings`` the ones in force (``configure()`` calls this once)."""
    global _current
    _current = settings


def _shown_default(setting: Setting) -> str:
    if setting.default is None:
        return "(the SDK's)"
    return setting.parser.format(setting.default) if setting.default not in ("", (), {}) else "(empty)"


def apply_defaults(environ: os._Environ | dict | None = None) -> None:
    """Set otel-trading's defaults for standard variables the user left unset."""
    environ = os.environ if environ is None else environ
    for setting in SETTINGS:
        if setting.standard and setting.default is not None:
            environ.setdefault(setting.env, setting.parser.format(setting.default))


def markdown_table() -> str:
    """The README settings table."""
    lines = ["| Variable | `configure()` keyword | Accepted | Default | What it does |", "|---|---|---|---|---|"]
    for s in SETTINGS:
        default = "SDK's" if s.default is None else f"`{_shown_default(s)}`"
        lines.append(f"| `{s.env}` | `{s.name}` | {s.parser.accepted} | {default} | {s.doc} |")
    return "\n".join(lines)


def typed_source() -> str:
    """The source of ``config/typed.py``: the table's rows as annotations type checkers can see."""

    def value_type(s: Setting) -> str:
        return f"{s.parser.type} | None" if s.default is None else s.parser.type

    def keyword_type(s: Setting) -> str:
        return "str | Callable[..., object]" if s.parser is HOOK else f"{s.parser.type} | str"

    fields = "\n".join(f"    {s.name}: {value_type(s)}" for s in SETTINGS)
    keywords = "\n".join(f"    {s.name}: {keyword_type(s)}" for s in SETTINGS)
    return f'''"""Typed views of the settings table: generated by ``python -m otel_trading.config``, do not edit.

``Settings`` attributes and ``configure()`` keywords as type checkers see them;
a test fails when this file and the table disagree.
"""

from __future__ import annotations

from typing import Callable, TypedDict


class SettingsFields:
    """Every setting's parsed value (``None``: the SDK's own default applies)."""

{fields}


class Keywords(TypedDict, total=False):
    """``configure()`` keywords: the parsed type, or the same text as the env var."""

{keywords}
'''

