-- Sample packs made with an avatar's trained model, and the images they brought. A generation is
-- written before anything is made or sent; its images are files in `gallery/`, named by the MD5
-- of their bytes.
CREATE TABLE generations (
    id                 TEXT PRIMARY KEY,
    avatar_id          TEXT NOT NULL REFERENCES avatars (id) ON DELETE CASCADE,
    -- The training whose model made it.
    training_job_id    TEXT NOT NULL,
    pack               TEXT NOT NULL,
    -- JSON array of the prompts, the trigger phrase in each.
    prompts            TEXT NOT NULL,
    images_per_prompt  INTEGER NOT NULL,
    seed               INTEGER NOT NULL,
    image_size         TEXT NOT NULL,
    endpoint           TEXT NOT NULL,
    -- The LoRA the requests name: the training's URL on fal, or a copy uploaded when it expired.
    lora_url           TEXT,
    test_mode          INTEGER NOT NULL,
    state              TEXT NOT NULL,
    confirmed_cost_usd REAL NOT NULL DEFAULT 0,
    price_source       TEXT NOT NULL,
    -- JSON code with parameters, as for jobs.
    failure            TEXT,
    cancel_requested   INTEGER NOT NULL DEFAULT 0,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    finished_at        TEXT
);
CREATE INDEX generations_by_avatar ON generations (avatar_id, created_at);

-- One fal request per prompt, written before it is sent: a request marked as sending whose answer
-- was lost is looked up in fal's request history, never sent again.
CREATE TABLE generation_requests (
    generation_id TEXT NOT NULL REFERENCES generations (id) ON DELETE CASCADE,
    prompt_index  INTEGER NOT NULL,
    state         TEXT NOT NULL,
    request_id    TEXT,
    status_url    TEXT,
    response_url  TEXT,
    cancel_url    TEXT,
    sent_at       TEXT,
    -- Counts as spent: sent and not proven refused.
    paid          INTEGER NOT NULL DEFAULT 0,
    cancel_sent   INTEGER NOT NULL DEFAULT 0,
    failure       TEXT,
    PRIMARY KEY (generation_id, prompt_index)
);

CREATE TABLE gallery_images (
    id              TEXT PRIMARY KEY,
    generation_id   TEXT NOT NULL REFERENCES generations (id) ON DELETE CASCADE,
    avatar_id       TEXT NOT NULL REFERENCES avatars (id) ON DELETE CASCADE,
    training_job_id TEXT NOT NULL,
    position        INTEGER NOT NULL,
    prompt          TEXT NOT NULL,
    seed            INTEGER NOT NULL,
    file_hash       TEXT NOT NULL,
    format          TEXT NOT NULL,
    width           INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    -- fal's safety checker replaced it with a black image.
    flagged         INTEGER NOT NULL DEFAULT 0,
    -- Made on the device in test mode, not by a model.
    simulated       INTEGER NOT NULL DEFAULT 0,
    likeness        REAL,
    likeness_distance REAL,
    -- The training photo it nearly copies.
    copy_of         TEXT,
    favourite       INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    UNIQUE (generation_id, position)
);
CREATE INDEX gallery_images_by_avatar ON gallery_images (avatar_id, created_at);
