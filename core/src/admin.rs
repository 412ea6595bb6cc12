//! The administrator's operations on user records. Each is one store transaction with its
//! audit event, done through an actor (`mfactl`, the portal) that the event names; the
//! command-line tool and the portal are only their faces.

use mfa_model::{
    Action, AuditEvent, OtcKind, ReasonCode, Refusal, TotpParams, UserName, UserRecord,
};
use zeroize::Zeroizing;

use crate::core::Core;
use crate::core::STORE_WIDE;
use crate::error::CoreError;
use crate::keyfile;
use crate::keygen::KeyGeneration;
use crate::names::NameError;
use crate::secret::{Encrypted, Sealer, StoreKey, TotpSecret};
use crate::store::{Abort, AuditQuery, Store};
use crate::verify::{new_one_time_code, store_one_time_code};

/// One user to enrol in a bulk import.
#[derive(Debug, Clone)]
pub struct ImportEntry {
    pub user: UserName,
    pub secret: TotpSecret,
    pub params: TotpParams,
    /// google-authenticator scratch codes, imported as backup codes.
    pub scratch_codes: Vec<Zeroizing<String>>,
    /// Where the entry came from, for error messages (`users.csv:12`).
    pub origin: String,
}

/// The admin service. Get one from [`Core::admin`].
#[derive(Debug, Clone, Copy)]
pub struct Admin<'a> {
    pub(crate) core: &'a Core,
    pub(crate) actor: &'a str,
}

/// The one slot of a single-user transaction, which must hold a record.
fn existing<'r>(
    recs: &'r mut [Option<UserRecord>],
    user: &UserName,
) -> Result<&'r mut UserRecord, Abort> {
    recs.get_mut(0)
        .and_then(Option::as_mut)
        .ok_or_else(|| Abort::Refused(Refusal::NoSuchUser(user.clone())))
}

