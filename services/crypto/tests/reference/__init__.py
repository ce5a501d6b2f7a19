"""Test-only reference implementations; nothing in the service imports them."""
