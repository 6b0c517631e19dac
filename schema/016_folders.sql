-- Folders of uploaded files (Letta's "sources"), their files, the chunks the files are indexed as,
-- and which agents have a folder attached and which of its files they hold open.
--
-- A file row is also its ingestion job: processing_status moves pending → parsing → embedding →
-- completed | error. A worker claims a row (claimed_until is its lease, claim_id the claim), so a
-- crashed worker's file is taken again when the lease ends; chunks are keyed by (file_id, seq), so a retry never
-- duplicates one. Chunks of a file are searched only once the file is completed (nothing
-- half-indexed is ever found).

CREATE TABLE folders (
    id               text PRIMARY KEY,
    organization_id  text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name             text NOT NULL,
    description      text,
    instructions     text,
    metadata         jsonb NOT NULL DEFAULT '{}'::jsonb,
    embedding_config jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, name)
);
CREATE INDEX folders_org_created ON folders (organization_id, created_at, id);

CREATE TABLE folder_files (
    id                 text PRIMARY KEY,
    organization_id    text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    folder_id          text NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    file_name          text NOT NULL,
    original_file_name text NOT NULL,
    file_type          text NOT NULL,
    file_size          bigint NOT NULL,
    -- where the original bytes are in the blob store (the data dir locally, S3 on AWS)
    blob_key           text NOT NULL,
    -- the parsed text, as the file tools show it (line numbers refer to it)
    content            text,
    processing_status  text NOT NULL DEFAULT 'pending'
        CHECK (processing_status IN ('pending', 'parsing', 'embedding', 'completed', 'error')),
    error_message      text,
    total_chunks       integer,
    chunks_embedded    integer NOT NULL DEFAULT 0,
    attempts           integer NOT NULL DEFAULT 0,
    claimed_until      timestamptz,
    -- which claim is current: a worker whose claim was superseded (its lease ran out and another took
    -- the file, or the file was replaced) writes nothing more
    claim_id           text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (folder_id, file_name)
);
CREATE INDEX folder_files_folder_created ON folder_files (folder_id, created_at, id);
CREATE INDEX folder_files_org ON folder_files (organization_id);
CREATE INDEX folder_files_unfinished ON folder_files (created_at)
    WHERE processing_status IN ('pending', 'parsing', 'embedding');

CREATE TABLE file_chunks (
    file_id         text NOT NULL REFERENCES folder_files(id) ON DELETE CASCADE,
    seq             integer NOT NULL,
    organization_id text NOT NULL,
    folder_id       text NOT NULL,
    text            text NOT NULL,
    -- 1-based lines of the file's parsed content this chunk spans, its page (PDF) and heading path
    start_line      integer NOT NULL,
    end_line        integer NOT NULL,
    page            integer,
    heading         text NOT NULL DEFAULT '',
    embedding_model text NOT NULL,
    embedding_dim   integer NOT NULL,
    embedding_384   vector(384),
    embedding_768   vector(768),
    embedding_1024  vector(1024),
    embedding_1536  vector(1536),
    embedding_3072  halfvec(3072),
    search_tsv      tsvector NOT NULL,
    PRIMARY KEY (file_id, seq)
);
CREATE INDEX file_chunks_folder ON file_chunks (folder_id);
CREATE INDEX file_chunks_emb_384  ON file_chunks USING hnsw (embedding_384 vector_cosine_ops);
CREATE INDEX file_chunks_emb_768  ON file_chunks USING hnsw (embedding_768 vector_cosine_ops);
CREATE INDEX file_chunks_emb_1024 ON file_chunks USING hnsw (embedding_1024 vector_cosine_ops);
CREATE INDEX file_chunks_emb_1536 ON file_chunks USING hnsw (embedding_1536 vector_cosine_ops);
CREATE INDEX file_chunks_emb_3072 ON file_chunks USING hnsw (embedding_3072 halfvec_cosine_ops);
CREATE INDEX file_chunks_search_tsv ON file_chunks USING gin (search_tsv);

CREATE TABLE agent_folders (
    agent_id   text NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    folder_id  text NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, folder_id)
);
CREATE INDEX agent_folders_folder ON agent_folders (folder_id);

-- An agent's view of each file of its attached folders: open or not, and which lines it sees.
CREATE TABLE agent_files (
    id               text PRIMARY KEY,
    agent_id         text NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    file_id          text NOT NULL REFERENCES folder_files(id) ON DELETE CASCADE,
    is_open          boolean NOT NULL DEFAULT false,
    start_line       integer,
    end_line         integer,
    last_accessed_at timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (agent_id, file_id)
);
CREATE INDEX agent_files_file ON agent_files (file_id);
