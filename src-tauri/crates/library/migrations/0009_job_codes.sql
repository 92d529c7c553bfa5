-- Where a job is and why it failed, as codes with parameters (JSON) that the UI and the CLI word
-- in the creator's language. The English `status_text` and `error` of older rows stay readable:
-- a job whose `failure` is empty shows its old `error` as technical detail.
ALTER TABLE training_jobs ADD COLUMN step TEXT;
ALTER TABLE training_jobs ADD COLUMN failure TEXT;
