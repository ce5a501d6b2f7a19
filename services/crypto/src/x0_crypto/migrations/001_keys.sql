-- Managed keys (HashiCorp Vault's Transit engine is the model).
--
-- A key is a name, a type and settings; each rotation adds a version. A version's
-- public key is stored as is; its secret key only sealed (x0_crypto.domain.envelope:
-- a per-version data key under the service's KEK, bound to name, version and type).

CREATE TABLE crypto.keys (
    -- The contract's KeyName pattern, kept here too so no code path can store another.
    name text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
    type text NOT NULL CHECK (type IN (
        'ML-KEM-512', 'ML-KEM-768', 'ML-KEM-1024', 'X-Wing',
        'ML-DSA-44', 'ML-DSA-65', 'ML-DSA-87', 'Ed25519+ML-DSA-65'
    )),
    exportable boolean NOT NULL DEFAULT false,
    deletion_allowed boolean NOT NULL DEFAULT false,
    -- NULL: never rotated automatically.
    auto_rotate_period_seconds integer
        CHECK (auto_rotate_period_seconds IS NULL OR auto_rotate_period_seconds > 0),
    min_decryption_version integer NOT NULL DEFAULT 1 CHECK (min_decryption_version >= 1),
    latest_version integer NOT NULL CHECK (latest_version >= 1),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Idempotency of create: the same request id names the same key.
    create_request_id text UNIQUE,
    CHECK (min_decryption_version <= latest_version)
);

CREATE TABLE crypto.key_versions (
    name text NOT NULL REFERENCES crypto.keys (name) ON DELETE CASCADE,
    version integer NOT NULL CHECK (version >= 1),
    public_key bytea NOT NULL,
    -- Envelope format (x0_crypto.domain.envelope): never the secret key in the clear.
    encrypted_secret_key bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

-- Every key's latest version exists, checked at commit: a key row without its
-- version (a half-written create, rotate or restore) cannot be committed.
ALTER TABLE crypto.keys
    ADD CONSTRAINT keys_latest_version_exists
    FOREIGN KEY (name, latest_version) REFERENCES crypto.key_versions (name, version)
    DEFERRABLE INITIALLY DEFERRED;

-- The auto-rotation sweep looks only at keys that have a period.
CREATE INDEX keys_auto_rotate ON crypto.keys (name) WHERE auto_rotate_period_seconds IS NOT NULL;
