-- What became of each ingest message, for whoever sent it: the gateway's answer to
-- an ingest with ``wait=true`` and GET /v1/rag/collections/{name}/ingests/{version}
-- (any gateway replica asks any rag replica; the row is the one answer).
--
-- Written in the transaction that applies or refuses the message (beside its
-- rag.ingest_log row), so an outcome exists exactly when the message's effect does;
-- a message the writer dead-letters gets a 'refused' row with code 'dead_lettered'
-- when the database takes it (a later real outcome of the same offset replaces it).
-- Rows older than the writer's retention (7 days) are pruned; rag.ingest_log keeps
-- its own, shorter, count-based window for replays.
CREATE TABLE rag.ingest_outcomes (
    topic        text    NOT NULL,
    partition    integer NOT NULL,
    position     bigint  NOT NULL,   -- the ingest message's offset
    tenant       text    NOT NULL,
    collection   text    NOT NULL,
    status       text    NOT NULL CHECK (status IN ('applied', 'refused')),
    code         text,               -- a refusal's reason code (collection_not_found, ...)
    message      text,               -- a refusal's message
    document_id  text,               -- the document whose check refused the message, if one
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, position),
    CHECK ((status = 'refused') = (code IS NOT NULL))
);
CREATE INDEX ingest_outcomes_recorded_at ON rag.ingest_outcomes (recorded_at);
