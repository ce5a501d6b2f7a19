"""Hybrid constructions: X-Wing (KEM) and Ed25519+ML-DSA-65 (signature)."""
