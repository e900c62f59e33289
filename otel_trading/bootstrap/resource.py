"""The resource every signal carries: who is emitting, for which desk."""

from __future__ import annotations

from importlib.metadata import version

from opentelemetry.sdk.resources import Resource

DISTRO_NAME = "otel-trading"
DISTRO_VERSION = version("otel-trading")

_TRADING_ATTRIBUTES = {
    "desk": "trading.desk",
    "strategy_set": "trading.strategy_set",
    "venue": "trading.venue",
    "account_alias": "trading.account.alias",
}


def build(settings, auto_instrumentation_version: str | None = None) -> Resource:
    """The SDK's resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, detectors) plus ours."""
    attributes = {"telemetry.distro.name": DISTRO_NAME, "telemetry.distro.version": DISTRO_VERSION}
    if auto_instrumentation_version:
        attributes["telemetry.auto.version"] = auto_instrumentation_version
    for name, key in _TRADING_ATTRIBUTES.items():
        if getattr(settings, name):
            attributes[key] = getattr(settings, name)
    return Resource.create(attributes)
