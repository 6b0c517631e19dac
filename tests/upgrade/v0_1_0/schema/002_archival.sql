-- Archival and recall search (issue 4).
--
-- Vectors: one column and one HNSW cosine index per supported width (384, 768, 1024, 1536, and
-- 3072 as halfvec because HNSW on vector stops at 2,000 dims). A vector of another size is stored
-- zero-padded in the next wider column, which leaves cosine similarity unchanged. embedding_dim and
-- embedding_model say what a row holds; searches compare only rows of the agent's current model.
--
-- Full text: search_tsv is the passage's own words with weight A plus the words of its neighbours
-- (passages inserted in the same batch, or the previous messages of a conversation) with weight D.
-- Ranking is BM25, so every agent keeps document frequencies per lexeme and corpus; triggers keep
-- those statistics exact under inserts, deletes and re-indexing, whoever writes the rows.

ALTER TABLE passages
    ADD COLUMN embedding_dim  integer,
    ADD COLUMN embedding_384  vector(384),
    ADD COLUMN embedding_768  vector(768),
    ADD COLUMN embedding_1024 vector(1024),
    ADD COLUMN embedding_1536 vector(1536),
    ADD COLUMN embedding_3072 halfvec(3072),
    ADD COLUMN search_tsv     tsvector NOT NULL DEFAULT ''::tsvector,
    -- BM25 document length: own tokens plus context tokens at their (lower) weight
    ADD COLUMN search_len     real NOT NULL DEFAULT 0,
    ADD COLUMN updated_at     timestamptz NOT NULL DEFAULT now();

CREATE INDEX passages_emb_384  ON passages USING hnsw (embedding_384 vector_cosine_ops);
CREATE INDEX passages_emb_768  ON passages USING hnsw (embedding_768 vector_cosine_ops);
CREATE INDEX passages_emb_1024 ON passages USING hnsw (embedding_1024 vector_cosine_ops);
CREATE INDEX passages_emb_1536 ON passages USING hnsw (embedding_1536 vector_cosine_ops);
CREATE INDEX passages_emb_3072 ON passages USING hnsw (embedding_3072 halfvec_cosine_ops);
CREATE INDEX passages_search_tsv ON passages USING gin (search_tsv);
CREATE INDEX passages_tags ON passages USING gin (tags);
CREATE INDEX passages_agent_id ON passages (agent_id, id);

-- Recall: messages are indexed after they are written (search_tsv NULL = not indexed yet), so the
-- message write path stays as fast as before and a crash never leaves a half-indexed message.
ALTER TABLE messages
    ADD COLUMN embedding_dim   integer,
    ADD COLUMN embedding_model text,
    ADD COLUMN embedding_384   vector(384),
    ADD COLUMN embedding_768   vector(768),
    ADD COLUMN embedding_1024  vector(1024),
    ADD COLUMN embedding_1536  vector(1536),
    ADD COLUMN embedding_3072  halfvec(3072),
    ADD COLUMN search_tsv      tsvector,
    ADD COLUMN search_len      real;

CREATE INDEX messages_emb_384  ON messages USING hnsw (embedding_384 vector_cosine_ops);
CREATE INDEX messages_emb_768  ON messages USING hnsw (embedding_768 vector_cosine_ops);
CREATE INDEX messages_emb_1024 ON messages USING hnsw (embedding_1024 vector_cosine_ops);
CREATE INDEX messages_emb_1536 ON messages USING hnsw (embedding_1536 vector_cosine_ops);
CREATE INDEX messages_emb_3072 ON messages USING hnsw (embedding_3072 halfvec_cosine_ops);
CREATE INDEX messages_search_tsv ON messages USING gin (search_tsv);
CREATE INDEX messages_unindexed ON messages (agent_id, seq) WHERE search_tsv IS NULL;

CREATE TABLE search_corpus_stats (
    agent_id  text NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    corpus    text NOT NULL CHECK (corpus IN ('archival', 'recall')),
    docs      bigint NOT NULL DEFAULT 0,
    total_len double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, corpus)
);

CREATE TABLE search_term_stats (
    agent_id text NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    corpus   text NOT NULL CHECK (corpus IN ('archival', 'recall')),
    lexeme   text NOT NULL,
    df       integer NOT NULL,
    PRIMARY KEY (agent_id, corpus, lexeme)
);

CREATE TYPE o_search_doc AS (agent_id text, search_tsv tsvector, search_len real);

