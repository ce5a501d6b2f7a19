"""x0 crypto."""
