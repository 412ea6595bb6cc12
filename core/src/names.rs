//! One user, however a front end spells the name: the canonical name every front end asks
//! for ([`user_name`], [`Core::user_name`]), and the check that the stored names agree with
//! the `[users]` rules, so an old `Alice` row cannot be a second record (with its own grace
//! period) beside `alice`.
//!
//! The check: every stored name is put through [`UserName::canonical`].
//! - Two or more stored names with one canonical form are a conflict: the store is refused
//!   (every login denied, the error names them and the fix) until an administrator merges
//!   ([`Admin::merge_users`]) or removes ([`Admin::remove_user`]) all but one.
//! - A single stored name that is not canonical (`Alice` under `case = "fold"`,
//!   `CONTOSO\alice` once CONTOSO is listed) is renamed to its canonical form, key resealed
//!   under the new name, in one transaction with an audit event (`rename`,
//!   `canonical_name`): it is the only record of that user, so nothing is ambiguous.
//! - A stored name that has no canonical form (`OTHER\bob`, OTHER not listed; `àlice` while
//!   `[users] unicode` is not `"allow"`) is left alone: no front end can reach it. `mfactl
//!   config check` reports it.
//! - Under `[users] unicode = "allow"`, stored names that look alike
//!   ([`mfa_model::lookalike_key`]: `àlice` or a Cyrillic `аlice` beside `alice`) are a
//!   conflict like two spellings of one name, and a new name that looks like a stored one
//!   is refused ([`Core::user_name`]), so one person is one record however a directory that
//!   ignores accents (Active Directory) lets them spell it.
//!
//! Each stored name keeps its look-alike key beside it (indexed), so that check is one
//! indexed read per name, not a scan of every user per login. The read comes before the
//! transaction that may create the record, not inside it: two first logins of two
//! look-alikes in the same instant could both get a record; the next check of the stored
//! names (any `mfactl` command, the daemon's start, `mfactl config check`) finds the pair
//! and refuses the store until one is left. The store writes it with each
//! new row; the check fills in the rows that have none (a store just upgraded) and computes
//! them all again when the Unicode tables behind the key changed (the `keys=` part of the
//! rules' fingerprint).
//!
//! The store records which rules its names were last checked against (`meta`), so the PAM
//! module, which opens the store at every login, scans only when the rules changed
//! ([`NameCheck::IfRulesChanged`]); `mfactl` and the daemon scan whenever they start
//! ([`NameCheck::Always`]), which also catches rows written behind the product's back.

use std::collections::BTreeMap;
use std::fmt;

use mfa_config::{Config, NameCase, UnicodeNames, UsersConfig};
use mfa_model::{
    Action, AuditEvent, BadUserName, NameRules, ReasonCode, Refusal, UserName, UserRecord,
    look_alike, lookalike_key, lookalike_key_version,
};

use crate::admin::Admin;
use crate::core::Core;
use crate::error::CoreError;
use crate::secret::Sealer;
use crate::store::{Abort, NameTx, StoreError};

/// The actor of the audit events the check itself writes (renames).
pub const CHECK_ACTOR: &str = "name-check";

/// The canonical name of the user `raw` names under `config`'s `[users]` rules, without the
/// store: where no store is open (a PAM host in remote mode, whose daemon then checks the
/// name again with its store; `mfactl import` before [`Admin::import`]). Every front end
/// with a core asks [`Core::user_name`], which also refuses a look-alike of a stored name.
pub fn user_name(config: &Config, raw: &str) -> Result<UserName, CoreError> {
    UserName::canonical(raw, &config.users.rules()).map_err(|e| CoreError::bad_name(raw, e))
}

/// What a search by name looks for: the canonical form of the start of a name as typed
/// (`Al` is `al` where `[users] case = "fold"`, `CONTOSO\al` is `al` where CONTOSO is
/// listed), so the search finds the names a login would reach. Empty: every name.
pub fn name_prefix(config: &Config, raw: &str) -> Result<String, CoreError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(String::new());
    }
    Ok(user_name(config, raw)?.to_string())
}

