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
    resource = Resource.create(attributes)
    if not settings.redact:
        return resource
    # OTEL_RESOURCE_ATTRIBUTES and detectors (e.g. a process command line with a token) are masked
    # like span attributes: the resource goes out with every span, record and metric
    from otel_trading.redaction import get_redactor

    masked = get_redactor().redact_mapping(dict(resource.attributes))
    return resource if masked == dict(resource.attributes) else Resource(masked, resource.schema_url)
