"""Instrumentors for the libraries trading bots are built on (``opentelemetry_instrumentor`` entry points).

``opentelemetry-instrument`` turns each on when its library is installed;
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=ccxt,alpaca`` turns them off.
"""