/// The stored user `name` looks like, if any, under `rules`: a stored name whose canonical
/// form is another name than `name` with the same look-alike key, not both ASCII. Nothing
/// under the default rules (every name a front end can reach is ASCII there). `with_key`
/// is the store's indexed read ([`crate::store::Store::names_with_key`]).
pub(crate) fn lookalike_of<E>(
    name: &UserName,
    rules: &NameRules<'_>,
    with_key: impl FnOnce(&str) -> Result<Vec<String>, E>,
) -> Result<Option<String>, E> {
    if !rules.unicode {
        return Ok(None);
    }
    Ok(with_key(&lookalike_key(name))?.into_iter().find(|stored| {
        // A stored `Àlice` that is renamed to `àlice` is the same user, not a look-alike.
        UserName::canonical(stored, rules).is_ok_and(|c| c != *name && look_alike(&c, name))
    }))
}

/// `name`, which `raw` gave, unless it looks like another user's stored name.
pub(crate) fn refuse_lookalike(core: &Core, raw: &str, name: &UserName) -> Result<(), CoreError> {
    match lookalike_of(name, &core.config.users.rules(), |k| {
        core.store.names_with_key(k)
    })? {
        Some(existing) => Err(CoreError::bad_name(
            raw,
            BadUserName::LooksLike { existing },
        )),
        None => Ok(()),
    }
}

/// When opening a store checks the stored names (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameCheck {
    /// Only when the rules differ from those the store was last checked against: the PAM
    /// module, which opens the store at every login.
    IfRulesChanged,
    /// Every time: `mfactl` and the daemon, at start.
    Always,
    /// Not at all: the commands that report and repair what the check refuses (`mfactl
    /// config check`, `mfactl users merge`, `mfactl users remove`).
    Skip,
}

/// The rules as the administrator wrote them, for messages.
pub fn describe(users: &UsersConfig) -> String {
    format!(
        "[users] case = \"{}\", domains = {:?}, unicode = \"{}\"",
        match users.case {
            NameCase::Fold => "fold",
            NameCase::Exact => "exact",
        },
        users.domains,
        match users.unicode {
            UnicodeNames::Refuse => "refuse",
            UnicodeNames::Allow => "allow",
        }
    )
}

/// A name operation that cannot be done as asked. The text names the names, and the rules
/// where they decide.
#[derive(Debug)]
#[non_exhaustive]
pub enum NameError {
    /// `mfactl users merge A A`: a stored name merged into itself.
    MergeIntoItself(String),
    /// The merged record would be stored under `target` (`into`'s canonical name), which
    /// is another stored record. `rules` as [`describe`] writes them.
    MergeTargetTaken {
        into: String,
        target: UserName,
        rules: String,
    },
    /// A name of an import refused (under `unicode = "allow"`: it looks like a stored
    /// user's name); `origin` is the import's line.
    ImportRefused {
        origin: String,
        error: Box<CoreError>,
    },
    /// Two names of one import that look alike: one person would get two records.
    ImportLookAlikes {
        origin: String,
        user: UserName,
        first: UserName,
        first_origin: String,
    },
    /// An invite whose name is no longer a user's canonical name (the rules or the store
    /// changed since it was issued).
    InviteNotCanonical { user: UserName, rules: String },
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::MergeIntoItself(name) => write!(f, "cannot merge {name:?} into itself"),
            NameError::MergeTargetTaken {
                into,
                target,
                rules,
            } => write!(
                f,
                "{into:?} would be stored as {target:?}, which is another record; merge \
                 or remove {target:?} first ({rules})"
            ),
            NameError::ImportRefused { origin, error } => write!(f, "{origin}: {error}"),
            NameError::ImportLookAlikes {
                origin,
                user,
                first,
                first_origin,
            } => write!(
                f,
                "{origin}: {user:?} looks like {first:?} ({first_origin}): one person is one \
                 record; nothing was imported"
            ),
            NameError::InviteNotCanonical { user, rules } => write!(
                f,
                "the invite is for {user:?}, which is no longer a user's canonical name under \
                 {rules}"
            ),
        }
    }
}

impl std::error::Error for NameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NameError::ImportRefused { error, .. } => Some(error.as_ref()),
            _ => None,
        }
    }
}

