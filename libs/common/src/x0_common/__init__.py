"""x0 common."""
