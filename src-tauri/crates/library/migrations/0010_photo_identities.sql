-- The face identities of a portrait photo (a JSON array of 128-number descriptors, one per face
-- that could be the subject), so a set can be judged again as it grows without decoding every
-- stored photo. Photos stored before have none and are left out of that judgement.
ALTER TABLE avatar_photos ADD COLUMN identities TEXT;
