"""The trading vocabulary: span kinds, `trading.*` attributes, span helpers, metrics, propagation."""
