-- Every event the relay accepted, in arrival order. The cursor is what the app resumes from:
-- AUTOINCREMENT keeps it from ever being reused, even after retention deletes the newest rows.
CREATE TABLE events (
    cursor        INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id    TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('in_progress', 'completed', 'failed')),
    -- Only progress reports carry it: two reports of the same request differ by their progress.
    progress      REAL,
    training_type TEXT    CHECK (training_type IN ('portrait', 'style')),
    source        TEXT    NOT NULL CHECK (source IN ('fal', 'trusted')),
    -- The request body as received, JSON.
    body          TEXT    NOT NULL,
    -- Unix milliseconds.
    received_at   INTEGER NOT NULL
);

-- fal retries a delivery up to 10 times: each event of a request is stored once.
CREATE UNIQUE INDEX events_once ON events (request_id, kind, coalesce(progress, -1));

CREATE INDEX events_received_at ON events (received_at);
