-- Telemetry history: raw events and per-minute rollups, both in daily partitions
-- (created and dropped by x0_telemetry.retention; never DELETE rows for retention).

-- One row per event. The key makes ingest idempotent: a redelivered or re-sent
-- event is the same (node_id, ts, type) and is skipped by ON CONFLICT DO NOTHING.
CREATE TABLE telemetry.events (
    node_id text NOT NULL,
    ts timestamptz NOT NULL,
    type text NOT NULL CHECK (type IN ('heartbeat', 'metrics')),
    mesh_id text NOT NULL,
    -- heartbeat
    status text,
    software_version text,
    -- metrics
    cpu double precision,
    memory double precision,
    rtt_ms double precision,
    packet_loss double precision,
    throughput_bps double precision,
    neighbours jsonb,
    PRIMARY KEY (node_id, ts, type)
) PARTITION BY RANGE (ts);

-- Sums and sample counts of metrics events per node and minute. Only rows that the
-- same transaction actually inserted into telemetry.events are added here, so a
-- redelivered batch adds nothing.
CREATE TABLE telemetry.rollup_1m (
    node_id text NOT NULL,
    minute timestamptz NOT NULL,
    samples integer NOT NULL,
    cpu_sum double precision NOT NULL,
    memory_sum double precision NOT NULL,
    rtt_ms_sum double precision NOT NULL,
    packet_loss_sum double precision NOT NULL,
    throughput_bps_sum double precision NOT NULL,
    PRIMARY KEY (node_id, minute)
) PARTITION BY RANGE (minute);
