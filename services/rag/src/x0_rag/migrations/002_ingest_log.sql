-- The writer's progress is kept per (topic, partition): 001 keyed it by partition
-- alone, so the offsets of another ingest topic (a recreated or renamed one, or a
-- test's own) would count as already applied.
ALTER TABLE rag.ingest_progress ADD COLUMN topic text NOT NULL DEFAULT 'x0.rag.ingest';
ALTER TABLE rag.ingest_progress DROP CONSTRAINT ingest_progress_pkey;
ALTER TABLE rag.ingest_progress ADD PRIMARY KEY (topic, partition);
ALTER TABLE rag.ingest_progress ALTER COLUMN topic DROP DEFAULT;

-- What each applied ingest message did, written in the transaction that applied it.
-- A redelivered message (the writer crashed after the commit, before its index event
-- was acknowledged) re-publishes its event from this row and the current chunks:
-- the chunk ids it removed exist nowhere else once their rows are gone. Rows far
-- behind the partition's progress are pruned by the writer.
CREATE TABLE rag.ingest_log (
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    position    bigint  NOT NULL,   -- the ingest message's offset
    collection  text    NOT NULL,
    kind        text    NOT NULL CHECK (kind IN ('upsert', 'delete', 'drop', 'refused')),
    removed     bigint[] NOT NULL DEFAULT '{}',
    error       text,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, position)
);
