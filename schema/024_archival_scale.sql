-- Archival search at a million passages (issue 19): what made one agent's search slow in a large
-- organization, measured with bench/search_scale.py.
--
-- 1. A passage row with its text and search_tsv is over Postgres's 2 kB tuple threshold, so the
--    toaster moved the 1.5 kB 384-d vector (uncompressible, the widest attribute) out of line: every
--    exact distance paid a TOAST index probe and a second page (≈ 2.7 buffers per row). STORAGE MAIN
--    keeps the vector in the row and lets the text and words move out instead (new and updated
--    rows; existing rows keep their layout until rewritten, and read correctly either way).
--    Wider vectors stay as they were: a 1536-d vector alone fills 6 kB of an 8 kB page.
--    With the vector kept, the toaster moved search_tsv out instead (577 MB of TOAST at 2M rows), and
--    the BM25 scoring of each matched row fetched it from TOAST (≈ 3.6 buffers a row): a passage of
--    typical length (≈ 2.3 kB with its 384-d vector) now stays whole in its page, and only rows over
--    4 kB are compressed or moved out.
ALTER TABLE passages ALTER COLUMN embedding_384 SET STORAGE MAIN;
ALTER TABLE passages ALTER COLUMN embedding_768 SET STORAGE MAIN;
ALTER TABLE passages SET (toast_tuple_target = 4080);

-- 2. The full-text half matched the query's words across the whole table (one GIN on search_tsv)
--    and filtered the owner afterwards: an agent among 100 fetched the matches of all 100. The owner
--    as a GIN key next to the words (both built-in opclasses: array_ops and tsvector_ops; btree_gin
--    is not needed) lets one index scan intersect the owner's posting list with the words'.
CREATE INDEX passages_owner_search_tsv ON passages
    USING gin ((ARRAY[coalesce(agent_id, archive_id)]), search_tsv);
DROP INDEX passages_search_tsv;
