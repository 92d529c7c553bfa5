-- The guide's data model: avatars, their photos, and a durable record of every training job.
CREATE TABLE avatars (
    id                TEXT PRIMARY KEY NOT NULL,
    name              TEXT NOT NULL,
    gender            TEXT NOT NULL CHECK (gender IN ('male', 'female', 'other')),
    training_type     TEXT NOT NULL CHECK (training_type IN ('portrait', 'style')),
    status            TEXT NOT NULL DEFAULT 'draft',
    training_progress INTEGER NOT NULL DEFAULT 0 CHECK (training_progress BETWEEN 0 AND 100),
    finetune_id       TEXT,
    fal_mode          TEXT NOT NULL CHECK (fal_mode IN ('portrait', 'style')),
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX avatars_by_creation ON avatars (created_at);

CREATE TABLE avatar_photos (
    id                TEXT PRIMARY KEY NOT NULL,
    avatar_id         TEXT NOT NULL REFERENCES avatars (id) ON DELETE CASCADE,
    minio_key         TEXT,
    file_hash         TEXT NOT NULL,
    file_size         INTEGER NOT NULL,
    validation_status TEXT NOT NULL,
    has_face          INTEGER NOT NULL DEFAULT 0,
    quality_score     REAL,
    width             INTEGER NOT NULL,
    height            INTEGER NOT NULL,
    created_at        TEXT NOT NULL,
    UNIQUE (avatar_id, file_hash)
);
CREATE INDEX avatar_photos_by_avatar ON avatar_photos (avatar_id, created_at);

CREATE TABLE training_jobs (
    id                TEXT PRIMARY KEY NOT NULL,
    avatar_id         TEXT NOT NULL REFERENCES avatars (id) ON DELETE CASCADE,
    idempotency_key   TEXT NOT NULL UNIQUE,
    training_set_hash TEXT NOT NULL,
    trainer           TEXT NOT NULL,
    preset            TEXT NOT NULL,
    state             TEXT NOT NULL,
    request_id        TEXT,
    status_url        TEXT,
    response_url      TEXT,
    cancel_url        TEXT,
    progress          INTEGER NOT NULL DEFAULT 0,
    status_text       TEXT,
    error             TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX training_jobs_by_avatar ON training_jobs (avatar_id, created_at);
