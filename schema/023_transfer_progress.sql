-- A bundle import commits in chunks (o/agent/transfer_jobs.py): each chunk's transaction also stores
-- where the import is (the frames applied, the ids given so far, the hidden organization its rows wait
-- in), so a run that stops (its time budget, a crash) is resumed from there by the next one.
ALTER TABLE transfers ADD COLUMN progress jsonb;