/// Stored names that are one user under the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameConflicts {
    /// The rules, as [`describe`] writes them.
    pub rules: String,
    /// The canonical name and the stored names that all mean it (sorted).
    pub groups: Vec<(UserName, Vec<String>)>,
    /// Stored names that look alike ([`mfa_model::lookalike_key`]), each set sorted.
    pub lookalikes: Vec<Vec<String>>,
}

/// At most this many groups are spelled out in one message.
const SHOWN_GROUPS: usize = 10;

impl fmt::Display for NameConflicts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all = self.groups.len() + self.lookalikes.len();
        write!(
            f,
            "the store holds {all} set(s) of user names that are one user under {}: ",
            self.rules
        )?;
        let spelled = self.groups.iter().map(|(canonical, names)| {
            let list: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
            format!("{} all mean {canonical:?}", list.join(" and "))
        });
        let alike = self.lookalikes.iter().map(|names| {
            let list: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
            format!(
                "{} look alike (case, accents, width and look-alike letters set aside)",
                list.join(" and ")
            )
        });
        for (i, set) in spelled.chain(alike).take(SHOWN_GROUPS).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(&set)?;
        }
        if all > SHOWN_GROUPS {
            write!(f, "; and {} more", all - SHOWN_GROUPS)?;
        }
        f.write_str(
            ". Every login is refused until one record is left of each: merge them with \
             `mfactl users merge FROM INTO` (INTO's key is kept) or remove one with \
             `mfactl users remove NAME` (names as stored; `mfactl config check` lists them)",
        )
    }
}

/// What the stored names need under a set of rules.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NamePlan {
    pub conflicts: Vec<(UserName, Vec<String>)>,
    /// A single stored name and the canonical form it is renamed to.
    pub renames: Vec<(String, UserName)>,
    /// Stored names no front end can reach under the rules, and why.
    pub unreachable: Vec<(String, BadUserName)>,
    /// Sets of stored names that look alike under `[users] unicode = "allow"` (sorted):
    /// a conflict like [`NamePlan::conflicts`].
    pub lookalikes: Vec<Vec<String>>,
}

impl NamePlan {
    /// A pure function of the stored names and the rules.
    pub fn new(stored: &[String], rules: &NameRules<'_>) -> Self {
        let all: std::collections::HashSet<&str> = stored.iter().map(String::as_str).collect();
        let mut scan = NameScan::default();
        for n in stored {
            scan.push(n, rules);
        }
        let with_key = |k: &str| {
            Ok::<_, std::convert::Infallible>(
                stored
                    .iter()
                    .filter(|n| lookalike_key(n) == k)
                    .cloned()
                    .collect(),
            )
        };
        scan.finish(
            |c| Ok::<_, std::convert::Infallible>(all.contains(c.as_str())),
            with_key,
            rules,
        )
        .unwrap_or_else(|never| match never {})
    }

    /// Whether the store must be refused.
    pub fn is_conflicted(&self) -> bool {
        !self.conflicts.is_empty() || !self.lookalikes.is_empty()
    }
}

/// Builds a [`NamePlan`] one stored name at a time. It keeps only the names that are not
/// canonical (none, in a store this product wrote) and, under `[users] unicode = "allow"`,
/// the ones beyond ASCII (the only ones that can look like another), not every name: the
/// daemon checks a million stored names at start in a few megabytes.
#[derive(Debug, Default)]
pub struct NameScan {
    /// Non-canonical stored names, by their canonical form.
    odd: BTreeMap<UserName, Vec<String>>,
    unreachable: Vec<(String, BadUserName)>,
    /// Canonical forms beyond ASCII, whose look-alikes are looked up in [`NameScan::finish`].
    wide: std::collections::BTreeSet<UserName>,
}

impl NameScan {
    pub fn push(&mut self, stored: &str, rules: &NameRules<'_>) {
        match UserName::canonical(stored, rules) {
            Ok(c) => {
                if rules.unicode && !c.is_ascii() {
                    self.wide.insert(c.clone());
                }
                if c.as_str() != stored {
                    self.odd.entry(c).or_default().push(stored.to_string());
                }
            }
            Err(e) => self.unreachable.push((stored.to_string(), e)),
        }
    }

