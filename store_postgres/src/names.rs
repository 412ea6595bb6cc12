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
}
