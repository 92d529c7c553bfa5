-- What the on-device checks learnt about each stored photo, and where its files are.
ALTER TABLE avatar_photos ADD COLUMN original_name TEXT NOT NULL DEFAULT '';
ALTER TABLE avatar_photos ADD COLUMN format TEXT NOT NULL DEFAULT '';
ALTER TABLE avatar_photos ADD COLUMN difference_hash INTEGER;
ALTER TABLE avatar_photos ADD COLUMN face_count INTEGER NOT NULL DEFAULT 0;
-- JSON: the face boxes, the quality measurements, and warning codes.
ALTER TABLE avatar_photos ADD COLUMN faces TEXT NOT NULL DEFAULT '[]';
ALTER TABLE avatar_photos ADD COLUMN quality TEXT NOT NULL DEFAULT '{}';
ALTER TABLE avatar_photos ADD COLUMN warnings TEXT NOT NULL DEFAULT '[]';