    /// `is_stored(c)`: whether the canonical name `c` is itself a stored name (asked only
    /// for the canonical forms of the non-canonical names). A canonical form is its own
    /// canonical form, so a stored `c` and a stored `C` that folds to it are one group.
    /// `with_key(k)`: the stored names whose look-alike key is `k` (asked once per key of
    /// a name beyond ASCII, under `[users] unicode = "allow"`).
    pub fn finish<E>(
        self,
        mut is_stored: impl FnMut(&UserName) -> Result<bool, E>,
        mut with_key: impl FnMut(&str) -> Result<Vec<String>, E>,
        rules: &NameRules<'_>,
    ) -> Result<NamePlan, E> {
        let mut plan = NamePlan {
            unreachable: self.unreachable,
            ..NamePlan::default()
        };
        let mut keys = std::collections::HashSet::new();
        for wide in &self.wide {
            let key = lookalike_key(wide);
            if !keys.insert(key.clone()) {
                continue;
            }
            // The stored names a front end reaches with this key, by what they mean: more
            // than one meaning is more than one record of what may be one person.
            let mut meanings = std::collections::BTreeSet::new();
            let mut names = Vec::new();
            for stored in with_key(&key)? {
                // The store also answers the names whose key it does not know.
                if lookalike_key(&stored) != key {
                    continue;
                }
                if let Ok(c) = UserName::canonical(&stored, rules) {
                    meanings.insert(c);
                    names.push(stored);
                }
            }
            if meanings.len() > 1 {
                names.sort();
                plan.lookalikes.push(names);
            }
        }
        for (canonical, mut names) in self.odd {
            if is_stored(&canonical)? {
                names.push(canonical.as_str().to_string());
            }
            names.sort();
            match names.as_slice() {
                [one] => plan.renames.push((one.clone(), canonical)),
                _ => plan.conflicts.push((canonical, names)),
            }
        }
        Ok(plan)
    }
}

/// The plan for `store`'s names, read one at a time. `lookalikes`: whether to look them up,
/// which is asked only of a store whose keys are filled in (a look-up also answers every
/// row without a key).
fn scan_store(
    store: &dyn crate::store::Store,
    rules: &NameRules<'_>,
    lookalikes: bool,
) -> Result<NamePlan, StoreError> {
    let mut scan = NameScan::default();
    store.each_user_name(&mut |n| scan.push(n, rules))?;
    scan.finish(
        |c| Ok(store.user(c)?.is_some()),
        |k| {
            if lookalikes {
                store.names_with_key(k)
            } else {
                Ok(Vec::new())
            }
        },
        rules,
    )
}

/// Rows filled in per statement when the look-alike keys are filled in.
const KEY_BATCH: usize = 1000;

/// Gives every stored name its look-alike key: the rows that have none (a store just
/// upgraded), and all of them again when `recorded` (the fingerprint the names were last
/// checked against) names other Unicode tables than this program's. Returns how many.
fn fill_name_keys(tx: &mut dyn NameTx, recorded: Option<&str>) -> Result<usize, StoreError> {
    let current = lookalike_key_version();
    let keys_of = |fp: &str| {
        fp.split(' ')
            .find_map(|w| w.strip_prefix("keys="))
            .map(str::to_string)
    };
    if recorded.and_then(keys_of).is_some_and(|was| was != current) {
        tx.forget_name_keys()?;
    }
    let mut filled = 0;
    loop {
        let names = tx.names_without_key(KEY_BATCH)?;
        if names.is_empty() {
            return Ok(filled);
        }
        for n in &names {
            tx.set_name_key(n, &lookalike_key(n))?;
        }
        filled += names.len();
    }
}

