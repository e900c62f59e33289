"""``python -m otel_trading.config``: regenerate ``config/typed.py`` from the settings table."""

from pathlib import Path

from otel_trading.config.loader import typed_source

Path(__file__).with_name("typed.py").write_text(typed_source())
