-- Transfers of large payloads. Upload sessions (POST /v1/uploads/): a payload's bytes go straight to the blob store (a presigned S3
-- PUT on AWS, O's own PUT route locally), past API Gateway's and Lambda's payload limits; "complete" then
-- starts the work: a bundle import (a leased job, imported in one transaction that also marks the upload
-- completed, so a retried job never imports twice) or a folder file that joins the ingestion pipeline.
-- Exports (kind 'export'): a bundle written to the blob store by a job, fetched from a (presigned) URL.
CREATE TABLE transfers (
    id              text PRIMARY KEY,
    organization_id text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('bundle', 'folder_file', 'export')),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'queued', 'running', 'completed', 'error')),
    size            bigint NOT NULL CHECK (size >= 0),
    blob_key        text NOT NULL,
    -- locally: the sha256 of the secret in O's own PUT URL (NULL when the blob store signs URLs itself)
    token_sha256    text,
    params          jsonb NOT NULL DEFAULT '{}',
    result          jsonb,
    error_message   text,
    attempts        integer NOT NULL DEFAULT 0,
    claim_id        text,
    claimed_until   timestamptz,
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transfers_organization ON transfers (organization_id, created_at);
CREATE INDEX transfers_unfinished ON transfers (created_at) WHERE status IN ('queued', 'running');
