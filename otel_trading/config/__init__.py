"""Settings: the table (one row per setting), its parsers, and the one loader."""

from otel_trading.config.loader import (
    Settings,
    apply_defaults,
    current,
    load,
    markdown_table,
    shown,
    use,
)
from otel_trading.config.table import BY_NAME, SETTINGS, Setting

__all__ = ["BY_NAME", "SETTINGS", "Setting", "Settings", "apply_defaults", "current", "load", "markdown_table", "shown", "use"]
