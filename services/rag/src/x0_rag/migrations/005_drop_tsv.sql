-- Keyword search is BM25 in each replica's in-memory index (x0_rag.adapters.lexical,
-- bm25s), built from the chunks' text; nothing reads rag.chunks.tsv or its GIN index
-- any more. Both cost every chunk insert a to_tsvector and a GIN update, so they go.
DROP INDEX rag.chunks_tsv;
ALTER TABLE rag.chunks DROP COLUMN tsv;
