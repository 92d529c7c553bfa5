-- The folder an avatar watches for new photos, when it has one.
CREATE TABLE avatar_watch_folders (
    avatar_id TEXT PRIMARY KEY NOT NULL REFERENCES avatars(id) ON DELETE CASCADE,
    folder    TEXT NOT NULL
);
