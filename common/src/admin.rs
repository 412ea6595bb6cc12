//! The administrator's operations on user records. Each is one store transaction with its
//! audit event; `mfactl` is only their command-line face.

use zeroize::Zeroizing;

use crate::audit::AuditEvent;
use crate::auth::{Authenticator, CoreError};
use crate::secret::TotpSecret;
use crate::store::{OtcKind, UserRecord};
use crate::totp::TotpParams;
use crate::verify::{new_one_time_code, store_one_time_code};

/// One user to enrol in a bulk import.
#[derive(Debug, Clone)]
pub struct ImportEntry {
    pub user: String,
    pub secret: TotpSecret,
    pub params: TotpParams,
    /// google-authenticator scratch codes, imported as backup codes.
    pub scratch_codes: Vec<Zeroizing<String>>,
    /// Where the entry came from, for error messages (`users.csv:12`).
    pub origin: String,
}

fn not_found(user: &str) -> String {
    format!("no such user {user:?} in the store")
}

impl Authenticator {
    /// Removes the user's key. Login history, backup codes and the audit trail stay.
    pub fn unlink(&self, user: &str, now: i64) -> Result<(), CoreError> {
        self.store().transact(&[user], &mut |recs| {
            let rec = recs[0].as_mut().ok_or_else(|| not_found(user))?;
            if !rec.enrolled() {
                return Err(format!("user {user:?} is not enrolled"));
            }
            rec.secret = None;
            rec.last_step = None;
            rec.mfa_changed = Some(now);
            Ok(vec![AuditEvent::admin(now, user, "unlink", "key removed")])
        })?;
        Ok(())
    }

    /// Clears a lockout and the failure counter.
    pub fn unlock(&self, user: &str, now: i64) -> Result<bool, CoreError> {
        let mut was_locked = false;
        self.store().transact(&[user], &mut |recs| {
            let rec = recs[0].as_mut().ok_or_else(|| not_found(user))?;
            was_locked = rec.locked(now).is_some();
            rec.locked_until = None;
            rec.failures = 0;
            rec.first_failure = None;
            Ok(vec![AuditEvent::admin(
                now,
                user,
                "unlock",
                if was_locked {
                    "lock cleared"
                } else {
                    "was not locked"
                },
            )])
        })?;
        Ok(was_locked)
    }

    /// Issues a temporary access code (shown once, stored hashed). Creates the user's record
    /// if needed: a user who lost the phone may have none yet.
    pub fn issue_temp_access(
        &self,
        user: &str,
        valid_secs: i64,
        uses: u32,
        now: i64,
    ) -> Result<Zeroizing<String>, CoreError> {
        if !mfa_config::valid_name(user) {
            return Err(CoreError::Invalid(format!(
                "{user:?} is not a valid user name"
            )));
        }
        let expires = now.saturating_add(valid_secs);
        let (code, stored) = new_one_time_code(OtcKind::Temporary, now, Some(expires), uses)
            .map_err(|e| CoreError::Invalid(format!("no random numbers from the system: {e}")))?;
        let params = TotpParams::from_config(&self.config().totp);
        self.store().transact(&[user], &mut |recs| {
            let rec = recs[0].get_or_insert_with(|| UserRecord::new(user, params, now));
            rec.codes.push(stored.clone());
            Ok(vec![AuditEvent::admin(
                now,
                user,
                "temp-access",
                &format!("issued, {uses} use(s), valid {valid_secs}s"),
            )])
        })?;
        Ok(code)
    }

    /// Revokes every temporary access code of the user; returns how many were usable.
    pub fn revoke_temp_access(&self, user: &str, now: i64) -> Result<usize, CoreError> {
        let mut n = 0;
        self.store().transact(&[user], &mut |recs| {
            let rec = recs[0].as_mut().ok_or_else(|| not_found(user))?;
            n = rec.usable_codes(OtcKind::Temporary, now);
            rec.codes.retain(|c| c.kind != OtcKind::Temporary);
            Ok(vec![AuditEvent::admin(
                now,
                user,
                "temp-access",
                &format!("revoked {n}"),
            )])
        })?;
        Ok(n)
    }

    /// A new set of backup codes; the old set stops working in the same transaction.
    pub fn issue_backup_codes(
        &self,
        user: &str,
        count: u32,
        now: i64,
    ) -> Result<Vec<Zeroizing<String>>, CoreError> {
        let mut shown = Vec::new();
        let mut stored = Vec::new();
        for _ in 0..count {
            let (c, s) = new_one_time_code(OtcKind::Backup, now, None, 1).map_err(|e| {
                CoreError::Invalid(format!("no random numbers from the system: {e}"))
            })?;
            shown.push(c);
            stored.push(s);
        }
        self.store().transact(&[user], &mut |recs| {
            let rec = recs[0].as_mut().ok_or_else(|| not_found(user))?;
            if !rec.enrolled() {
                return Err(format!(
                    "user {user:?} is not enrolled; enrol first, then issue backup codes"
                ));
            }
            rec.codes.retain(|c| c.kind != OtcKind::Backup);
            rec.codes.extend(stored.iter().cloned());
            Ok(vec![AuditEvent::admin(
                now,
                user,
                "backup-codes",
                &format!("new set of {count}"),
            )])
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
        let names: Vec<&str> = entries.iter().map(|e| e.user.as_str()).collect();
        let mut backup = Vec::with_capacity(entries.len());
        for e in entries {
            let mut codes = Vec::new();
            for sc in &e.scratch_codes {
                codes.push(
                    store_one_time_code(OtcKind::Backup, sc, now, None, 1).map_err(|e| {
                        CoreError::Invalid(format!("no random numbers from the system: {e}"))
                    })?,
                );
            }
            backup.push(codes);
        }
        self.store().transact(&names, &mut |recs| {
            let mut events = Vec::with_capacity(entries.len());
            for ((slot, e), codes) in recs.iter_mut().zip(entries).zip(&backup) {
                let rec = slot.get_or_insert_with(|| UserRecord::new(&e.user, e.params, now));
                if rec.enrolled() && !replace {
                    return Err(format!("{}: user {:?} is already enrolled (use --replace to overwrite); nothing was imported", e.origin, e.user));
                }
                rec.secret = Some(e.secret.clone());
                rec.params = e.params;
                rec.mfa_created = rec.mfa_created.or(Some(now));
                rec.mfa_changed = Some(now);
                rec.last_step = None;
                if !codes.is_empty() {
                    rec.codes.retain(|c| c.kind != OtcKind::Backup);
                    rec.codes.extend(codes.iter().cloned());
                }
                events.push(AuditEvent::admin(now, &e.user, "import", &e.origin));
            }
            Ok(events)
        })?;
        Ok(())
    }

    /// Deletes audit events older than `audit.retention`.
    pub fn prune_audit(&self, now: i64) -> Result<usize, CoreError> {
        let keep = self.config().audit.retention.secs_i64();
        Ok(self.store().prune_audit(now.saturating_sub(keep))?)
    }
}
