-- Files, part 2 (issue 17): per-agent caps on open files, and hybrid search over file chunks.
--
-- Letta's max_files_open and per_file_view_window_char_limit: how many files an agent keeps open at
-- once (opening one more closes the least recently used) and how many characters of each open file
-- it sees. Existing agents keep the caps every agent had before (5 files, 12,000 characters).
ALTER TABLE agents
    ADD COLUMN max_files_open integer NOT NULL DEFAULT 5 CHECK (max_files_open BETWEEN 1 AND 50),
    ADD COLUMN per_file_view_window_char_limit integer NOT NULL DEFAULT 12000
        CHECK (per_file_view_window_char_limit BETWEEN 500 AND 100000);

-- File chunks are searched by the same hybrid engine as archival memory (o/store/search.py): BM25
-- over search_tsv fused with the cosine of the vector. The engine names rows by a text id and reads
-- each row's BM25 length (search_len); the statistics are kept per folder, by statement triggers
-- like the archives' (a search over several attached folders sums them: one idf over every chunk
-- searched). Chunks of a file still being embedded count in the statistics (a search never returns
-- them: it reads completed files only).
ALTER TABLE file_chunks
    ADD COLUMN id text GENERATED ALWAYS AS (file_id || ':' || seq::text) STORED,
    ADD COLUMN search_len real NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX file_chunks_id ON file_chunks (id);
-- chunks have no context words (weight D), so a chunk's length is its number of word positions
UPDATE file_chunks c
SET search_len = (SELECT coalesce(sum(cardinality(u.positions)), 0) FROM unnest(c.search_tsv) u);

CREATE TABLE folder_corpus_stats (
    folder_id text PRIMARY KEY REFERENCES folders(id) ON DELETE CASCADE,
    docs      bigint NOT NULL DEFAULT 0,
    total_len double precision NOT NULL DEFAULT 0
);

CREATE TABLE folder_term_stats (
    folder_id text NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    lexeme    text NOT NULL,
    df        integer NOT NULL,
    PRIMARY KEY (folder_id, lexeme)
);

INSERT INTO folder_corpus_stats (folder_id, docs, total_len)
SELECT c.folder_id, count(*), sum(c.search_len)
FROM file_chunks c JOIN folders f ON f.id = c.folder_id
WHERE length(c.search_tsv) > 0 GROUP BY 1;
INSERT INTO folder_term_stats (folder_id, lexeme, df)
SELECT c.folder_id, u.lexeme, count(*)
FROM file_chunks c JOIN folders f ON f.id = c.folder_id, unnest(c.search_tsv) u
WHERE length(c.search_tsv) > 0 GROUP BY 1, 2;

-- docs.agent_id holds the folder's id here; upserts in key order, as o_search_stats_apply does.
CREATE FUNCTION o_folder_stats_apply(docs o_search_doc[], p_sign integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF docs IS NULL OR cardinality(docs) = 0 THEN
        RETURN;
    END IF;
    IF p_sign > 0 THEN
        INSERT INTO folder_corpus_stats AS s (folder_id, docs, total_len)
        SELECT d.agent_id, count(*), sum(d.search_len)
        FROM unnest(docs) d
        GROUP BY 1 ORDER BY 1
        ON CONFLICT (folder_id) DO UPDATE
            SET docs = s.docs + EXCLUDED.docs, total_len = s.total_len + EXCLUDED.total_len;
        INSERT INTO folder_term_stats AS s (folder_id, lexeme, df)
        SELECT d.agent_id, u.lexeme, count(*)
        FROM unnest(docs) d, unnest(d.search_tsv) u
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (folder_id, lexeme) DO UPDATE SET df = s.df + EXCLUDED.df;
    ELSE
        UPDATE folder_corpus_stats s
        SET docs = greatest(s.docs - d.n, 0), total_len = greatest(s.total_len - d.len, 0)
        FROM (SELECT x.agent_id, count(*) AS n, sum(x.search_len) AS len
              FROM unnest(docs) x GROUP BY 1) d
        WHERE s.folder_id = d.agent_id;
        UPDATE folder_term_stats s
        SET df = s.df - d.n
        FROM (SELECT x.agent_id, u.lexeme, count(*) AS n
              FROM unnest(docs) x, unnest(x.search_tsv) u GROUP BY 1, 2) d
        WHERE s.folder_id = d.agent_id AND s.lexeme = d.lexeme;
        DELETE FROM folder_term_stats s
        USING (SELECT DISTINCT x.agent_id FROM unnest(docs) x) d
        WHERE s.folder_id = d.agent_id AND s.df <= 0;
    END IF;
END $$;

-- Chunks are inserted and deleted, never changed in place (a replaced file's chunks are deleted
-- and written anew); an UPDATE is still counted out and in again.
CREATE FUNCTION o_file_chunk_stats_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    added o_search_doc[];
    removed o_search_doc[];
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        SELECT array_agg(ROW(o.folder_id, o.search_tsv, o.search_len)::o_search_doc)
        INTO removed FROM old_rows o WHERE length(o.search_tsv) > 0;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT array_agg(ROW(n.folder_id, n.search_tsv, n.search_len)::o_search_doc)
        INTO added FROM new_rows n WHERE length(n.search_tsv) > 0;
    END IF;
    PERFORM o_folder_stats_apply(removed, -1);
    PERFORM o_folder_stats_apply(added, 1);
    RETURN NULL;
END $$;

CREATE TRIGGER file_chunks_search_stats_ins AFTER INSERT ON file_chunks
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION o_file_chunk_stats_trigger();
CREATE TRIGGER file_chunks_search_stats_del AFTER DELETE ON file_chunks
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION o_file_chunk_stats_trigger();
CREATE TRIGGER file_chunks_search_stats_upd AFTER UPDATE ON file_chunks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION o_file_chunk_stats_trigger();
