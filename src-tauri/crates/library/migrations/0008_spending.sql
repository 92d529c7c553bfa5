-- Whether the job's paid request left the machine (or may have: an answer that was lost), so the
-- spending ledger counts it; cleared when fal's request history proves it never arrived.
ALTER TABLE training_jobs ADD COLUMN paid_request INTEGER NOT NULL DEFAULT 0;
-- Where the confirmed price came from: `fal` (fal's pricing API), `static` (the built-in table)
-- or `none` (test mode).
ALTER TABLE training_jobs ADD COLUMN price_source TEXT NOT NULL DEFAULT 'static';
-- What fal billed, in US dollars, when its billing events could be read (admin keys only).
ALTER TABLE training_jobs ADD COLUMN billed_cost_usd REAL;
-- What became of the request's outputs stored on fal after the model was saved: `deleted`, or
-- `kept` when the key may not delete them (they expire with the lifetime the submit asked for).
ALTER TABLE training_jobs ADD COLUMN fal_outputs TEXT;
-- Failed uploads of the training set so far: a job whose upload keeps failing ends with the
-- reason instead of being tried for ever.
ALTER TABLE training_jobs ADD COLUMN upload_attempts INTEGER NOT NULL DEFAULT 0;
-- Jobs back-filled as sent: a job that has a request id was taken by fal.
UPDATE training_jobs SET paid_request = 1 WHERE request_id IS NOT NULL AND test_mode = 0;
