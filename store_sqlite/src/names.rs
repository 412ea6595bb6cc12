//! Name upkeep: the transaction `Store::maintain_names` hands the core, by stored name.

use mfa_model::UserRecord;
use mfa_store::{NameTx, StoreError};
use rusqlite::{Connection, OptionalExtension};

use crate::error::db;
use crate::rows::{load, save};

/// The `meta` key of the name rules the stored names were last checked against.
pub(crate) const META_NAME_RULES: &str = "name_rules";

pub(crate) fn read_meta(c: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    c.prepare_cached("SELECT value FROM meta WHERE key = ?1")
        .map_err(db)?
        .query_row([key], |r| r.get(0))
        .optional()
        .map_err(db)
}

pub(crate) fn each_name(c: &Connection, f: &mut dyn FnMut(&str)) -> Result<(), StoreError> {
    let mut st = c
        .prepare("SELECT name FROM users ORDER BY name")
        .map_err(db)?;
    let mut rows = st.query([]).map_err(db)?;
    while let Some(r) = rows.next().map_err(db)? {
        let name: String = r.get(0).map_err(db)?;
        f(&name);
    }
    Ok(())
}

/// [`NameTx`] on one open write transaction.
/// The names with the key `?1` or none, through `users_name_key` (two look-ups).
pub(crate) const NAMES_WITH_KEY: &str =
    "SELECT name FROM users WHERE name_key = ?1 OR name_key IS NULL ORDER BY name";

pub(crate) fn names_with_key(c: &Connection, key: &str) -> Result<Vec<String>, StoreError> {
    let mut st = c.prepare_cached(NAMES_WITH_KEY).map_err(db)?;
    let rows = st.query_map([key], |r| r.get(0)).map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

pub(crate) struct SqliteNameTx<'c>(pub(crate) &'c rusqlite::Transaction<'c>);

impl NameTx for SqliteNameTx<'_> {
    fn each_name(&mut self, f: &mut dyn FnMut(&str)) -> Result<(), StoreError> {
        each_name(self.0, f)
    }

    fn names_checked(&mut self) -> Result<Option<String>, StoreError> {
        read_meta(self.0, META_NAME_RULES)
    }

    fn load(&mut self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        load(self.0, name)
    }

    fn remove(&mut self, name: &str) -> Result<bool, StoreError> {
        // The one-time codes go with the row (ON DELETE CASCADE); the audit trail stays.
        Ok(self
            .0
            .execute("DELETE FROM users WHERE name = ?1", [name])
            .map_err(db)?
            == 1)
    }

    fn put(&mut self, rec: &UserRecord) -> Result<(), StoreError> {
        save(self.0, rec, None)
    }

    fn set_names_checked(&mut self, rules: &str) -> Result<(), StoreError> {
        self.0.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [META_NAME_RULES, rules],
        ).map_err(db)?;
        Ok(())
    }

    fn names_with_key(&mut self, key: &str) -> Result<Vec<String>, StoreError> {
        names_with_key(self.0, key)
    }

    fn names_without_key(&mut self, limit: usize) -> Result<Vec<String>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut st = self
            .0
            .prepare_cached("SELECT name FROM users WHERE name_key IS NULL ORDER BY name LIMIT ?1")
            .map_err(db)?;
        let rows = st.query_map([limit], |r| r.get(0)).map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn set_name_key(&mut self, name: &str, key: &str) -> Result<(), StoreError> {
        self.0
            .prepare_cached("UPDATE users SET name_key = ?2 WHERE name = ?1")
            .map_err(db)?
            .execute([name, key])
            .map_err(db)?;
        Ok(())
    }

    fn forget_name_keys(&mut self) -> Result<(), StoreError> {
        self.0
            .execute(
                "UPDATE users SET name_key = NULL WHERE name_key IS NOT NULL",
                [],
            )
            .map_err(db)?;
        Ok(())
    }
}
