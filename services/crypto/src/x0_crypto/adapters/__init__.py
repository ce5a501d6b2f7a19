"""Storage behind the domain's Protocols (:mod:`x0_crypto.domain.ports`): PostgreSQL
for what must survive restarts, Redis for what only matters within a time window."""
