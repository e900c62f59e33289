"""The resource every signal carries: who is emitting, for which desk."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.resources import Resource

from otel_trading import __version__

if TYPE_CHECKING:
    from otel_trading.redaction import Redactor

DISTRO_NAME = "otel-trading"

COMMAND_ARGS = "process.command_args"
COMMAND_LINE = "process.command_line"
_TRADING_ATTRIBUTES = {
    "desk": "trading.desk",
    "strategy_set": "trading.strategy_set",
    "venue": "trading.venue",
    "account_alias": "trading.account.alias",
}


def build(settings, auto_instrumentation_version: str | None = None) -> Resource:
    """The SDK's resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, detectors) plus ours."""
    attributes = {"telemetry.distro.name": DISTRO_NAME, "telemetry.distro.version": __version__}
    if auto_instrumentation_version:
        attributes["telemetry.auto.version"] = auto_instrumentation_version
    for name, key in _TRADING_ATTRIBUTES.items():
        if getattr(settings, name):
            attributes[key] = getattr(settings, name)
    resource = Resource.create(attributes)
    return redacted(resource) if settings.redact else resource


def redacted(resource: Resource) -> Resource:
    """OTEL_RESOURCE_ATTRIBUTES and detectors' attributes (e.g. a process command line with a token) masked
    like span attributes: the resource goes out with every span, record and metric."""
    from otel_trading.redaction import get_redactor  # late: SDK modules read the environment at import

    redactor = get_redactor()
    masked = redactor.redact_mapping(_command_masked(dict(resource.attributes), redactor))
    return resource if masked == dict(resource.attributes) else Resource(masked, resource.schema_url)


def keep_redacted(provider: Any) -> None:
    """In a forked child the SDK's providers re-run the process-dependent detectors and merge what they
    find into their resource (``_update_resource``): that resource is redacted first, like the one built here."""
    update = getattr(provider, "_update_resource", None)
    if update is None:
        return

    def update_redacted(resource: Resource) -> None:
        update(redacted(resource))

    provider._update_resource = update_redacted


def _command_masked(attributes: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """``process.command_args`` / ``process.command_line`` (set by a detector that includes them) with the
    value after a secret-looking option masked: ``--api-key XYZ`` is two items no value rule can judge alone."""
    args = attributes.get(COMMAND_ARGS)
    if isinstance(args, (list, tuple)):
        attributes[COMMAND_ARGS] = tuple(redactor.redact_argv(args))
    line = attributes.get(COMMAND_LINE)
    if isinstance(line, str):
        attributes[COMMAND_LINE] = " ".join(redactor.redact_argv(line.split(" ")))
    return attributes
