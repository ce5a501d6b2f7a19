"""x0 telemetry."""
