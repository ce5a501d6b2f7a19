-- Who may call the gateway: tenants and their API keys (docs/security.md).
--
-- A key's secret is never stored: only HMAC-SHA-256(pepper, key), the pepper being a
-- gateway setting (X0_GATEWAY_API_KEY_PEPPER). A database dump alone therefore lets
-- no one call the API, and cannot be brute-forced (the keys carry 256 random bits).

CREATE TABLE gateway.tenants (
    -- x0_common.principal.TENANT_PATTERN, kept here too so no code path stores another.
    id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Per-tenant limits (managed keys, collections, nodes ...), filled in by the quotas.
    quotas jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- Existing data, and callers of a single-tenant deployment, belong to this tenant.
INSERT INTO gateway.tenants (id, name) VALUES ('default', 'Default tenant');

CREATE TABLE gateway.api_keys (
    id uuid PRIMARY KEY,
    -- HMAC-SHA-256(pepper, key): 32 bytes, unique, the lookup key of every request.
    digest bytea NOT NULL UNIQUE CHECK (length(digest) = 32),
    -- The key's first characters (its prefix and 4 more), to recognise it in a list.
    hint text NOT NULL,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    tenant text NOT NULL REFERENCES gateway.tenants (id),
    scopes text[] NOT NULL,
    -- The development admin key `make up` creates: a production gateway refuses to
    -- start while one that is not revoked exists.
    development boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Written at most once a minute per key, off the request path.
    last_used_at timestamptz,
    expires_at timestamptz,
    revoked_at timestamptz,
    CHECK (expires_at IS NULL OR expires_at > created_at)
);

CREATE INDEX api_keys_by_tenant ON gateway.api_keys (tenant, created_at);
