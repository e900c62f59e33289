"""The ``opentelemetry_configurator`` entry point used by ``opentelemetry-instrument``."""

from __future__ import annotations

from opentelemetry.sdk._configuration import _OTelSDKConfigurator

from otel_trading.bootstrap import configure as sdk
from otel_trading.report import report


class OtelTradingConfigurator(_OTelSDKConfigurator):
    def _configure(self, **kwargs):
        """Env vars or ``OTEL_CONFIG_FILE`` alike: ``configure.start`` decides (see ``bootstrap.declarative``)."""
        try:
            sdk.start(auto_instrumentation_version=kwargs.get("auto_instrumentation_version"))
        except Exception as exc:  # never crash the user's process at start-up
            report(f"telemetry disabled, set-up failed: {exc!r}")