-- Adds (sign = 1) or removes (sign = -1) indexed rows from the statistics. Upserts run in key
-- order so two transactions touching the same lexemes lock them in the same order.
CREATE FUNCTION o_search_stats_apply(docs o_search_doc[], p_corpus text, p_sign integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF docs IS NULL OR cardinality(docs) = 0 THEN
        RETURN;
    END IF;
    IF p_sign > 0 THEN
        INSERT INTO search_corpus_stats AS s (agent_id, corpus, docs, total_len)
        SELECT d.agent_id, p_corpus, count(*), sum(d.search_len)
        FROM unnest(docs) d
        GROUP BY 1 ORDER BY 1
        ON CONFLICT (agent_id, corpus) DO UPDATE
            SET docs = s.docs + EXCLUDED.docs, total_len = s.total_len + EXCLUDED.total_len;
        INSERT INTO search_term_stats AS s (agent_id, corpus, lexeme, df)
        SELECT d.agent_id, p_corpus, u.lexeme, count(*)
        FROM unnest(docs) d, unnest(d.search_tsv) u
        GROUP BY 1, 3 ORDER BY 1, 3
        ON CONFLICT (agent_id, corpus, lexeme) DO UPDATE SET df = s.df + EXCLUDED.df;
    ELSE
        UPDATE search_corpus_stats s
        SET docs = greatest(s.docs - d.n, 0), total_len = greatest(s.total_len - d.len, 0)
        FROM (SELECT x.agent_id, count(*) AS n, sum(x.search_len) AS len
              FROM unnest(docs) x GROUP BY 1) d
        WHERE s.agent_id = d.agent_id AND s.corpus = p_corpus;
        UPDATE search_term_stats s
        SET df = s.df - d.n
        FROM (SELECT x.agent_id, u.lexeme, count(*) AS n
              FROM unnest(docs) x, unnest(x.search_tsv) u GROUP BY 1, 2) d
        WHERE s.agent_id = d.agent_id AND s.corpus = p_corpus AND s.lexeme = d.lexeme;
        DELETE FROM search_term_stats s
        USING (SELECT DISTINCT x.agent_id FROM unnest(docs) x) d
        WHERE s.agent_id = d.agent_id AND s.corpus = p_corpus AND s.df <= 0;
    END IF;
END $$;

CREATE FUNCTION o_search_stats_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    corpus text := TG_ARGV[0];
    added o_search_doc[];
    removed o_search_doc[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(ROW(n.agent_id, n.search_tsv, n.search_len)::o_search_doc)
        INTO added FROM new_rows n WHERE length(n.search_tsv) > 0;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(ROW(o.agent_id, o.search_tsv, o.search_len)::o_search_doc)
        INTO removed FROM old_rows o WHERE length(o.search_tsv) > 0;
    ELSE
        SELECT array_agg(ROW(o.agent_id, o.search_tsv, o.search_len)::o_search_doc)
        INTO removed
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE length(o.search_tsv) > 0
          AND (n.search_tsv IS DISTINCT FROM o.search_tsv OR n.search_len IS DISTINCT FROM o.search_len
               OR n.agent_id IS DISTINCT FROM o.agent_id);
        SELECT array_agg(ROW(n.agent_id, n.search_tsv, n.search_len)::o_search_doc)
        INTO added
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE length(n.search_tsv) > 0
          AND (n.search_tsv IS DISTINCT FROM o.search_tsv OR n.search_len IS DISTINCT FROM o.search_len
               OR n.agent_id IS DISTINCT FROM o.agent_id);
    END IF;
    PERFORM o_search_stats_apply(removed, corpus, -1);
    PERFORM o_search_stats_apply(added, corpus, 1);
    RETURN NULL;
END $$;

CREATE TRIGGER passages_search_stats_ins AFTER INSERT ON passages
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION o_search_stats_trigger('archival');
CREATE TRIGGER passages_search_stats_del AFTER DELETE ON passages
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION o_search_stats_trigger('archival');
CREATE TRIGGER passages_search_stats_upd AFTER UPDATE ON passages
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION o_search_stats_trigger('archival');
CREATE TRIGGER messages_search_stats_ins AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION o_search_stats_trigger('recall');
CREATE TRIGGER messages_search_stats_del AFTER DELETE ON messages
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION o_search_stats_trigger('recall');
CREATE TRIGGER messages_search_stats_upd AFTER UPDATE ON messages
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION o_search_stats_trigger('recall');

-- A message whose text changes is indexed again (its old vector and words no longer describe it).
CREATE FUNCTION o_message_text_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.text IS DISTINCT FROM OLD.text AND NEW.search_tsv IS NOT DISTINCT FROM OLD.search_tsv THEN
        NEW.search_tsv := NULL;
        NEW.search_len := NULL;
        NEW.embedding_dim := NULL;
        NEW.embedding_model := NULL;
        NEW.embedding_384 := NULL;
        NEW.embedding_768 := NULL;
        NEW.embedding_1024 := NULL;
        NEW.embedding_1536 := NULL;
        NEW.embedding_3072 := NULL;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER messages_text_changed BEFORE UPDATE OF text ON messages
    FOR EACH ROW EXECUTE FUNCTION o_message_text_changed();
