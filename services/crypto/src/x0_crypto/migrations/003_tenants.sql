-- Tenancy: every managed key and node pin belongs to one tenant; the same name in two
-- tenants is two keys. Rows from before belong to the tenant 'default' (the column's
-- default, which also covers rows an operator writes without naming a tenant).

ALTER TABLE crypto.keys DROP CONSTRAINT keys_latest_version_exists;
ALTER TABLE crypto.key_versions DROP CONSTRAINT key_versions_name_fkey;
ALTER TABLE crypto.key_versions DROP CONSTRAINT key_versions_pkey;
ALTER TABLE crypto.keys DROP CONSTRAINT keys_pkey;
ALTER TABLE crypto.keys DROP CONSTRAINT keys_create_request_id_key;
DROP INDEX crypto.keys_auto_rotate;

ALTER TABLE crypto.keys ADD COLUMN tenant text NOT NULL DEFAULT 'default'
    CHECK (tenant ~ '^[a-z0-9][a-z0-9-]{0,62}$');
ALTER TABLE crypto.key_versions ADD COLUMN tenant text NOT NULL DEFAULT 'default';

ALTER TABLE crypto.keys ADD PRIMARY KEY (tenant, name);
-- A request id names one key of its tenant: another tenant's id can never replay it.
ALTER TABLE crypto.keys ADD CONSTRAINT keys_create_request_id_key
    UNIQUE (tenant, create_request_id);
ALTER TABLE crypto.key_versions ADD PRIMARY KEY (tenant, name, version);
ALTER TABLE crypto.key_versions ADD CONSTRAINT key_versions_key_fkey
    FOREIGN KEY (tenant, name) REFERENCES crypto.keys (tenant, name) ON DELETE CASCADE;
ALTER TABLE crypto.keys
    ADD CONSTRAINT keys_latest_version_exists
    FOREIGN KEY (tenant, name, latest_version)
    REFERENCES crypto.key_versions (tenant, name, version)
    DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX keys_auto_rotate ON crypto.keys (tenant, name)
    WHERE auto_rotate_period_seconds IS NOT NULL;

-- Node pins: a node id names one node of its tenant.
ALTER TABLE crypto.node_pins DROP CONSTRAINT node_pins_pkey;
ALTER TABLE crypto.node_pins ADD COLUMN tenant text NOT NULL DEFAULT 'default'
    CHECK (tenant ~ '^[a-z0-9][a-z0-9-]{0,62}$');
ALTER TABLE crypto.node_pins ADD PRIMARY KEY (tenant, node_id);
