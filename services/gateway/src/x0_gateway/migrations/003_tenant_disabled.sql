-- A tenant can be disabled (x0-gateway-admin disable-tenant): while disabled_at is set,
-- every credential of the tenant is refused, API keys and JWTs alike (docs/security.md).
ALTER TABLE gateway.tenants ADD COLUMN disabled_at timestamptz;
