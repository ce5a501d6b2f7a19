-- Beacon key pinning: the public key each mesh node is known by (trust on first use).
-- A row is written once when a node is first seen; it changes only when the pinned key
-- signed the new one (x0_crypto.domain.beacon_verifier), by a conditional UPDATE.
CREATE TABLE crypto.node_pins (
    node_id     text        PRIMARY KEY,
    public_key  bytea       NOT NULL,
    pinned_at   timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
