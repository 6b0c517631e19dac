"""Files in folders as searchable memory: the blob-store port, parsers, chunking and ingestion."""
