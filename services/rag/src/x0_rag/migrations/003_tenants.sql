-- Tenancy: every collection (with its documents and chunks) belongs to one tenant; the
-- same name in two tenants is two collections. Rows from before belong to the tenant
-- 'default' (the columns' default, which also covers rows written without one).

ALTER TABLE rag.chunks DROP CONSTRAINT chunks_collection_document_id_fkey;
ALTER TABLE rag.chunks DROP CONSTRAINT chunks_collection_document_id_ordinal_key;
ALTER TABLE rag.documents DROP CONSTRAINT documents_collection_fkey;
ALTER TABLE rag.documents DROP CONSTRAINT documents_pkey;
ALTER TABLE rag.collections DROP CONSTRAINT collections_pkey;
DROP INDEX rag.chunks_collection;

ALTER TABLE rag.collections ADD COLUMN tenant text NOT NULL DEFAULT 'default'
    CHECK (tenant ~ '^[a-z0-9][a-z0-9-]{0,62}$');
ALTER TABLE rag.documents ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE rag.chunks ADD COLUMN tenant text NOT NULL DEFAULT 'default';
-- The ingest log names the tenant of the collection each message wrote to.
ALTER TABLE rag.ingest_log ADD COLUMN tenant text NOT NULL DEFAULT 'default';

ALTER TABLE rag.collections ADD PRIMARY KEY (tenant, name);
ALTER TABLE rag.documents ADD PRIMARY KEY (tenant, collection, id);
ALTER TABLE rag.documents ADD CONSTRAINT documents_collection_fkey
    FOREIGN KEY (tenant, collection) REFERENCES rag.collections (tenant, name)
    ON DELETE CASCADE;
ALTER TABLE rag.chunks ADD CONSTRAINT chunks_document_ordinal_key
    UNIQUE (tenant, collection, document_id, ordinal);
ALTER TABLE rag.chunks ADD CONSTRAINT chunks_document_fkey
    FOREIGN KEY (tenant, collection, document_id)
    REFERENCES rag.documents (tenant, collection, id) ON DELETE CASCADE;
CREATE INDEX chunks_collection ON rag.chunks (tenant, collection, chunk_id);