/// Checks the stored names against the configured rules (see the module documentation);
/// refuses on a conflict, renames single non-canonical names, and records the rules.
pub(crate) fn check(core: &Core, when: NameCheck) -> Result<(), CoreError> {
    let users = &core.config.users;
    let rules = users.rules();
    let key = rules.fingerprint();
    let store = core.store.as_ref();
    match when {
        NameCheck::Skip => return Ok(()),
        // The PAM module's every login: one small read.
        NameCheck::IfRulesChanged => {
            if store.names_checked()?.as_deref() == Some(key.as_str()) {
                return Ok(());
            }
        }
        // A read first (no write lock held while a large store is scanned): most of the
        // time there is nothing to write.
        NameCheck::Always => {
            // Checked under these rules before: every key was filled in then, so the
            // look-alikes can be looked up here too (else the write below does it, once it
            // has filled them in).
            let checked = store.names_checked()?.as_deref() == Some(key.as_str());
            let plan = scan_store(store, &rules, checked)?;
            if plan.is_conflicted() {
                return Err(conflicts(users, plan));
            }
            if plan.renames.is_empty() && checked {
                return Ok(());
            }
        }
    }
    // Then under the write lock, since the names may have changed meanwhile.
    let now = crate::login::now();
    let mut refused = None;
    store.maintain_names(&mut |tx| {
        // Logins that met the new rules at once wait for the first one's scan, then find
        // it done: every name written under these rules since is canonical.
        if when == NameCheck::IfRulesChanged && tx.names_checked()?.as_deref() == Some(key.as_str())
        {
            return Ok(None);
        }
        // The keys first: the look-alike check reads them.
        let recorded = tx.names_checked()?;
        let filled = fill_name_keys(tx, recorded.as_deref())?;
        let mut scan = NameScan::default();
        tx.each_name(&mut |n| scan.push(n, &rules))?;
        let tx = std::cell::RefCell::new(tx);
        let plan = scan.finish(
            |c| Ok::<_, StoreError>(tx.borrow_mut().load(c.as_str())?.is_some()),
            |k| tx.borrow_mut().names_with_key(k),
            &rules,
        )?;
        let tx = tx.into_inner();
        if plan.is_conflicted() {
            refused = Some(conflicts(users, plan));
            // The keys filled in stay (`mfactl config check` reads them); nothing else.
            return Ok((filled > 0).then(Vec::new));
        }
        let mut events = Vec::new();
        for (from, to) in &plan.renames {
            let Some(rec) = tx.load(from)? else {
                continue;
            };
            let renamed = rename(rec, to, core.sealer.as_ref())?;
            tx.remove(from)?;
            tx.put(&renamed)?;
            events.push(AuditEvent::admin(
                now,
                to,
                CHECK_ACTOR,
                Action::Rename,
                ReasonCode::CanonicalName,
                Some(format!("stored as {from:?}; {}", describe(users))),
            ));
        }
        tx.set_names_checked(&key)?;
        Ok(Some(events))
    })?;
    match refused {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The stored names and what the rules make of them, for `mfactl config check`: nothing is
/// changed but the look-alike keys of rows that have none yet in a store whose names were
/// not checked under these rules (a store just upgraded), which the report reads.
pub fn report(core: &Core) -> Result<NamePlan, CoreError> {
    let rules = core.config.users.rules();
    // A store whose names were checked under these rules has every key (the check that
    // recorded them filled them in): no write lock for the usual case.
    if core.store.names_checked()?.as_deref() != Some(rules.fingerprint().as_str()) {
        core.store.maintain_names(&mut |tx| {
            let recorded = tx.names_checked()?;
            Ok((fill_name_keys(tx, recorded.as_deref())? > 0).then(Vec::new))
        })?;
    }
    Ok(scan_store(core.store.as_ref(), &rules, true)?)
}

fn conflicts(users: &UsersConfig, plan: NamePlan) -> CoreError {
    CoreError::NameConflicts(NameConflicts {
        rules: describe(users),
        groups: plan.conflicts,
        lookalikes: plan.lookalikes,
    })
}

/// `rec` under the name `to`, its key resealed for the new name (a sealer may bind a sealed
/// key to the name it was sealed for).
fn rename(
    mut rec: UserRecord,
    to: &UserName,
    sealer: &dyn Sealer,
) -> Result<UserRecord, StoreError> {
    let secret = |e| StoreError::Aborted(Abort::Secret(e));
    if let Some(sealed) = &rec.secret {
        let key = sealer.unseal(&rec.name, sealed).map_err(secret)?;
        rec.secret = Some(sealer.seal(to, &key).map_err(secret)?);
    }
    rec.name = to.clone();
    Ok(rec)
}

/// A stored name from an administrator (`mfactl users merge/remove`): taken as stored, not
/// canonicalised, since it names a row the rules may not reach.
fn stored_name(raw: &str) -> Result<UserName, CoreError> {
    UserName::parse(raw).map_err(|e| CoreError::bad_name(raw, e))
}

fn no_such(name: &UserName) -> CoreError {
    CoreError::Refused(Refusal::NoSuchUser(name.clone()))
}

impl Admin<'_> {
    /// Merges the stored record `from` into `into`, both named as stored: `into`'s key, codes
    /// and counters are kept, stored under `into`'s canonical name; `from`'s record is
    /// removed. The merged record keeps the earlier first sighting and grace start and the
    /// later lock, so a merge never lengthens a grace period nor lifts a lock. The audit
    /// trail of both names stays. Returns the name kept.
    pub fn merge_users(&self, from: &str, into: &str, now: i64) -> Result<UserName, CoreError> {
        let (from_name, into_name) = (stored_name(from)?, stored_name(into)?);
        let users = &self.core.config.users;
        let target = user_name(&self.core.config, into)?;
        if from_name == into_name {
            return Err(NameError::MergeIntoItself(from.to_string()).into());
        }
        let mut refused = None;
        self.core.store.maintain_names(&mut |tx| {
            let (Some(gone), Some(kept)) = (tx.load(from)?, tx.load(into)?) else {
                let missing = if tx.load(from)?.is_none() {
                    &from_name
                } else {
                    &into_name
                };
                refused = Some(no_such(missing));
                return Ok(None);
            };
            if target != into_name && target != from_name && tx.load(&target)?.is_some() {
                refused = Some(
                    NameError::MergeTargetTaken {
                        into: into.to_string(),
                        target: target.clone(),
                        rules: describe(users),
                    }
                    .into(),
                );
                return Ok(None);
            }
            let mut merged = rename(kept, &target, self.core.sealer.as_ref())?;
            merged.first_seen = merged.first_seen.min(gone.first_seen);
            merged.grace_started = match (merged.grace_started, gone.grace_started) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            merged.locked_until = merged.locked_until.max(gone.locked_until);
            merged.login_count = merged.login_count.saturating_add(gone.login_count);
            tx.remove(from)?;
            tx.remove(into)?;
            tx.put(&merged)?;
            Ok(Some(vec![AuditEvent::admin(
                now,
                &target,
                self.actor,
                Action::Merge,
                ReasonCode::Merged,
                Some(format!(
                    "{from:?} merged into {into:?}, kept as {target:?} with the key of {into:?}"
                )),
            )]))
        })?;
        match refused {
            Some(e) => Err(e),
            None => Ok(target),
        }
    }

    /// Removes the stored record `name` (as stored) and its one-time codes; the audit trail
    /// stays.
    pub fn remove_user(&self, name: &str, now: i64) -> Result<(), CoreError> {
        let user = stored_name(name)?;
        let mut found = true;
        self.core.store.maintain_names(&mut |tx: &mut dyn NameTx| {
            found = tx.remove(name)?;
            Ok(found.then(|| {
                vec![AuditEvent::admin(
                    now,
                    name,
                    self.actor,
                    Action::Remove,
                    ReasonCode::RecordRemoved,
                    None,
                )]
            }))
        })?;
        if found { Ok(()) } else { Err(no_such(&user)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    /// The typed name errors say what the strings they replaced said.
    #[test]
    fn name_errors_say_what_they_always_said() {
        let n = |x: &str| UserName::parse(x).unwrap();
        let rules = "[users] case = \"fold\", domains = [], unicode = \"allow\"".to_string();
        assert_eq!(
            NameError::MergeIntoItself("Alice".into()).to_string(),
            "cannot merge \"Alice\" into itself"
        );
        assert_eq!(
            NameError::MergeTargetTaken {
                into: "CONTOSO\\bob".into(),
                target: n("bob"),
                rules: rules.clone(),
            }
            .to_string(),
            format!(
                "\"CONTOSO\\\\bob\" would be stored as \"bob\", which is another record; merge or remove \"bob\" first ({rules})"
            )
        );
        let refused = CoreError::Refused(Refusal::NoSuchUser(n("eve")));
        let shown = refused.to_string();
        assert_eq!(
            NameError::ImportRefused {
                origin: "users.csv:3".into(),
                error: Box::new(refused),
            }
            .to_string(),
            format!("users.csv:3: {shown}")
        );
        assert_eq!(
            NameError::ImportLookAlikes {
                origin: "users.csv:4".into(),
                user: n("bob"),
                first: n("b\u{f6}b"),
                first_origin: "users.csv:2".into(),
            }
            .to_string(),
            "users.csv:4: \"bob\" looks like \"b\u{f6}b\" (users.csv:2): one person is one record; nothing was imported"
        );
        assert_eq!(
            NameError::InviteNotCanonical {
                user: n("Bob"),
                rules: rules.clone(),
            }
            .to_string(),
            format!(
                "the invite is for \"Bob\", which is no longer a user's canonical name under {rules}"
            )
        );
    }

    #[test]
    fn the_plan_finds_conflicts_renames_and_unreachable_names() {
        let domains = s(&["CONTOSO"]);
        let rules = NameRules {
            fold_case: true,
            domains: &domains,
            unicode: false,
        };
        let plan = NamePlan::new(
            &s(&[
                "Alice",
                "CONTOSO\\bob",
                "OTHER\\carol",
                "alice",
                "dave",
                "Eve",
                "eve@CONTOSO",
            ]),
            &rules,
        );
        let n = |x: &str| UserName::parse(x).unwrap();
        assert_eq!(
            plan.conflicts,
            vec![
                (n("alice"), s(&["Alice", "alice"])),
                (n("eve"), s(&["Eve", "eve@CONTOSO"]))
            ]
        );
        assert_eq!(plan.renames, vec![("CONTOSO\\bob".to_string(), n("bob"))]);
        assert_eq!(plan.unreachable.len(), 1);
        assert_eq!(plan.unreachable[0].0, "OTHER\\carol");
        // Exact case: Alice and alice are two users.
        let exact = NameRules {
            fold_case: false,
            domains: &domains,
            unicode: false,
        };
        let plan = NamePlan::new(&s(&["Alice", "alice"]), &exact);
        assert_eq!(plan, NamePlan::default());
    }

    #[test]
    fn names_beyond_ascii_are_unreachable_by_default_and_look_alikes_under_allow() {
        let stored = s(&["adrnin", "admin", "alice", "bob", "jörg", "àlice", "аlice"]);
        let none: Vec<String> = Vec::new();
        let default = NameRules {
            fold_case: true,
            domains: &none,
            unicode: false,
        };
        let plan = NamePlan::new(&stored, &default);
        assert!(!plan.is_conflicted(), "{plan:?}");
        let unreachable: Vec<&str> = plan.unreachable.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(unreachable, ["jörg", "àlice", "аlice"]);
        assert!(matches!(
            plan.unreachable[0].1,
            BadUserName::NotAscii { position: 2, .. }
        ));
        let allow = NameRules {
            unicode: true,
            ..default
        };
        let plan = NamePlan::new(&stored, &allow);
        // The accented and the Cyrillic alice beside alice; admin and adrnin share a
        // skeleton but are both ASCII, so they are two users; jörg looks like no one.
        assert_eq!(plan.lookalikes, vec![s(&["alice", "àlice", "аlice"])]);
        assert!(plan.conflicts.is_empty() && plan.unreachable.is_empty());
        let e = conflicts(
            &UsersConfig {
                unicode: UnicodeNames::Allow,
                ..UsersConfig::default()
            },
            plan,
        )
        .to_string();
        assert!(
            e.contains("\"alice\" and \"àlice\" and \"аlice\" look alike")
                && e.contains("unicode = \"allow\"")
                && e.contains("mfactl users merge"),
            "{e}"
        );
        // Spellings that NFKC refuses are unreachable, not look-alikes.
        let plan = NamePlan::new(&s(&["alice", "ａｌｉｃｅ"]), &allow);
        assert!(!plan.is_conflicted(), "{plan:?}");
        assert!(matches!(
            plan.unreachable[0].1,
            BadUserName::NotNfkc { position: 1, .. }
        ));
    }
}
