//! Ordered SQL migrations. A shipped migration is never edited: changes come as a new file.
//! The schema version is SQLite's `user_version`, equal to the number of migrations applied.

use rusqlite::{Connection, TransactionBehavior};

use crate::{LibraryError, Result};

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_initial.sql"),
    include_str!("../migrations/0002_photo_checks.sql"),
    include_str!("../migrations/0003_training.sql"),
    include_str!("../migrations/0004_settings.sql"),
    include_str!("../migrations/0005_watch_folders.sql"),
    include_str!("../migrations/0006_watched_files.sql"),
    include_str!("../migrations/0007_job_revision.sql"),
    include_str!("../migrations/0008_spending.sql"),
    include_str!("../migrations/0009_job_codes.sql"),
    include_str!("../migrations/0010_photo_identities.sql"),
    include_str!("../migrations/0011_generations.sql"),
    include_str!("../migrations/0012_deleted_spending.sql"),
    include_str!("../migrations/0013_watched_file_checking.sql"),
    include_str!("../migrations/0014_generation_lease.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(crate) fn apply(connection: &mut Connection) -> Result<()> {
    // An immediate transaction takes the write lock first, so two processes opening the same new
    // library at once cannot both apply a migration.
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = transaction.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(LibraryError::TooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        transaction.execute_batch(sql)?;
        transaction.pragma_update(None, "user_version", index as i64 + 1)?;
    }
    transaction.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_applies_to_an_empty_database() {
        let mut connection = Connection::open_in_memory().expect("in-memory database");
        apply(&mut connection).expect("migrations apply");
        let version: i64 = connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .expect("user_version");
        assert_eq!(version, SCHEMA_VERSION);
        // Applying again is a no-op rather than a duplicate-table error.
        apply(&mut connection).expect("second apply is a no-op");
    }

    #[test]
    fn a_database_from_a_newer_version_is_refused() {
        let mut connection = Connection::open_in_memory().expect("in-memory database");
        connection
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("set version");
        let error = apply(&mut connection).expect_err("newer schema must be refused");
        assert!(matches!(error, LibraryError::TooNew { found, .. } if found == SCHEMA_VERSION + 1));
        assert!(error.to_string().contains("newer version"));
    }
}
