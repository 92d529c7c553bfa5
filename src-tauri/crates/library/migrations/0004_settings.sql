-- Settings made in the app's Settings screen, by the guide's variable names. Never secrets: those
-- live in the OS keychain. The environment overrides every row here.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
