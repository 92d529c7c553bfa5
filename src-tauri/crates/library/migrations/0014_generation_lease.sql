-- A pack is advanced by one process at a time, as a training is: the app in the tray and the CLI
-- may both be asked to carry it on. The lease holder sends, downloads and ends it; the other
-- watches the library.
ALTER TABLE generations ADD COLUMN lease_owner TEXT;
ALTER TABLE generations ADD COLUMN lease_until TEXT;
