-- The RAG service's source of truth. The hnswlib indexes are derived from it.
CREATE TABLE rag.collections (
    name            text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    m               integer NOT NULL,
    ef_construction integer NOT NULL,
    ef              integer NOT NULL,
    chunk_size      integer NOT NULL,
    chunk_overlap   integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE rag.documents (
    collection  text NOT NULL REFERENCES rag.collections (name) ON DELETE CASCADE,
    id          text NOT NULL,
    text        text NOT NULL,
    metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- The ingest message that wrote this version: "<partition>:<offset>" of x0.rag.ingest.
    version     text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection, id)
);

CREATE TABLE rag.chunks (
    -- Also the hnswlib label: unique across collections, never reused.
    chunk_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    collection   text NOT NULL,
    document_id  text NOT NULL,
    ordinal      integer NOT NULL,
    start_offset integer NOT NULL,
    end_offset   integer NOT NULL,
    text         text NOT NULL,
    -- 384 float32 values, little-endian (1536 bytes): loads straight into numpy.
    embedding    bytea NOT NULL CHECK (length(embedding) = 1536),
    tsv          tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
    FOREIGN KEY (collection, document_id)
        REFERENCES rag.documents (collection, id) ON DELETE CASCADE,
    UNIQUE (collection, document_id, ordinal)
);
CREATE INDEX chunks_tsv ON rag.chunks USING gin (tsv);
CREATE INDEX chunks_collection ON rag.chunks (collection, chunk_id);

-- The writer's progress per ingest partition, updated in the same transaction as the
-- rows: a redelivered ingest message at or below it is skipped (written once).
CREATE TABLE rag.ingest_progress (
    partition    integer PRIMARY KEY,
    next_offset  bigint NOT NULL
);
