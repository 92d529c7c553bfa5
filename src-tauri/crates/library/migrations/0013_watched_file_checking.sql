-- A watched file being checked now: written before its check, so a file whose check stopped the
-- app is passed over at the next start (and said once) instead of stopping every start.
ALTER TABLE watched_files ADD COLUMN checking INTEGER NOT NULL DEFAULT 0;
