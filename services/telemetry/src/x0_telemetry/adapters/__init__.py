"""Stores: PostgreSQL history (``history``, ``partitions``) and Redis latest state (``latest``)."""
