"""x0 gateway."""
