-- Tenancy: every node (its events and rollups) belongs to one tenant; the same node id
-- in two tenants is two nodes. Rows from before, and events published without a
-- principal, belong to the tenant 'default' (X0_TELEMETRY_DEFAULT_TENANT).

ALTER TABLE telemetry.events DROP CONSTRAINT events_pkey;
ALTER TABLE telemetry.events ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE telemetry.events ADD PRIMARY KEY (tenant, node_id, ts, type);

ALTER TABLE telemetry.rollup_1m DROP CONSTRAINT rollup_1m_pkey;
ALTER TABLE telemetry.rollup_1m ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE telemetry.rollup_1m ADD PRIMARY KEY (tenant, node_id, minute);
