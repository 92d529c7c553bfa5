-- Files an avatar's watched folder has already brought to a verdict, as they were then: a later
-- start passes over them without reading them again, and a photo removed from the avatar stays
-- removed. Forgotten when the avatar watches another folder.
CREATE TABLE watched_files (
    avatar_id   TEXT NOT NULL REFERENCES avatars(id) ON DELETE CASCADE,
    path        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    modified_ns INTEGER NOT NULL,
    -- Refused because the set was full: forgotten when a photo leaves the avatar, to be tried again.
    waiting_for_room INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (avatar_id, path)
);