impl Admin<'_> {
    fn event(&self, now: i64, user: &UserName, action: Action, reason: ReasonCode) -> AuditEvent {
        AuditEvent::admin(now, user, self.actor, action, reason, None)
    }

    /// Removes the user's key and every credential that stood for it, in one transaction:
    /// the backup codes and temporary-access codes, the remembered networks, and (through
    /// the changed `mfa_changed`, see [`Store::transact`]) every unused invite, so a link
    /// issued before the user enrolled cannot show a key again now. Login history and the
    /// audit trail stay. After a lost phone, a new temporary-access code is the way in.
    pub fn unlink(&self, user: &UserName, now: i64) -> Result<(), CoreError> {
        self.core.store.transact(&[user], &mut |recs| {
            let rec = existing(recs, user)?;
            if !rec.enrolled() {
                return Err(Abort::Refused(Refusal::NotEnrolled(user.clone())));
            }
            rec.secret = None;
            rec.last_step = None;
            // Codes minted for this key and a remembered network stood for it.
            let codes = rec.codes.len();
            rec.codes.clear();
            rec.unlocks.clear();
            rec.mfa_changed = Some(now);
            let mut ev = self.event(now, user, Action::Unlink, ReasonCode::KeyRemoved);
            ev.detail = Some(format!("{codes} one-time code(s) removed"));
            Ok(vec![ev])
        })?;
        Ok(())
    }

    /// Remembers client address `ip` for the user (the portal's "Unlock"), for
    /// `[policy] remember` from `now`; replaces an earlier unlock of the same address.
    /// Refused when remembering is off, or when `signed_in` (the key the user signed in
    /// with) is no longer the user's key or the user is locked ([`Refusal::SignInEnded`]).
    /// Returns the expiry.
    pub fn remember_network(
        &self,
        user: &UserName,
        signed_in: &KeyGeneration,
        ip: std::net::IpAddr,
        now: i64,
    ) -> Result<i64, CoreError> {
        let remember = self.core.config.policy.remember.secs_i64();
        if remember <= 0 {
            return Err(CoreError::Refused(Refusal::RememberOff));
        }
        let expires = now.saturating_add(remember);
        let ip = ip.to_string();
        self.core.store.transact(&[user], &mut |recs| {
            let rec = existing(recs, user)?;
            signed_in
                .holds(user, Some(rec), now)
                .map_err(Abort::Refused)?;
            if !rec.enrolled() {
                return Err(Abort::Refused(Refusal::NotEnrolled(user.clone())));
            }
            // Expired ones go too: the list stays a few entries long. One stamped in the
            // future (another node's clock ahead) lasts no longer than `remember` from now.
            rec.unlocks.retain(|u| u.ip != ip && now < u.expires);
            rec.clamp_future_unlocks(now, remember);
            rec.unlocks.push(mfa_model::Unlock {
                ip: ip.clone(),
                created: now,
                expires,
            });
            let mut ev = self.event(now, user, Action::Remember, ReasonCode::NetworkUnlocked);
            ev.client_ip = Some(ip.clone());
            ev.detail = Some(format!("until {}", mfa_config::format_utc(expires)));
            Ok(vec![ev])
        })?;
        Ok(expires)
    }

    /// Ends the user's remembered networks, or only `ip`'s; returns how many were in force
    /// ([`mfa_model::UserRecord::unlock_in_force`], what `mfactl unlocks` lists).
    pub fn revoke_networks(
        &self,
        user: &UserName,
        ip: Option<std::net::IpAddr>,
        now: i64,
    ) -> Result<usize, CoreError> {
        let ip = ip.map(|i| i.to_string());
        let remember = self.core.config.policy.remember.secs_i64();
        let mut n = 0;
        self.core.store.transact(&[user], &mut |recs| {
            let rec = existing(recs, user)?;
            let before = rec.unlocks.len();
            // Counted as `mfactl unlocks` lists them: only unlocks that still let a login
            // in. Rows that no longer do (expired, outlived `[policy] remember`, from before
            // a key change) are dropped too, without counting as revoked.
            n = rec
                .unlocks
                .iter()
                .filter(|u| {
                    rec.unlock_in_force(u, now, remember) && ip.as_deref().is_none_or(|i| u.ip == i)
                })
                .count();
            let current = |u: &mfa_model::Unlock| now < u.expires;
            rec.unlocks
                .retain(|u| ip.as_deref().is_some_and(|i| u.ip != i) && current(u));
            let mut ev = self.event(now, user, Action::Remember, ReasonCode::NetworkRevoked);
            ev.client_ip = ip.clone();
            ev.detail = Some(format!("revoked {n} of {before}"));
            Ok(vec![ev])
        })?;
        Ok(n)
    }

    /// Clears a lockout and the failure counter; says whether the user was locked.
    pub fn unlock(&self, user: &UserName, now: i64) -> Result<bool, CoreError> {
        let mut was_locked = false;
        self.core.store.transact(&[user], &mut |recs| {
            let rec = existing(recs, user)?;
            was_locked = rec.locked(now).is_some();
            was_locked |= rec
                .sources
                .iter()
                .any(|s| s.locked_until.is_some_and(|u| now < u));
            rec.locked_until = None;
            rec.failures = 0;
            rec.first_failure = None;
            rec.sources.clear();
            let reason = if was_locked {
                ReasonCode::LockCleared
            } else {
                ReasonCode::NotLocked
            };
            Ok(vec![self.event(now, user, Action::Unlock, reason)])
        })?;
        Ok(was_locked)
    }

    /// Issues a temporary access code (shown once, stored hashed). Creates the user's record
    /// if needed: a user who lost the phone may have none yet.
    pub fn issue_temp_access(
        &self,
        user: &UserName,
        valid_secs: i64,
        uses: u32,
        now: i64,
    ) -> Result<Zeroizing<String>, CoreError> {
        let expires = now.saturating_add(valid_secs);
        let (code, stored) = new_one_time_code(OtcKind::Temporary, now, Some(expires), uses)?;
        let params = self.core.config.totp.params();
        self.core.store.transact(&[user], &mut |recs| {
            let slot = recs.get_mut(0).ok_or(Abort::Bug("no slot"))?;
            let rec = slot.get_or_insert_with(|| UserRecord::new(user, params, now));
            rec.codes.push(stored.clone());
            let mut ev = self.event(now, user, Action::TempAccess, ReasonCode::Issued);
            ev.detail = Some(format!("{uses} use(s), valid {valid_secs}s"));
            Ok(vec![ev])
        })?;
        Ok(code)
    }

    /// Revokes every temporary access code of the user; returns how many were usable.
    pub fn revoke_temp_access(&self, user: &UserName, now: i64) -> Result<usize, CoreError> {
        let mut n = 0;
        self.core.store.transact(&[user], &mut |recs| {
            let rec = existing(recs, user)?;
            n = rec.usable_codes(OtcKind::Temporary, now);
            rec.codes.retain(|c| c.kind != OtcKind::Temporary);
            let mut ev = self.event(now, user, Action::TempAccess, ReasonCode::Revoked);
            ev.detail = Some(format!("revoked {n}"));
            Ok(vec![ev])
        })?;
        Ok(n)
    }

    /// A new set of `count` backup codes (within [`mfa_model::BACKUP_CODES`], else
    /// [`Refusal::BackupCodeCount`]); the old set stops working in the same transaction. With
    /// `signed_in` (the portal: the key the user signed in with), refused with
    /// [`Refusal::SignInEnded`] once that is no longer the user's key or the user is locked.
    pub fn issue_backup_codes(
        &self,
        user: &UserName,
        count: u32,
        signed_in: Option<&KeyGeneration>,
        now: i64,
    ) -> Result<Vec<Zeroizing<String>>, CoreError> {
        if !mfa_model::BACKUP_CODES.contains(&count) {
            return Err(Refusal::BackupCodeCount(count).into());
        }
        let mut shown = Vec::new();
        let mut stored = Vec::new();
        for _ in 0..count {
            let (c, s) = new_one_time_code(OtcKind::Backup, now, None, 1)?;
            shown.push(c);
            stored.push(s);
        }
        self.core.store.transact(&[user], &mut |recs| {
            let rec = existing(recs, user)?;
            if let Some(k) = signed_in {
                k.holds(user, Some(rec), now).map_err(Abort::Refused)?;
            }
            if !rec.enrolled() {
                return Err(Abort::Refused(Refusal::BackupCodesNeedEnrolment(
                    user.clone(),
                )));
            }
            rec.codes.retain(|c| c.kind != OtcKind::Backup);
            rec.codes.extend(stored.iter().cloned());
            let mut ev = self.event(now, user, Action::BackupCodes, ReasonCode::NewSet);
            ev.detail = Some(format!("new set of {count}"));
            Ok(vec![ev])
        })?;
        Ok(shown)
    }

    /// Enrols every entry in one transaction: all or nothing.
    pub fn import(
        &self,
        entries: &[ImportEntry],
        replace: bool,
        now: i64,
    ) -> Result<(), CoreError> {
        let names: Vec<&UserName> = entries.iter().map(|e| &e.user).collect();
        self.refuse_lookalikes(entries)?;
        let mut prepared = Vec::with_capacity(entries.len());
        for e in entries {
            let codes = e
                .scratch_codes
                .iter()
                .map(|sc| store_one_time_code(OtcKind::Backup, sc, now, None, 1))
                .collect::<Result<Vec<_>, _>>()?;
            prepared.push((self.core.sealer.seal(&e.user, &e.secret)?, codes));
        }
        self.core.store.transact(&names, &mut |recs| {
            let mut events = Vec::with_capacity(entries.len());
            for ((slot, e), (sealed, codes)) in recs.iter_mut().zip(entries).zip(&prepared) {
                let rec = slot.get_or_insert_with(|| UserRecord::new(&e.user, e.params, now));
                if rec.enrolled() && !replace {
                    return Err(Abort::Refused(Refusal::AlreadyEnrolled {
                        user: e.user.clone(),
                        origin: Some(e.origin.clone()),
                    }));
                }
                rec.secret = Some(sealed.clone());
                rec.params = e.params;
                rec.mfa_created = rec.mfa_created.or(Some(now));
                rec.mfa_changed = Some(now);
                rec.last_step = None;
                if !codes.is_empty() {
                    rec.codes.retain(|c| c.kind != OtcKind::Backup);
                    rec.codes.extend(codes.iter().cloned());
                }
                let mut ev = self.event(now, &e.user, Action::Import, ReasonCode::Imported);
                ev.detail = Some(e.origin.clone());
                events.push(ev);
            }
            Ok(events)
        })?;
        Ok(())
    }

    /// Under `[users] unicode = "allow"`: no imported name may look like a stored user's
    /// name or like another name of the same import (`mfa_model::lookalike_key`), or the
    /// import would make two records of one person. The names came through
    /// [`crate::names::user_name`], which has no store.
    fn refuse_lookalikes(&self, entries: &[ImportEntry]) -> Result<(), CoreError> {
        if !self.core.config.users.rules().unicode {
            return Ok(());
        }
        let mut by_key: std::collections::HashMap<String, Vec<&ImportEntry>> =
            std::collections::HashMap::new();
        for e in entries {
            crate::names::refuse_lookalike(self.core, &e.user, &e.user).map_err(|err| {
                NameError::ImportRefused {
                    origin: e.origin.clone(),
                    error: Box::new(err),
                }
            })?;
            let same = by_key.entry(mfa_model::lookalike_key(&e.user)).or_default();
            if let Some(first) = same
                .iter()
                .find(|f| mfa_model::look_alike(&f.user, &e.user))
            {
                return Err(NameError::ImportLookAlikes {
                    origin: e.origin.clone(),
                    user: e.user.clone(),
                    first: first.user.clone(),
                    first_origin: first.origin.clone(),
                }
                .into());
            }
            same.push(e);
        }
        Ok(())
    }

    /// Deletes audit events older than `audit.retention`, and the records of names that
    /// never enrolled, never got in and were first seen before then. Returns how many of
    /// each.
    pub fn prune(&self, now: i64) -> Result<(usize, usize), CoreError> {
        let before = now.saturating_sub(self.core.config.audit.retention.secs_i64());
        let events = self.core.store.prune_audit(before)?;
        let users = self.core.store.prune_unenrolled(before)?;
        Ok((events, users))
    }

    /// Rotates the store key: a new random key is written to `<key_file>.new`, every seed
    /// is re-encrypted under it and the store records its id in ONE transaction, then the
    /// new file replaces the key file (rename, directory synced). If anything before the
    /// commit fails, nothing changed and the old key still works; a crash between the
    /// commit and the rename is finished by the next opener (see `keyfile`). Returns how
    /// many seeds were re-encrypted.
    pub fn rekey(&self, now: i64) -> Result<usize, CoreError> {
        let path = self.core.config.store.key_path();
        let pending = keyfile::pending_path(&path);
        let old = self
            .core
            .sealer
            .key_id()
            .ok_or(CoreError::Bug("rekey without a store key"))?;
        if self.core.key_pending {
            // The last rekey committed but did not rename: finish it first.
            keyfile::promote(&pending, &path)?;
        } else {
            keyfile::remove_stale(&pending)?;
        }
        let key = StoreKey::generate()?;
        let new_id = key.id();
        // Durable before the store names it, so a committed store never lacks its key.
        let written = keyfile::write_new(&pending, &key)?;
        let new = Encrypted::new(key);
        if !written {
            return Err(CoreError::Store(crate::store::StoreError::KeyChanged {
                context: format!("writing {}", pending.display()),
            }));
        }
        let events = [AuditEvent::admin(
            now,
            STORE_WIDE,
            self.actor,
            Action::Rekey,
            ReasonCode::Rekeyed,
            Some(format!(
                "key id {} -> {}",
                crate::secret::hex(&old),
                crate::secret::hex(&new_id)
            )),
        )];
        let sealer = self.core.sealer.as_ref();
        let done = self.core.store.reseal(
            Some(old),
            new_id,
            &mut |user, sealed| {
                let secret = sealer.unseal(user, sealed).map_err(Abort::Secret)?;
                new.seal(user, &secret).map_err(Abort::Secret)
            },
            &mut |user, device, sealed| {
                let what = crate::secret::SealedFor::PushSubscription { user, device };
                let value = sealer.unseal_blob(&what, sealed).map_err(Abort::Secret)?;
                new.seal_blob(&what, &value).map_err(Abort::Secret)
            },
            &events,
        );
        let count = match done {
            Ok(n) => n,
            Err(e) => {
                // Nothing was committed: the old key file is still the store's key.
                let _ = keyfile::remove_stale(&pending);
                return Err(e.into());
            }
        };
        keyfile::promote(&pending, &path)?;
        Ok(count)
    }
    /// Copies this store, row for row (users with their one-time codes and address
    /// counters, the whole audit trail), into the empty store `target`, in one transaction
    /// there: `mfactl migrate`. A target that holds anything is refused and left as it was.
    /// Seeds are copied as stored (sealed), with the id of the key they are sealed under,
    /// so the target opens with the same key file (and only with it). The name-check mark
    /// is copied too. A rekey between the reads makes the copy refuse (its seeds would not
    /// match the key id), never copy seeds the recorded key cannot open.
    pub fn copy_to(&self, target: &dyn Store) -> Result<Copied, CoreError> {
        let facts = crate::store::StoreFacts {
            key_id: self.core.store.store_key_id()?,
            names_checked: self.core.store.names_checked()?,
        };
        let users = self.core.store.users()?;
        let audit = self.core.store.audit(&AuditQuery::default())?;
        target.import_all(&users, &audit, &facts)?;
        Ok(Copied {
            users: users.len(),
            codes: users.iter().map(|u| u.codes.len()).sum(),
            sources: users.iter().map(|u| u.sources.len()).sum(),
            audit: audit.len(),
        })
    }
}

/// What [`Admin::copy_to`] copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub users: usize,
    pub codes: usize,
    pub sources: usize,
    pub audit: usize,
}
