-- Archival bulk insert (issue 19): only large owners' passages are in the HNSW graph.
--
-- An owner (agent or archive) with at most 15,000 indexed rows is searched exactly through its btree
-- (o/store/search_vectors.py, EXACT_MAX_ROWS) and never walks the graph, yet every passage paid the
-- HNSW insert: 1.1-2.5 ms of backend CPU a 384-d row, three quarters of an insert's cost
-- (bench/search_scale.py). Now a row is in the graph only when ``in_graph`` is set, and the vector
-- indexes are partial over those rows; the search for a large owner adds ``p.in_graph``.
--
-- Who sets it: insert_many sets it on the rows it inserts when the owner's count goes over the
-- threshold; the trigger below keeps the rule whatever the path (insert_many, a bundle's COPY, a
-- plain INSERT): after each INSERT statement, an owner that is over the threshold gets this
-- statement's rows that are not yet in the graph added, and an owner that crossed it in this
-- statement gets all its rows added (each row's graph insert paid once, on that crossing). It runs
-- after the statistics trigger (triggers fire in name order: passages_search_stats_ins first), so
-- the owner's count is the one that trigger just wrote, under its row lock: two transactions that
-- together cross the threshold are ordered
-- there, and the second one sees the first one's rows (READ COMMITTED: each statement of a function
-- takes a new snapshot). The statistics trigger ignores these updates (words and owner unchanged).
-- An owner that shrinks below the threshold keeps its rows in the graph: it is searched exactly
-- again, and the rows it gets while small are added if it crosses again.
-- The threshold is ``o.graph_min_rows`` when a session sets it (tests), else 15,000, which must equal
-- EXACT_MAX_ROWS (a test checks it).
CREATE FUNCTION o_graph_min_rows() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('o.graph_min_rows', true), '')::bigint, 15000)
$$;

ALTER TABLE passages ADD COLUMN in_graph boolean NOT NULL DEFAULT false;

CREATE FUNCTION o_passages_to_graph() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    threshold bigint := o_graph_min_rows();
    o record;
BEGIN
    FOR o IN
        SELECT a.agent_id, a.archive_id, a.added, a.all_in,
               CASE WHEN a.agent_id IS NOT NULL
                    THEN (SELECT s.docs FROM search_corpus_stats s WHERE s.agent_id = a.agent_id AND s.corpus = 'archival')
                    ELSE (SELECT s.docs FROM archive_corpus_stats s WHERE s.archive_id = a.archive_id) END AS docs
        FROM (SELECT n.agent_id, n.archive_id,
                     count(*) FILTER (WHERE length(n.search_tsv) > 0) AS added, bool_and(n.in_graph) AS all_in
              FROM new_rows n GROUP BY 1, 2 ORDER BY 1, 2) a
    LOOP
        CONTINUE WHEN o.docs IS NULL OR o.docs <= threshold;
        IF o.docs - o.added <= threshold THEN
            -- crossed in this statement: every row of the owner joins the graph once
            IF o.agent_id IS NOT NULL THEN
                UPDATE passages SET in_graph = true WHERE agent_id = o.agent_id AND NOT in_graph;
            ELSE
                UPDATE passages SET in_graph = true WHERE archive_id = o.archive_id AND NOT in_graph;
            END IF;
        ELSIF NOT o.all_in THEN
            UPDATE passages p SET in_graph = true
            FROM new_rows n
            WHERE p.id = n.id AND NOT n.in_graph
              AND n.agent_id IS NOT DISTINCT FROM o.agent_id AND n.archive_id IS NOT DISTINCT FROM o.archive_id;
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER passages_to_graph AFTER INSERT ON passages
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION o_passages_to_graph();

-- Existing databases: the rows of owners already over the threshold join the graph, the others
-- leave it. The old indexes go first so that this update does not maintain them.
DROP INDEX passages_emb_384;
DROP INDEX passages_emb_768;
DROP INDEX passages_emb_1024;
DROP INDEX passages_emb_1536;
DROP INDEX passages_emb_3072;
UPDATE passages p SET in_graph = true
WHERE p.agent_id IN (SELECT s.agent_id FROM search_corpus_stats s WHERE s.corpus = 'archival' AND s.docs > 15000)
   OR p.archive_id IN (SELECT s.archive_id FROM archive_corpus_stats s WHERE s.docs > 15000);
CREATE INDEX passages_emb_384  ON passages USING hnsw (embedding_384 vector_cosine_ops) WHERE in_graph;
CREATE INDEX passages_emb_768  ON passages USING hnsw (embedding_768 vector_cosine_ops) WHERE in_graph;
CREATE INDEX passages_emb_1024 ON passages USING hnsw (embedding_1024 vector_cosine_ops) WHERE in_graph;
CREATE INDEX passages_emb_1536 ON passages USING hnsw (embedding_1536 vector_cosine_ops) WHERE in_graph;
CREATE INDEX passages_emb_3072 ON passages USING hnsw (embedding_3072 halfvec_cosine_ops) WHERE in_graph;

-- The statistics of inserted passages, read straight from the statement's rows: the general
-- trigger (schema 015, still used for updates and deletes) first copies every row's tsvector into an
-- array of o_search_doc and unnests it again, and unnests each tsvector with its positions and
-- weights where only the lexemes count. Same counts, same lock order (agents' corpus row, their
-- lexemes in key order, then the archives'); measured with bench/search_scale.py's passages
-- (words plus 2 + 2 neighbours' as context): about 60 of the trigger's 95-170 µs a row less.
CREATE FUNCTION o_passage_stats_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_corpus_stats AS s (agent_id, corpus, docs, total_len)
    SELECT n.agent_id, 'archival', count(*), sum(n.search_len)
    FROM new_rows n WHERE n.agent_id IS NOT NULL AND length(n.search_tsv) > 0
    GROUP BY 1 ORDER BY 1
    ON CONFLICT (agent_id, corpus) DO UPDATE
        SET docs = s.docs + EXCLUDED.docs, total_len = s.total_len + EXCLUDED.total_len;
    INSERT INTO search_term_stats AS s (agent_id, corpus, lexeme, df)
    SELECT n.agent_id, 'archival', u.lexeme, count(*)
    FROM new_rows n, unnest(tsvector_to_array(n.search_tsv)) u(lexeme)
    WHERE n.agent_id IS NOT NULL
    GROUP BY 1, 3 ORDER BY 1, 3
    ON CONFLICT (agent_id, corpus, lexeme) DO UPDATE SET df = s.df + EXCLUDED.df;
    INSERT INTO archive_corpus_stats AS s (archive_id, docs, total_len)
    SELECT n.archive_id, count(*), sum(n.search_len)
    FROM new_rows n WHERE n.archive_id IS NOT NULL AND length(n.search_tsv) > 0
    GROUP BY 1 ORDER BY 1
    ON CONFLICT (archive_id) DO UPDATE
        SET docs = s.docs + EXCLUDED.docs, total_len = s.total_len + EXCLUDED.total_len;
    INSERT INTO archive_term_stats AS s (archive_id, lexeme, df)
    SELECT n.archive_id, u.lexeme, count(*)
    FROM new_rows n, unnest(tsvector_to_array(n.search_tsv)) u(lexeme)
    WHERE n.archive_id IS NOT NULL
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (archive_id, lexeme) DO UPDATE SET df = s.df + EXCLUDED.df;
    RETURN NULL;
END $$;

DROP TRIGGER passages_search_stats_ins ON passages;
CREATE TRIGGER passages_search_stats_ins AFTER INSERT ON passages
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION o_passage_stats_inserted();
