"""``python -m otel_trading.demo``."""

import sys

from otel_trading.demo import main

sys.exit(main())
