//! Name upkeep: the transaction `Store::maintain_names` hands the core, by stored name.

use mfa_model::UserRecord;
use mfa_store::{NameTx, StoreError};
use postgres::{Statement, Transaction};

use crate::error::{Context, PgError};
use crate::pool::{PgStore, Statements};
use crate::rows::{decode_all, read_children, read_user, write};
use crate::tx::check_store_key;

/// The `meta` key of the name rules the stored names were last checked against.
pub(crate) const META_NAME_RULES: &str = "name_rules";

/// Streams the names (`query_raw`: rows as they arrive, not a million at once).
pub(crate) fn each_name(
    q: &mut impl postgres::GenericClient,
    f: &mut dyn FnMut(&str),
) -> Result<(), PgError> {
    use postgres::fallible_iterator::FallibleIterator;
    let c = "reading the user names";
    let no_params: [&(dyn postgres::types::ToSql + Sync); 0] = [];
    let mut rows = q
        .query_raw("SELECT name FROM users ORDER BY name", no_params)
        .ctx(c)?;
    while let Some(r) = rows.next().ctx(c)? {
        f(r.try_get(0).ctx(c)?);
    }
    Ok(())
}

pub(crate) fn read_names_checked(
    q: &mut impl postgres::GenericClient,
    st: &Statement,
) -> Result<Option<String>, PgError> {
    let c = "reading meta";
    match q.query(st, &[&META_NAME_RULES]).ctx(c)?.first() {
        Some(r) => Ok(Some(r.try_get(0).ctx(c)?)),
        None => Ok(None),
    }
}

/// [`NameTx`] on one open write transaction (see [`Store::maintain_names`]).
pub(crate) struct PgNameTx<'a, 't> {
    pub(crate) tx: &'a mut Transaction<'t>,
    pub(crate) st: &'a Statements,
    pub(crate) store: &'a PgStore,
}

impl PgNameTx<'_, '_> {
    pub(crate) fn load_one(&mut self, name: &str) -> Result<Option<UserRecord>, PgError> {
        let found = self
            .tx
            .query(&self.st.lock_users, &[&[name].as_slice()])
            .ctx("reading a user")?
            .iter()
            .map(read_user)
            .collect::<Result<Vec<_>, _>>()?;
        if found.is_empty() {
            return Ok(None);
        }
        let one = [name];
        let children = read_children(
            self.tx,
            &self.st.codes,
            &self.st.sources,
            &self.st.unlocks,
            &[&one.as_slice()],
        )?;
        Ok(decode_all(found, children)?.pop())
    }

    pub(crate) fn put_one(&mut self, rec: &UserRecord) -> Result<(), PgError> {
        check_store_key(self.tx, self.st, &[rec])?;
        write(self.tx, self.st, &[rec], &[rec], &[rec], &[rec])
    }
}

/// The names with the key `$1` or none, through `users_name_key`.
pub(crate) fn names_with_key(
    q: &mut impl postgres::GenericClient,
    key: &str,
) -> Result<Vec<String>, PgError> {
    let c = "reading the names that look alike";
    q.query(
        "SELECT name FROM users WHERE name_key = $1 OR name_key IS NULL ORDER BY name",
        &[&key],
    )
    .ctx(c)?
    .iter()
    .map(|r| r.try_get(0).ctx(c))
    .collect()
}

impl NameTx for PgNameTx<'_, '_> {
    fn each_name(&mut self, f: &mut dyn FnMut(&str)) -> Result<(), StoreError> {
        each_name(self.tx, f).map_err(|e| self.store.classify(e))
    }

    fn names_checked(&mut self) -> Result<Option<String>, StoreError> {
        read_names_checked(self.tx, &self.st.names_checked).map_err(|f| self.store.classify(f))
    }

    fn load(&mut self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        self.load_one(name).map_err(|f| self.store.classify(f))
    }

    fn remove(&mut self, name: &str) -> Result<bool, StoreError> {
        // The one-time codes and counters go with the row (ON DELETE CASCADE); the audit
        // trail stays.
        let n = self
            .tx
            .execute("DELETE FROM users WHERE name = $1", &[&name])
            .ctx("removing a user")
            .map_err(|f| self.store.classify(f))?;
        Ok(n == 1)
    }

    fn put(&mut self, rec: &UserRecord) -> Result<(), StoreError> {
        self.put_one(rec).map_err(|f| self.store.classify(f))
    }

    fn set_names_checked(&mut self, rules: &str) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&META_NAME_RULES, &rules],
            )
            .ctx("writing meta")
            .map_err(|f| self.store.classify(f))?;
        Ok(())
    }

    fn names_with_key(&mut self, key: &str) -> Result<Vec<String>, StoreError> {
        names_with_key(self.tx, key).map_err(|f| self.store.classify(f))
    }

    fn names_without_key(&mut self, limit: usize) -> Result<Vec<String>, StoreError> {
        let c = "reading the names without a look-alike key";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .tx
            .query(
                "SELECT name FROM users WHERE name_key IS NULL ORDER BY name LIMIT $1",
                &[&limit],
            )
            .ctx(c)
            .map_err(|f| self.store.classify(f))?;
        rows.iter()
            .map(|r| r.try_get(0).ctx(c))
            .collect::<Result<_, _>>()
            .map_err(|f| self.store.classify(f))
    }

    fn set_name_key(&mut self, name: &str, key: &str) -> Result<(), StoreError> {
        self.tx
            .execute(
                "UPDATE users SET name_key = $2 WHERE name = $1",
                &[&name, &key],
            )
            .ctx("writing a look-alike key")
            .map_err(|f| self.store.classify(f))?;
        Ok(())
    }

    fn forget_name_keys(&mut self) -> Result<(), StoreError> {
        self.tx
            .execute(
                "UPDATE users SET name_key = NULL WHERE name_key IS NOT NULL",
                &[],
            )
            .ctx("emptying the look-alike keys")
            .map_err(|f| self.store.classify(f))?;
        Ok(())
    }
}
