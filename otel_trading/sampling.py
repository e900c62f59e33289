"""Trading-aware sampling: keep every order, sample the market-data firehose.

Select it with ``OTEL_TRACES_SAMPLER=parentbased_trading`` (or ``trading`` for
the root rules alone) and give rules in ``OTEL_TRACES_SAMPLER_ARG``::

    OTEL_TRACES_SAMPLER_ARG="market_data=50/s,signal=0.1,default=1"

A rule maps a trading span kind (``market_data``, ``signal``, ...) or ``default``
to a ratio in [0, 1] or a rate ``N/s`` (a token bucket per kind, burst N).
Must-keep kinds (``order``, ``execution``, ``risk``, ``reconciliation``) are
always kept unless a rule names them explicitly; ``default`` (1 unless given)
applies to the other kinds and to spans without ``trading.span.kind``.

The decision reads ``trading.span.kind`` from the attributes given at span start.
Ratio decisions use the same trace-id bits and bound as the SDK's
``TraceIdRatioBased``, so a trace id gets the same decision in every service.
Under ``parentbased_trading`` children follow their parent, so a trace is kept
or dropped whole; except that a must-keep span is kept even under an unsampled
parent (an order sent from inside a sampled-out tick handler), with its subtree.

Decisions are counted per kind and exported as the monotonic counter
``trading.sampler.decisions`` (attributes ``trading.span.kind`` and
``trading.sampler.decision`` = ``kept`` | ``dropped``).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import weakref
from collections.abc import Iterable, Sequence

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from otel_trading import __version__, forksafe
from otel_trading.report import report_once
from otel_trading.trading.kinds import SPAN_KIND_ATTRIBUTE, TradingSpanKind

__all__ = [
    "TradingSampler",
    "ParentBasedTradingSampler",
    "Rule",
    "parse_rules",
    "trading_sampler",
    "parentbased_trading_sampler",
    "current",
    "register_metrics",
    "DECISIONS_METRIC",
    "DECISION_ATTRIBUTE",
    "OTHER_KIND",
]

ARG_ENV = "OTEL_TRACES_SAMPLER_ARG"
DECISIONS_METRIC = "trading.sampler.decisions"
DECISION_ATTRIBUTE = "trading.sampler.decision"
OTHER_KIND = "other"
"""Counting label for spans whose ``trading.span.kind`` is missing or unknown."""

_MASK = TraceIdRatioBased.TRACE_ID_LIMIT
_KIND_NAMES = tuple(k.value for k in TradingSpanKind)
_ACCEPTED = (
    "comma-separated KIND=RATIO or KIND=N/s, where KIND is one of "
    + ", ".join(_KIND_NAMES)
    + " or default, RATIO is a number in [0,1] and N/s a rate in spans per second"
    + " (e.g. market_data=50/s,signal=0.1,default=1)"
)

# Shared, immutable results. The SDK turns ``SamplingResult.attributes`` into the
# span's attributes, so a KEPT result must carry the attributes it was given.
_DROP_ROOT = SamplingResult(Decision.DROP)


def _keep(attributes: Attributes, trace_state: TraceState | None = None) -> SamplingResult:
    return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, trace_state)


# --------------------------------------------------------------------------- rules


class Rule:
    """What to do with root spans of one kind: keep all, a ratio, or a rate."""

    __slots__ = ("kind", "ratio", "rate", "bound")

    def __init__(self, kind: str, ratio: float | None = None, rate: float | None = None):
        if (ratio is None) == (rate is None):
            raise ValueError("a rule is a ratio or a rate")
        if ratio is not None and not 0.0 <= ratio <= 1.0:
            raise ValueError("ratio must be in [0, 1]")
        if rate is not None and not (rate >= 0.0 and rate != float("inf")):
            raise ValueError("rate must be a finite number >= 0")
        self.kind = kind
        self.ratio = ratio
        self.rate = rate
        self.bound = TraceIdRatioBased.get_bound_for_rate(ratio) if ratio is not None else 0

    @property
    def text(self) -> str:
        return f"{self.rate:g}/s" if self.rate is not None else f"{self.ratio:g}"

    def __repr__(self) -> str:
        return f"Rule({self.kind}={self.text})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rule) and (self.kind, self.ratio, self.rate) == (other.kind, other.ratio, other.rate)

    __hash__ = None  # type: ignore[assignment]


def _parse_value(text: str) -> tuple[float | None, float | None]:
    """``'0.1'`` -> (0.1, None); ``'50/s'`` -> (None, 50.0). ValueError when not a number (``Rule`` checks ranges)."""
    text = text.strip().lower()
    if text.endswith("/s"):
        return None, float(text[:-2].strip())
    return float(text), None


def parse_rules(arg: str | float | None) -> tuple[dict[str, Rule], list[str]]:
    """Parse ``OTEL_TRACES_SAMPLER_ARG``: (rules by kind name or ``default``, bad parts).

    A bare number (as ``traceidratio`` takes) means ``default=<number>``.
    Bad parts are returned, never raised: the valid parts still apply.
    """
    rules: dict[str, Rule] = {}
    bad: list[str] = []
    if arg is None:
        return rules, bad
    if isinstance(arg, (int, float)) and not isinstance(arg, bool):
        arg = repr(float(arg))
    for part in str(arg).split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower() if sep else "default"
        value = value if sep else part
        if key != "default" and key not in _KIND_NAMES:
            bad.append(part)
            continue
        try:
            rules[key] = Rule(key, *_parse_value(value))
        except ValueError:
            bad.append(part)
    return rules, bad


def _report_bad(arg: str, bad: list[str], effective: str) -> None:
    parts = ", ".join(repr(p) for p in bad)
    report_once(
        f"{ARG_ENV}={arg!r} is invalid in {parts}: accepted {_ACCEPTED}; ignoring the invalid part(s), using {effective}",
        key=("sampler-arg", arg),
    )


# ------------------------------------------------------------------ per-kind state


class _KindState:
    """Decision state and counts for one kind label (one per kind, plus ``other``)."""

    __slots__ = ("label", "rule", "pinned", "mode", "bound", "rate", "burst", "tokens", "last", "_kept", "_dropped", "count_kept", "count_dropped", "lock", "promote")

    ALWAYS, RATIO, RATE = 0, 1, 2

    def __init__(self, label: str, rule: Rule, must_keep: bool, explicit: bool):
        self.label = label
        self.rule = rule
        self.pinned = must_keep and not explicit  # a must-keep kind without its own rule
        if self.pinned:
            self.mode = self.ALWAYS
        elif rule.rate is not None:
            self.mode = self.RATE
        elif rule.ratio is not None and rule.ratio >= 1.0:  # bound == 2**64: every trace id passes
            self.mode = self.ALWAYS
        else:
            self.mode = self.RATIO
        # A must-keep kind that keeps everything is kept even under an unsampled parent (ParentBasedTradingSampler).
        self.promote = must_keep and self.mode == self.ALWAYS
        self.bound = rule.bound
        self.rate = rule.rate or 0.0
        # Burst: one second's worth of spans (at least one). The bucket starts full.
        self.burst = max(1.0, self.rate) if self.rate else 0.0
        self.tokens = self.burst
        self.last = time.monotonic()
        self.reset_counts()

    def reset_counts(self) -> None:
        """Zero counts and a fresh lock: at start, and in a forked child (which counts its own decisions only)."""
        # Exact counts without a lock: next() on itertools.count is atomic under the GIL.
        self._kept = itertools.count()
        self._dropped = itertools.count()
        self.count_kept = self._kept.__next__
        self.count_dropped = self._dropped.__next__
        self.lock = threading.Lock()

    @property
    def kept(self) -> int:
        return int(repr(self._kept)[6:-1])  # "count(N)"

    @property
    def dropped(self) -> int:
        return int(repr(self._dropped)[6:-1])

    @property
    def text(self) -> str:
        return "always" if self.pinned else self.rule.text

    def decide(self, trace_id: int) -> bool:
        """True = keep. Counts the decision; consumes a token for rate rules."""
        mode = self.mode
        if mode == 1:  # RATIO: the hot path for market data; same test as TraceIdRatioBased
            keep = trace_id & _MASK < self.bound
        elif mode == 0:
            keep = True
        else:
            with self.lock:
                now = time.monotonic()
                tokens = self.tokens + (now - self.last) * self.rate
                if tokens > self.burst:
                    tokens = self.burst
                self.last = now
                if tokens >= 1.0:
                    self.tokens = tokens - 1.0
                    self.count_kept()
                    return True
                self.tokens = tokens
                self.count_dropped()
                return False
        if keep:
            self.count_kept()
        else:
            self.count_dropped()
        return keep


# ------------------------------------------------------------------------ samplers


class _Grant(threading.local):
    kind = None  # the kind label a tracing helper already decided to keep on this thread


class TradingSampler(Sampler):
    """Root sampler deciding on ``trading.span.kind``; see the module docstring.

    ``rules`` maps kind names (or ``default``) to ratios, ``"N/s"`` strings or
    :class:`Rule`; it can also be an ``OTEL_TRACES_SAMPLER_ARG`` string.
    """

    def __init__(self, rules: str | dict[str, float | str | Rule] | None = None, *, report: bool = True):
        if rules is None or isinstance(rules, (str, int, float)):
            parsed, bad = parse_rules(rules)
            arg = rules
        else:
            parsed, bad, arg = {}, [], None
            for key, value in rules.items():
                key = key.value if isinstance(key, TradingSpanKind) else str(key).strip().lower()
                if isinstance(value, Rule):
                    parsed[key] = Rule(key, value.ratio, value.rate)
                    continue
                sub, sub_bad = parse_rules(f"{key}={value}")
                parsed.update(sub)
                bad.extend(sub_bad)
            if bad:
                raise ValueError(f"invalid sampling rule(s) {', '.join(bad)}: accepted {_ACCEPTED}")
        default = parsed.get("default") or Rule("default", ratio=1.0)
        self._rules = parsed
        self._default = default
        self._states: dict[str, _KindState] = {}
        lookup: dict = {}
        for kind in TradingSpanKind:
            explicit = kind.value in parsed
            state = _KindState(kind.value, parsed[kind.value] if explicit else default, kind.must_keep, explicit)
            self._states[kind.value] = state
            # str-Enum members hash by name, so look them up under both keys.
            lookup[kind.value] = state
            lookup[kind] = state
        self._other = _KindState(OTHER_KIND, default, False, False)
        self._states[OTHER_KIND] = self._other
        self._lookup = lookup
        self._grant = _Grant()
        self._description = "TradingSampler{" + ",".join(self._rule_texts()) + "}"
        _ALL_STATES.extend(self._states.values())
        register_metrics()
        if bad and report:
            _report_bad(str(arg), bad, self.rules_text())

    # -- description --------------------------------------------------------------

    def _rule_texts(self) -> list[str]:
        texts = [f"{k.value}={self._states[k.value].text}" for k in TradingSpanKind if k.value in self._rules]
        texts += [f"{k.value}=always" for k in TradingSpanKind if k.must_keep and k.value not in self._rules]
        texts.append(f"default={self._default.text}")
        return texts

    def rules_text(self) -> str:
        """The effective rules, ``kind=rule,...,default=rule``."""
        return ",".join(self._rule_texts())

    def get_description(self) -> str:
        return self._description

    def __repr__(self) -> str:
        return self._description

    def rule_for(self, kind: str | TradingSpanKind | None) -> str:
        """The effective rule text for a kind: ``always``, a ratio or ``N/s``."""
        return self._lookup.get(kind, self._other).text

    # -- decisions ------------------------------------------------------------------

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = get_current_span(parent_context).get_span_context()
        if parent is None or not parent.is_valid:
            return self._sample_root(trace_id, attributes)
        # Used without ParentBased (``trading``): decide every span by its kind.
        state = self._state(attributes)
        if state.decide(trace_id):
            return _keep(attributes, parent.trace_state)
        return SamplingResult(Decision.DROP, None, parent.trace_state)

    def _state(self, attributes: Attributes) -> _KindState:
        try:
            return self._lookup.get(attributes.get(SPAN_KIND_ATTRIBUTE), self._other) if attributes else self._other
        except TypeError:  # an unhashable attribute value (a list): not a kind
            return self._other

    def _sample_root(self, trace_id: int, attributes: Attributes) -> SamplingResult:
        try:  # _state() inlined: the root decision is the hot path
            state = self._lookup.get(attributes.get(SPAN_KIND_ATTRIBUTE), self._other) if attributes else self._other
        except TypeError:  # an unhashable attribute value (a list): not a kind
            state = self._other
        grant = self._grant
        if grant.kind is not None:
            # A tracing helper called drops_root() just before and was told to keep
            # (and that decision was counted): honour it once, for that kind.
            granted, grant.kind = grant.kind, None
            if granted == state.label:
                return _keep(attributes)
        if state.mode == 1:  # ratio, inlined: the market-data hot path
            if trace_id & _MASK < state.bound:
                state.count_kept()
                return _keep(attributes)
            state.count_dropped()
            return _DROP_ROOT
        if state.decide(trace_id):
            return _keep(attributes)
        return _DROP_ROOT

    def drops_root(self, kind: TradingSpanKind | str | None, trace_id: int) -> bool:
        """True when a ROOT span of ``kind`` with ``trace_id`` would be dropped.

        Counts the decision (and consumes a token for rate rules) exactly as
        ``should_sample`` would. When it returns False the caller must start the
        root span right away on the same thread: the next root decision on this
        thread is then "keep" without being decided or counted again (the SDK
        picks a new trace id for the span, which must not change the outcome).
        """
        state = self._lookup.get(kind, self._other)
        if state.mode == 1:  # ratio, inlined
            if trace_id & _MASK >= state.bound:
                state.count_dropped()
                return True
            state.count_kept()
        elif not state.decide(trace_id):
            return True
        self._grant.kind = state.label
        return False

    # -- counts -----------------------------------------------------------------------

    def counts(self) -> dict[tuple[str, str], int]:
        """Decisions so far: {(kind label, 'kept'|'dropped'): count}, non-zero entries only."""
        out = {}
        for label, state in self._states.items():
            kept, dropped = state.kept, state.dropped
            if kept:
                out[(label, "kept")] = kept
            if dropped:
                out[(label, "dropped")] = dropped
        return out



class ParentBasedTradingSampler(ParentBased):
    """``ParentBased`` with a :class:`TradingSampler` root, on a faster path.

    Roots are decided by the trading rules. Children (local or remote parent)
    follow the parent's sampled flag, so a trace is kept or dropped whole, with
    one exception: a must-keep kind whose rule keeps everything (``order``,
    ``execution``, ``risk``, ``reconciliation`` unless given a rule below 1) is
    kept under an unsampled parent too, with all its descendants: orders are
    never lost to market-data sampling. Such a span's parent is not exported.
    """

    def __init__(self, root: TradingSampler | None = None):
        root = root if root is not None else TradingSampler()
        super().__init__(root)
        self._trading = root
        self._description = (
            f"ParentBased{{root:{root.get_description()},remoteParentSampled:{ALWAYS_ON.get_description()},"
            f"remoteParentNotSampled:{ALWAYS_OFF.get_description()},localParentSampled:{ALWAYS_ON.get_description()},"
            f"localParentNotSampled:{ALWAYS_OFF.get_description()},"
            f"keptUnderUnsampledParent:{'|'.join(k for k, state in root._states.items() if state.promote)}}}"
        )

    @property
    def trading(self) -> TradingSampler:
        return self._trading

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = get_current_span(parent_context).get_span_context()
        if parent is None or not parent.is_valid:
            return self._trading._sample_root(trace_id, attributes)
        if parent.trace_flags.sampled:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, parent.trace_state)
        if attributes:
            state = self._trading._state(attributes)
            if state.promote:
                # An order (execution, risk, reconciliation) is never lost because the tick that caused it
                # was sampled out: it is kept, with everything under it; its parent stays unexported.
                state.count_kept()
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, parent.trace_state)
        return SamplingResult(Decision.DROP, None, parent.trace_state)

    def get_description(self) -> str:
        return self._description

    def __repr__(self) -> str:
        return self._description


# ---------------------------------------------------------------- entry points / API


def trading_sampler(arg: str | None = None) -> TradingSampler:
    """Entry point ``trading``: the trading rules for every span (no parent-based)."""
    return TradingSampler(arg)


def parentbased_trading_sampler(arg: str | None = None) -> ParentBasedTradingSampler:
    """Entry point ``parentbased_trading``: trading rules for roots, children follow."""
    return ParentBasedTradingSampler(TradingSampler(arg))


def unwrap(sampler: Sampler | None) -> TradingSampler | None:
    """The TradingSampler inside ``sampler`` (itself or a ParentBased root), else None."""
    if isinstance(sampler, TradingSampler):
        return sampler
    if isinstance(sampler, ParentBased):
        root = getattr(sampler, "_root", None)
        if isinstance(root, TradingSampler):
            return root
    return None


def current() -> TradingSampler | None:
    """The TradingSampler active on the global TracerProvider, or None."""
    provider = trace.get_tracer_provider()
    return unwrap(getattr(provider, "sampler", None))


# ---------------------------------------------------------------------- the metric

_ALL_STATES: list[_KindState] = []  # every sampler's per-kind counts (small; never dropped)
_registered: weakref.WeakSet = weakref.WeakSet()
_registered_global = False
_register_lock = forksafe.lock()


def _observe(options=None) -> Iterable[metrics.Observation]:
    totals: dict[tuple[str, str], int] = {}
    for state in list(_ALL_STATES):
        for decision, count in (("kept", state.kept), ("dropped", state.dropped)):
            if count:
                key = (state.label, decision)
                totals[key] = totals.get(key, 0) + count
    return [
        metrics.Observation(value, {SPAN_KIND_ATTRIBUTE: label, DECISION_ATTRIBUTE: decision})
        for (label, decision), value in sorted(totals.items())
    ]


def totals() -> dict[tuple[str, str], int]:
    """Decision counts of every trading sampler in this process: {(kind, decision): n}."""
    return {
        (str(o.attributes[SPAN_KIND_ATTRIBUTE]), str(o.attributes[DECISION_ATTRIBUTE])): int(o.value)
        for o in _observe()
        if o.attributes is not None
    }


def register_metrics(meter_provider: metrics.MeterProvider | None = None) -> None:
    """Export decision counts as ``trading.sampler.decisions`` on ``meter_provider``.

    Without an argument, registers once on the global meter provider (a proxy
    until the SDK installs one, which then takes the instrument over). Called by
    every TradingSampler; cheap and idempotent.
    """
    global _registered_global
    with _register_lock:
        if meter_provider is None:
            if _registered_global:
                return
            _registered_global = True
            meter_provider = metrics.get_meter_provider()
        else:
            if meter_provider in _registered:
                return
            _registered.add(meter_provider)
    meter = meter_provider.get_meter("otel_trading.sampler", __version__)
    meter.create_observable_counter(
        DECISIONS_METRIC,
        callbacks=[_observe],
        unit="{span}",
        description="Root-span sampling decisions of the trading sampler, by trading.span.kind and kept|dropped.",
    )


def _after_fork_in_child() -> None:
    for state in _ALL_STATES:
        state.reset_counts()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
