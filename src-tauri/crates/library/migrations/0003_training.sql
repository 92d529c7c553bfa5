-- The training ledger: everything needed to carry a job to its end after a crash or a restart.
ALTER TABLE training_jobs ADD COLUMN training_type TEXT NOT NULL DEFAULT 'portrait';
ALTER TABLE training_jobs ADD COLUMN params TEXT NOT NULL DEFAULT '{}';
ALTER TABLE training_jobs ADD COLUMN test_mode INTEGER NOT NULL DEFAULT 0;
ALTER TABLE training_jobs ADD COLUMN storage TEXT;
ALTER TABLE training_jobs ADD COLUMN dataset_key TEXT;
ALTER TABLE training_jobs ADD COLUMN dataset_url TEXT;
ALTER TABLE training_jobs ADD COLUMN queue_position INTEGER;
ALTER TABLE training_jobs ADD COLUMN last_log TEXT;
ALTER TABLE training_jobs ADD COLUMN model_path TEXT;
ALTER TABLE training_jobs ADD COLUMN model_url TEXT;
ALTER TABLE training_jobs ADD COLUMN config_url TEXT;
ALTER TABLE training_jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE training_jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE training_jobs ADD COLUMN lease_until TEXT;
ALTER TABLE training_jobs ADD COLUMN submitted_at TEXT;
ALTER TABLE training_jobs ADD COLUMN finished_at TEXT;
-- At most one unfinished job per avatar, enforced by SQLite rather than by every caller.
CREATE UNIQUE INDEX training_jobs_one_unfinished_per_avatar ON training_jobs (avatar_id)
    WHERE state NOT IN ('completed', 'failed', 'cancelled');
CREATE INDEX training_jobs_by_request ON training_jobs (request_id);

-- Where the app stopped reading the webhook relay's feed.
CREATE TABLE relay_state (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    cursor INTEGER NOT NULL
);
