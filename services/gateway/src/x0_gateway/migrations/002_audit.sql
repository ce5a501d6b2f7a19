-- The audit trail (docs/security.md, Audit): what the gateway's audit consumer copies
-- from the Kafka topic x0.audit. Append-only: a trigger refuses every UPDATE, DELETE
-- and TRUNCATE, for every role, the gateway's own included. Records leave only with
-- their month: the consumer drops a month's partition once the month is older than
-- X0_GATEWAY_AUDIT__RETENTION_DAYS (a DROP, never a DELETE).

CREATE TABLE gateway.audit_log (
    id uuid NOT NULL,
    -- The request's two records (attempt, outcome) share it.
    request_id uuid NOT NULL,
    at timestamptz NOT NULL,
    stage text NOT NULL CHECK (stage IN ('attempt', 'outcome')),
    operation text NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('attempted', 'succeeded', 'failed', 'denied')),
    status smallint,
    code text,
    tenant text,
    subject text,
    resource_type text,
    -- An id, or hmac-sha256:<hex> of a name callers chose (key and collection names).
    resource text,
    trace_id text,
    client_address text,
    stored_at timestamptz NOT NULL DEFAULT now(),
    -- A redelivered record is stored once (the partition key must be in the key).
    PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);

CREATE INDEX audit_log_by_time ON gateway.audit_log (at, id);
CREATE INDEX audit_log_by_subject ON gateway.audit_log (subject, at);
CREATE INDEX audit_log_by_resource ON gateway.audit_log (resource, at);
CREATE INDEX audit_log_by_tenant ON gateway.audit_log (tenant, at);

CREATE FUNCTION gateway.audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'gateway.audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- Row triggers of a partitioned table are cloned onto each partition, present and
-- future; the TRUNCATE trigger is added to each partition as the consumer creates it.
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON gateway.audit_log
    FOR EACH ROW EXECUTE FUNCTION gateway.audit_log_refuse();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON gateway.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION gateway.audit_log_refuse();
