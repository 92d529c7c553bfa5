//! Settings rows: the guide's variable names with the values chosen in the app.

use std::collections::BTreeMap;

use rusqlite::params;

use crate::{Library, Result};

impl Library {
    /// Every stored setting, by name.
    pub fn settings(&self) -> Result<BTreeMap<String, String>> {
        let connection = self.connection();
        let mut statement = connection.prepare("SELECT name, value FROM settings")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Replaces the stored settings with `settings` in one transaction, so a reader never sees
    /// half of a change.
    pub fn replace_settings(&self, settings: &BTreeMap<String, String>) -> Result<()> {
        let mut connection = self.connection();
        let transaction = connection.transaction()?;
        transaction.execute("DELETE FROM settings", [])?;
        for (name, value) in settings {
            transaction.execute(
                "INSERT INTO settings (name, value) VALUES (?1, ?2)",
                params![name, value],
            )?;
        }
        transaction.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_replaced_as_a_whole_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let first = BTreeMap::from([
            ("AVATAR_MAX_PHOTOS".to_string(), "25".to_string()),
            ("RELAY_URL".to_string(), "https://relay.example".to_string()),
        ]);
        Library::open(dir.path())
            .unwrap()
            .replace_settings(&first)
            .unwrap();
        let library = Library::open(dir.path()).unwrap();
        assert_eq!(library.settings().unwrap(), first);

        let second = BTreeMap::from([("AVATAR_MAX_PHOTOS".to_string(), "30".to_string())]);
        library.replace_settings(&second).unwrap();
        assert_eq!(library.settings().unwrap(), second);
    }
}
