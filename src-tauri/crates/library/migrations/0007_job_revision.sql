-- Every write of a job is a compare-and-swap on the revision it read, so a process that read an
-- older job (one that was suspended, or lost its lease) can never overwrite a newer one.
ALTER TABLE training_jobs ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
-- Failed model downloads so far: a job whose download keeps failing ends with the reason instead
-- of being tried for ever.
ALTER TABLE training_jobs ADD COLUMN download_attempts INTEGER NOT NULL DEFAULT 0;
-- The cost the creator confirmed for the job, in US dollars (0 in test mode).
ALTER TABLE training_jobs ADD COLUMN confirmed_cost_usd REAL NOT NULL DEFAULT 0;
