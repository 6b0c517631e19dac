-- Archives (issue 17): shared archival stores that agents attach. An archive's passages live in
-- `passages` once (archive_id set, agent_id NULL), however many agents attach it; an agent's own
-- passages keep agent_id. An agent's archival search covers both in one hybrid query.
--
-- Each archive has one embedding model, fixed when it is created (embedding_config): an agent that
-- embeds with another model still searches it, with the query embedded by the archive's model.
--
-- BM25 statistics of archive passages are kept per archive (archive_corpus_stats,
-- archive_term_stats) by the same statement triggers as the agents' ones; a search sums the
-- statistics of the agent and of its attached archives, so all candidates share one idf.

CREATE TABLE archives (
    id               text PRIMARY KEY,
    organization_id  text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name             text NOT NULL,
    description      text,
    embedding_config jsonb NOT NULL,
    metadata         jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX archives_org_created ON archives (organization_id, created_at, id);

CREATE TABLE agent_archives (
    agent_id   text NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    archive_id text NOT NULL REFERENCES archives(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, archive_id)
);
CREATE INDEX agent_archives_archive ON agent_archives (archive_id);

ALTER TABLE passages
    ALTER COLUMN agent_id DROP NOT NULL,
    ADD COLUMN archive_id text REFERENCES archives(id) ON DELETE CASCADE,
    ADD CONSTRAINT passages_one_owner CHECK ((agent_id IS NULL) <> (archive_id IS NULL));
CREATE INDEX passages_archive_id ON passages (archive_id, id) WHERE archive_id IS NOT NULL;

CREATE TABLE archive_corpus_stats (
    archive_id text PRIMARY KEY REFERENCES archives(id) ON DELETE CASCADE,
    docs       bigint NOT NULL DEFAULT 0,
    total_len  double precision NOT NULL DEFAULT 0
);

CREATE TABLE archive_term_stats (
    archive_id text NOT NULL REFERENCES archives(id) ON DELETE CASCADE,
    lexeme     text NOT NULL,
    df         integer NOT NULL,
    PRIMARY KEY (archive_id, lexeme)
);

-- docs.agent_id holds the archive's id here; upserts in key order, as o_search_stats_apply does.
CREATE FUNCTION o_archive_stats_apply(docs o_search_doc[], p_sign integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF docs IS NULL OR cardinality(docs) = 0 THEN
        RETURN;
    END IF;
    IF p_sign > 0 THEN
        INSERT INTO archive_corpus_stats AS s (archive_id, docs, total_len)
        SELECT d.agent_id, count(*), sum(d.search_len)
        FROM unnest(docs) d
        GROUP BY 1 ORDER BY 1
        ON CONFLICT (archive_id) DO UPDATE
            SET docs = s.docs + EXCLUDED.docs, total_len = s.total_len + EXCLUDED.total_len;
        INSERT INTO archive_term_stats AS s (archive_id, lexeme, df)
        SELECT d.agent_id, u.lexeme, count(*)
        FROM unnest(docs) d, unnest(d.search_tsv) u
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (archive_id, lexeme) DO UPDATE SET df = s.df + EXCLUDED.df;
    ELSE
        UPDATE archive_corpus_stats s
        SET docs = greatest(s.docs - d.n, 0), total_len = greatest(s.total_len - d.len, 0)
        FROM (SELECT x.agent_id, count(*) AS n, sum(x.search_len) AS len
              FROM unnest(docs) x GROUP BY 1) d
        WHERE s.archive_id = d.agent_id;
        UPDATE archive_term_stats s
        SET df = s.df - d.n
        FROM (SELECT x.agent_id, u.lexeme, count(*) AS n
              FROM unnest(docs) x, unnest(x.search_tsv) u GROUP BY 1, 2) d
        WHERE s.archive_id = d.agent_id AND s.lexeme = d.lexeme;
        DELETE FROM archive_term_stats s
        USING (SELECT DISTINCT x.agent_id FROM unnest(docs) x) d
        WHERE s.archive_id = d.agent_id AND s.df <= 0;
    END IF;
END $$;

-- The passages' statistics: rows of an agent count for the agent, rows of an archive for the
-- archive (a passage never changes owner).
CREATE FUNCTION o_passage_stats_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    added o_search_doc[];
    removed o_search_doc[];
    added_archive o_search_doc[];
    removed_archive o_search_doc[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(ROW(n.agent_id, n.search_tsv, n.search_len)::o_search_doc) FILTER (WHERE n.agent_id IS NOT NULL),
               array_agg(ROW(n.archive_id, n.search_tsv, n.search_len)::o_search_doc) FILTER (WHERE n.archive_id IS NOT NULL)
        INTO added, added_archive FROM new_rows n WHERE length(n.search_tsv) > 0;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(ROW(o.agent_id, o.search_tsv, o.search_len)::o_search_doc) FILTER (WHERE o.agent_id IS NOT NULL),
               array_agg(ROW(o.archive_id, o.search_tsv, o.search_len)::o_search_doc) FILTER (WHERE o.archive_id IS NOT NULL)
        INTO removed, removed_archive FROM old_rows o WHERE length(o.search_tsv) > 0;
    ELSE
        SELECT array_agg(ROW(o.agent_id, o.search_tsv, o.search_len)::o_search_doc) FILTER (WHERE o.agent_id IS NOT NULL),
               array_agg(ROW(o.archive_id, o.search_tsv, o.search_len)::o_search_doc) FILTER (WHERE o.archive_id IS NOT NULL)
        INTO removed, removed_archive
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE length(o.search_tsv) > 0
          AND (n.search_tsv IS DISTINCT FROM o.search_tsv OR n.search_len IS DISTINCT FROM o.search_len
               OR n.agent_id IS DISTINCT FROM o.agent_id OR n.archive_id IS DISTINCT FROM o.archive_id);
        SELECT array_agg(ROW(n.agent_id, n.search_tsv, n.search_len)::o_search_doc) FILTER (WHERE n.agent_id IS NOT NULL),
               array_agg(ROW(n.archive_id, n.search_tsv, n.search_len)::o_search_doc) FILTER (WHERE n.archive_id IS NOT NULL)
        INTO added, added_archive
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE length(n.search_tsv) > 0
          AND (n.search_tsv IS DISTINCT FROM o.search_tsv OR n.search_len IS DISTINCT FROM o.search_len
               OR n.agent_id IS DISTINCT FROM o.agent_id OR n.archive_id IS DISTINCT FROM o.archive_id);
    END IF;
    PERFORM o_search_stats_apply(removed, 'archival', -1);
    PERFORM o_search_stats_apply(added, 'archival', 1);
    PERFORM o_archive_stats_apply(removed_archive, -1);
    PERFORM o_archive_stats_apply(added_archive, 1);
    RETURN NULL;
END $$;

DROP TRIGGER passages_search_stats_ins ON passages;
DROP TRIGGER passages_search_stats_del ON passages;
DROP TRIGGER passages_search_stats_upd ON passages;
CREATE TRIGGER passages_search_stats_ins AFTER INSERT ON passages
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION o_passage_stats_trigger();
CREATE TRIGGER passages_search_stats_del AFTER DELETE ON passages
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION o_passage_stats_trigger();
CREATE TRIGGER passages_search_stats_upd AFTER UPDATE ON passages
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION o_passage_stats_trigger();
