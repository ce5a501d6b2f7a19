"""The caller classes, one module per domain; ``base.X0User`` is what they share."""
