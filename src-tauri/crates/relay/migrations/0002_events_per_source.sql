-- Each event of a request is stored once per source: what a relay token holder posts can never
-- make fal's own signed delivery of the same event a "duplicate".
DROP INDEX events_once;
CREATE UNIQUE INDEX events_once_per_source ON events (request_id, source, kind, coalesce(progress, -1));
