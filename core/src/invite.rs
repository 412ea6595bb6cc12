//! One-time enrolment links (`mfactl invite`, the portal's enrolment page).
//!
//! A token is 256 random bits in base64url (43 characters). The store keeps only its
//! SHA-256: a token is not a guessable code, so one fast hash is enough (a slow hash protects
//! low-entropy secrets; 2^256 candidates need none), and a lookup by hash leaks nothing useful
//! through its timing. A confirmed enrolment uses the invite up; it expires otherwise. Any
//! change of the user's key (an enrolment by any path, a replacement, an unlink) voids the
//! user's unused invites: a link no longer shows a key once the key state it was issued in
//! has passed.

use data_encoding::BASE64URL_NOPAD;
use mfa_model::{
    Action, AuditDecision, AuditEvent, Invite, Outcome, ReasonCode, Refusal, UserName,
};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::core::Core;
use crate::error::CoreError;
use crate::secret::TotpSecret;

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;
/// Characters of a token in a link.
pub const TOKEN_CHARS: usize = 43;

/// Where a token stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteState {
    /// Not a token of this store (or not a token at all).
    Unknown,
    Used {
        user: UserName,
    },
    Expired {
        user: UserName,
    },
    /// The user it names has a key already (enrolled some other way since).
    AlreadyEnrolled {
        user: UserName,
    },
    Usable {
        user: UserName,
        expires: i64,
    },
}

impl InviteState {
    /// The stable reason code of a state that refuses the link, for the audit trail.
    pub fn refusal_code(&self) -> Option<ReasonCode> {
        match self {
            InviteState::Unknown => Some(ReasonCode::InviteUnknown),
            InviteState::Used { .. } => Some(ReasonCode::InviteUsed),
            InviteState::Expired { .. } => Some(ReasonCode::InviteExpired),
            InviteState::AlreadyEnrolled { .. } => Some(ReasonCode::AlreadyEnrolled),
            InviteState::Usable { .. } => None,
        }
    }
}

/// What saving a key through an invite did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteEnrol {
    /// The key is stored and the invite used up.
    Linked { user: UserName },
    /// The code does not match the key; nothing changed, the invite still holds.
    WrongCode,
    /// The link no longer enrols (used, expired, unknown, enrolled meanwhile); nothing changed.
    Refused(InviteState),
}

/// SHA-256 of a token as it appears in a link.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether `s` has the form of a token (so anything else is refused before the store).
pub fn looks_like_token(s: &str) -> bool {
    s.len() == TOKEN_CHARS
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Refuses a validity outside [`mfa_model::INVITE_VALID_SECS`], whoever asks.
fn valid_for(valid_secs: i64) -> Result<(), CoreError> {
    if mfa_model::INVITE_VALID_SECS.contains(&valid_secs) {
        Ok(())
    } else {
        Err(Refusal::InviteValidity(valid_secs).into())
    }
}

/// A new token and the invite that keeps its hash.
fn new_invite(
    user: &UserName,
    now: i64,
    valid_secs: i64,
) -> Result<(Zeroizing<String>, Invite), CoreError> {
    let mut raw = Zeroizing::new([0u8; TOKEN_BYTES]);
    getrandom::fill(&mut raw[..])?;
    let token = Zeroizing::new(BASE64URL_NOPAD.encode(&raw[..]));
    let inv = Invite {
        hash: token_hash(&token),
        user: user.to_string(),
        created: now,
        expires: now.saturating_add(valid_secs.max(1)),
        used: None,
    };
    Ok((token, inv))
}

/// The link of an invite: `[portal] public_url` + `/enrol/` + the token; `None` where no
/// `public_url` is set (no link can be made).
pub fn invite_link(cfg: &mfa_config::Config, token: &str) -> Option<String> {
    cfg.portal
        .base_url()
        .map(|base| format!("{base}/enrol/{token}"))
}

/// The invite service. Get one from [`Core::invites`].
#[derive(Debug, Clone, Copy)]
pub struct Invites<'a> {
    pub(crate) core: &'a Core,
    pub(crate) actor: &'a str,
}

impl Invites<'_> {
    fn event(
        &self,
        now: i64,
        user: &str,
        reason: ReasonCode,
        detail: Option<String>,
    ) -> AuditEvent {
        AuditEvent::admin(now, user, self.actor, Action::Invite, reason, detail)
    }

    /// A new invite for `user` (who needs no record yet), valid `valid_secs`. Returns the
    /// token for the link; it is shown once and never stored. Audited without the token.
    ///
    /// Refused for a user who is enrolled: the link would only say "already linked" (the
    /// portal never replaces a key through an invite), so the administrator hears it now
    /// rather than the user later. [`Invites::issue_replacing`] removes the key first.
    pub fn issue(
        &self,
        user: &UserName,
        valid_secs: i64,
        now: i64,
    ) -> Result<Zeroizing<String>, CoreError> {
        valid_for(valid_secs)?;
        if self.core.store.user(user)?.is_some_and(|r| r.enrolled()) {
            return Err(CoreError::Refused(Refusal::AlreadyEnrolled {
                user: user.clone(),
                origin: None,
            }));
        }
        self.put_new(user, valid_secs, now)
    }

    /// `issue` for a user who may be enrolled: the current key is removed first (as
    /// `Admin::unlink`, audited as such), so the user has no key until the link is used.
    /// Says whether a key was removed.
    pub fn issue_replacing(
        &self,
        user: &UserName,
        valid_secs: i64,
        now: i64,
    ) -> Result<(Zeroizing<String>, bool), CoreError> {
        // Refused before anything changes: a bad validity must not cost the user the key.
        valid_for(valid_secs)?;
        let enrolled = self.core.store.user(user)?.is_some_and(|r| r.enrolled());
        if enrolled {
            self.core.admin(self.actor).unlink(user, now)?;
        }
        Ok((self.put_new(user, valid_secs, now)?, enrolled))
    }

    /// Stores a new invite (its validity checked by the caller).
    fn put_new(
        &self,
        user: &UserName,
        valid_secs: i64,
        now: i64,
    ) -> Result<Zeroizing<String>, CoreError> {
        let (token, inv) = new_invite(user, now, valid_secs)?;
        let ev = self.event(
            now,
            user,
            ReasonCode::Issued,
            Some(format!("valid {valid_secs}s")),
        );
        self.core
            .store
            .put_invites(std::slice::from_ref(&inv), std::slice::from_ref(&ev))?;
        self.core.sink.committed(self.core.store.as_ref(), &[ev]);
        Ok(token)
    }

    /// One invite for every stored user who is not enrolled, in one transaction, sorted by
    /// name.
    pub fn issue_unenrolled(
        &self,
        valid_secs: i64,
        now: i64,
    ) -> Result<Vec<(UserName, Zeroizing<String>)>, CoreError> {
        valid_for(valid_secs)?;
        let mut out = Vec::new();
        let mut invites = Vec::new();
        let mut events = Vec::new();
        let rules = self.core.config.users.rules();
        // The records stream past (a million users hold one at a time); only the names
        // that get a link are kept.
        let mut names = Vec::new();
        self.core.store.each_user(&mut |rec| {
            // A record no front end reaches (`OTHER\bob`, or beyond ASCII under the default
            // rules) gets no link: it could only make a record of that name.
            if !rec.enrolled() && rec.name.is_canonical(&rules) {
                names.push(rec.name);
            }
            Ok(())
        })?;
        for name in names {
            let (token, inv) = new_invite(&name, now, valid_secs)?;
            invites.push(inv);
            events.push(self.event(
                now,
                &name,
                ReasonCode::Issued,
                Some(format!("valid {valid_secs}s")),
            ));
            out.push((name, token));
        }
        self.core.store.put_invites(&invites, &events)?;
        self.core.sink.committed(self.core.store.as_ref(), &events);
        Ok(out)
    }

    /// Where the invite of `token` stands at `now`. Reads only.
    pub fn state(&self, token: &str, now: i64) -> Result<InviteState, CoreError> {
        if !looks_like_token(token) {
            return Ok(InviteState::Unknown);
        }
        let Some(inv) = self.core.store.invite(&token_hash(token))? else {
            return Ok(InviteState::Unknown);
        };
        // The store checked the name when it read the row.
        let user = UserName::parse(&inv.user).map_err(|_| CoreError::Bug("invite user name"))?;
        if inv.used.is_some() {
            return Ok(InviteState::Used { user });
        }
        if now >= inv.expires {
            return Ok(InviteState::Expired { user });
        }
        let rec = self.core.store.user(&user)?;
        // The user's key changed since the invite was issued (enrolled some other way, or
        // unlinked): the store voids such invites when the key changes; this says the same
        // for one voided before that (a store written by an older version), so an invite
        // never outlives the key state it was issued in.
        if rec
            .as_ref()
            .and_then(|r| r.mfa_changed)
            .is_some_and(|changed| changed > inv.created)
        {
            return Ok(InviteState::Expired { user });
        }
        if rec.is_some_and(|r| r.enrolled()) {
            return Ok(InviteState::AlreadyEnrolled { user });
        }
        Ok(InviteState::Usable {
            user,
            expires: inv.expires,
        })
    }

    /// Stores `secret` for the invite's user once `code` matches it and uses the invite up,
    /// in one store transaction. A wrong code changes nothing (the invite holds) and is audited; so is a link
    /// that no longer enrols. `client_ip` is the address the portal saw.
    pub fn enrol(
        &self,
        token: &str,
        secret: &TotpSecret,
        code: &str,
        client_ip: Option<&str>,
        now: i64,
    ) -> Result<InviteEnrol, CoreError> {
        let state = self.state(token, now)?;
        let InviteState::Usable { user, .. } = state else {
            self.refused(&state, client_ip, now)?;
            return Ok(InviteEnrol::Refused(state));
        };
        // The name was the user's one name when the invite was issued; the rules or the
        // store may have changed since (a look-alike enrolled meanwhile): a record is made
        // only for a name that is still one.
        if self.core.user_name(&user)? != user {
            return Err(crate::names::NameError::InviteNotCanonical {
                user,
                rules: crate::names::describe(&self.core.config.users),
            }
            .into());
        }
        let mut used = self.event(now, &user, ReasonCode::Used, None);
        used.client_ip = client_ip.map(str::to_string);
        // The key and the invite's use in one transaction: a crash or a second save of the
        // same link can never leave a used invite without its key, nor a key beside a
        // still-usable invite.
        match self.core.enrolment().enroll_with_invite(
            &user,
            secret,
            code,
            &token_hash(token),
            &used,
            now,
        ) {
            Ok(true) => {}
            Ok(false) => {
                // Used (by a save that raced this one) or expired since it was read.
                let state = self.state(token, now)?;
                self.refused(&state, client_ip, now)?;
                return Ok(InviteEnrol::Refused(state));
            }
            Err(CoreError::Refused(Refusal::WrongConfirmationCode)) => {
                let mut ev = self.event(now, &user, ReasonCode::WrongCode, None);
                ev.client_ip = client_ip.map(str::to_string);
                self.append(ev)?;
                return Ok(InviteEnrol::WrongCode);
            }
            Err(CoreError::Refused(Refusal::AlreadyEnrolled { .. })) => {
                let state = InviteState::AlreadyEnrolled { user };
                self.refused(&state, client_ip, now)?;
                return Ok(InviteEnrol::Refused(state));
            }
            Err(e) => return Err(e),
        }
        let enroll = AuditEvent::admin(
            now,
            &user,
            self.actor,
            Action::Enroll,
            ReasonCode::Confirmed,
            None,
        );
        self.core
            .sink
            .committed(self.core.store.as_ref(), &[enroll, used]);
        Ok(InviteEnrol::Linked { user })
    }

    /// Audits a link that was refused (`state.refusal_code()`).
    pub fn refused(
        &self,
        state: &InviteState,
        client_ip: Option<&str>,
        now: i64,
    ) -> Result<(), CoreError> {
        let user = match state {
            InviteState::Unknown => "-".to_string(),
            InviteState::Used { user }
            | InviteState::Expired { user }
            | InviteState::AlreadyEnrolled { user }
            | InviteState::Usable { user, .. } => user.to_string(),
        };
        let code = state.refusal_code().unwrap_or(ReasonCode::Refused);
        let mut ev = self.event(now, &user, code, None);
        ev.decision = AuditDecision::Login(Outcome::Deny).into();
        ev.client_ip = client_ip.map(str::to_string);
        self.append(ev)
    }

    /// Audits a refused portal request (`reason` a stable code such as `csrf_missing`,
    /// `oversized_field`, `session_missing`): nothing else is written.
    pub fn audit_refusal(
        &self,
        user: Option<&str>,
        reason: ReasonCode,
        client_ip: Option<&str>,
        now: i64,
    ) -> Result<(), CoreError> {
        let mut ev = AuditEvent::admin(
            now,
            user.unwrap_or("-"),
            self.actor,
            Action::Invite,
            reason,
            None,
        );
        ev.decision = AuditDecision::Login(Outcome::Deny).into();
        ev.client_ip = client_ip.map(str::to_string);
        self.append(ev)
    }

    fn append(&self, ev: AuditEvent) -> Result<(), CoreError> {
        let evs = std::slice::from_ref(&ev);
        self.core.store.append_audit(evs)?;
        self.core.sink.committed(self.core.store.as_ref(), evs);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use mfa_config::Config;
    use mfa_model::{Invite, UserName};

    use super::*;
    use crate::OpenMode;
    use crate::secret::Unsealed;
    use crate::totp::code_at_step;
    use mfa_store::testing::Delegate;
    use mfa_store_sqlite::SqliteStore;

    /// An invite issued before the user enrolled some other way stops working then, and
    /// shows no key again after a later unlink; one issued after the unlink works.
    #[test]
    fn an_invite_does_not_outlive_the_key_state_it_was_issued_in() {
        let (_dir, core) = crate::test_core(|_| {});
        let now = 1_800_000_000;
        let kim = UserName::parse("kim").unwrap();
        let inv = core.invites("test");
        let early = inv.issue(&kim, 3600, now).unwrap();
        assert!(matches!(
            inv.state(&early, now).unwrap(),
            InviteState::Usable { .. }
        ));
        // One issued in the second of the enrolment below ends with it, and still reads.
        let same_second = inv.issue(&kim, 3600, now + 10).unwrap();
        // Enrolled by the administrator (or at a PAM login, or an import): the link ends.
        core.enrolment()
            .enroll(
                &kim,
                &TotpSecret::generate().unwrap(),
                None,
                false,
                "test",
                now + 10,
            )
            .unwrap();
        assert!(matches!(
            inv.state(&early, now + 20).unwrap(),
            InviteState::Expired { .. }
        ));
        assert!(matches!(
            inv.state(&same_second, now + 10).unwrap(),
            InviteState::Expired { .. }
        ));
        core.admin("test").unlink(&kim, now + 30).unwrap();
        // After the unlink the early link still shows no key, and saving through it fails.
        assert!(matches!(
            inv.state(&early, now + 40).unwrap(),
            InviteState::Expired { .. }
        ));
        let key = TotpSecret::generate().unwrap();
        let code = code_at_step(&key, &core.config().totp.params(), (now + 40) / 30);
        assert!(matches!(
            inv.enrol(&early, &key, &code, None, now + 40).unwrap(),
            InviteEnrol::Refused(InviteState::Expired { .. })
        ));
        assert!(!core.store().user(&kim).unwrap().unwrap().enrolled());
        // A link issued in the same second as the unlink, or later, enrols.
        let fresh = inv.issue(&kim, 3600, now + 30).unwrap();
        assert!(matches!(
            inv.state(&fresh, now + 40).unwrap(),
            InviteState::Usable { .. }
        ));
        assert_eq!(
            inv.enrol(&fresh, &key, &code, None, now + 40).unwrap(),
            InviteEnrol::Linked { user: kim.clone() }
        );
        // A store that voided nothing (written before this rule): the key change says it.
        let stale = Invite {
            hash: token_hash(&"a".repeat(TOKEN_CHARS)),
            user: "kim".into(),
            created: now,
            expires: now + 3600,
            used: None,
        };
        core.store.put_invites(&[stale], &[]).unwrap();
        assert!(matches!(
            inv.state(&"a".repeat(TOKEN_CHARS), now + 50).unwrap(),
            InviteState::Expired { .. }
        ));
    }

    #[test]
    fn the_key_and_the_invites_use_commit_together() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteStore::open(
            &dir.path().join("mfa.db"),
            OpenMode::Create,
            Duration::from_secs(5),
        )
        .unwrap();
        let mut cfg = Config::default();
        cfg.audit.syslog = false;
        let params = cfg.totp.params();
        let core = Core::with_sealer(
            Arc::new(cfg),
            Box::new(Delegate::new(Box::new(sqlite)).failing_use_invite()),
            Box::new(Unsealed),
            "test",
        );
        let now = 1_800_000_000;
        let kim = UserName::parse("kim").unwrap();
        let token = core.invites("test").issue(&kim, 3600, now).unwrap();
        let key = TotpSecret::generate().unwrap();
        let code = code_at_step(&key, &params, now / 30);
        let r = core.invites("test").enrol(&token, &key, &code, None, now);
        let enrolled = core
            .store()
            .user(&kim)
            .unwrap()
            .is_some_and(|r| r.enrolled());
        let used = core.store().invites().unwrap()[0].used.is_some();
        assert_eq!(
            (enrolled, used),
            (true, true),
            "a key and its invite's use are one write: {r:?}"
        );
        assert_eq!(r.unwrap(), InviteEnrol::Linked { user: kim });
    }
}
