//! Enrolment: what a user sees (the `otpauth://` URI, its QR code in the terminal, SVG or
//! PNG, and the key for typing by hand; the only place a secret is ever shown), and the
//! service that stores a new key once the user proved the app has it.

use std::fmt::Write as _;

use mfa_model::{
    Action, AuditDecision, AuditEvent, Outcome, ReasonCode, Refusal, UserName, UserRecord,
};
use qrcode::render::{svg, unicode};
use qrcode::{Color, EcLevel, QrCode};
use zeroize::Zeroizing;

use crate::core::Core;
use crate::error::CoreError;
use crate::keygen::KeyGeneration;
use crate::login::{Request, TxEnv};
use crate::policy::{Decision, Reason};
use crate::secret::TotpSecret;
use crate::totp::{CodeMatch, TotpParams, check};
use crate::verify::normalize_code;

/// Which apps to use and how, for every front end that shows a new key.
pub const APPS: &str = "Microsoft Authenticator (\"Other account\"), Google Authenticator or Authy";

/// Everything a front end shows for a new key, computed once; each front end lays it out
/// for its medium (a terminal, a PAM conversation, a web page). Wiped on drop.
#[derive(Debug)]
pub struct Sheet {
    /// The account as the app lists it: `Issuer:user`.
    pub account: String,
    pub uri: Zeroizing<String>,
    /// The QR code for a terminal; `None` when the URI is too long for one.
    pub qr: Option<Zeroizing<String>>,
    /// The key in groups of four.
    pub key: Zeroizing<String>,
    /// `time-based, SHA1, 6 digits, every 30 seconds`.
    pub kind: String,
}

impl Sheet {
    pub fn new(issuer: &str, user: &UserName, secret: &TotpSecret, p: &TotpParams) -> Self {
        Self::for_account(issuer, user.as_str(), secret, p)
    }

    /// A sheet whose entry in the app is named `account` instead of the user's name: a
    /// replacement key shown while the old one still works, so that the user can tell the
    /// two entries apart and delete the right one.
    pub fn for_account(issuer: &str, account: &str, secret: &TotpSecret, p: &TotpParams) -> Self {
        let uri = otpauth_uri(issuer, account, secret, p);
        Self {
            account: format!("{issuer}:{account}"),
            qr: qr_terminal(&uri).ok(),
            uri,
            key: secret.to_grouped(),
            kind: format!(
                "time-based, {}, {} digits, every {} seconds",
                p.algorithm.as_str(),
                p.digits,
                p.period
            ),
        }
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters. Written here because the
/// label needs only this one function.
fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The Key URI Format that Google Authenticator, Microsoft Authenticator and Authy read:
/// `otpauth://totp/Issuer:account?secret=...&issuer=Issuer&algorithm=SHA1&digits=6&period=30`.
pub fn otpauth_uri(
    issuer: &str,
    account: &str,
    secret: &TotpSecret,
    p: &TotpParams,
) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm={}&digits={}&period={}",
        pct(issuer),
        pct(account),
        secret.to_base32().as_str(),
        pct(issuer),
        p.algorithm.as_str(),
        p.digits,
        p.period
    ))
}

fn code(uri: &str) -> Result<QrCode, String> {
    QrCode::with_error_correction_level(uri.as_bytes(), EcLevel::M)
        .map_err(|e| format!("cannot make a QR code: {e}"))
}

/// The QR code in Unicode half blocks, light modules drawn so it scans from a dark terminal.
pub fn qr_terminal(uri: &str) -> Result<Zeroizing<String>, String> {
    qr_terminal_as(uri, TerminalQr::DarkBackground)
}

/// How a QR code in half blocks is meant to be seen. A terminal draws the characters in its
/// text colour, so plain half blocks scan only on the background they were drawn for: light
/// modules drawn read on a dark background (and come out inverted, which scanners refuse,
/// on a light one), and the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminalQr {
    /// Its own colours: black modules on a white field, set with 256-colour escapes (palette
    /// entries 16 and 231, which terminal themes leave as pure black and white), so it scans
    /// whatever the terminal's background. Each line resets the colours at its end.
    Colours,
    /// Plain characters for light text on a dark background: light modules drawn.
    DarkBackground,
    /// Plain characters for dark text on a light background (or paper): dark modules drawn.
    LightBackground,
}

/// Foreground black (16), background white (231), from the 256-colour palette.
const QR_COLOURS: &str = "\x1b[38;5;16;48;5;231m";
const RESET: &str = "\x1b[0m";

/// The QR code in Unicode half blocks for `style`.
pub fn qr_terminal_as(uri: &str, style: TerminalQr) -> Result<Zeroizing<String>, String> {
    let c = code(uri)?;
    let mut r = c.render::<unicode::Dense1x2>();
    r.quiet_zone(true);
    if style == TerminalQr::DarkBackground {
        r.dark_color(unicode::Dense1x2::Light)
            .light_color(unicode::Dense1x2::Dark);
    }
    let plain = r.build();
    if style != TerminalQr::Colours {
        return Ok(Zeroizing::new(plain));
    }
    let plain = Zeroizing::new(plain);
    // Sized once, so no growth leaves a copy of the code (it holds the key) behind.
    let lines = plain.lines().count();
    let mut out = Zeroizing::new(String::with_capacity(
        plain.len() + lines * (QR_COLOURS.len() + RESET.len()),
    ));
    for (i, line) in plain.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(QR_COLOURS);
        out.push_str(line);
        out.push_str(RESET);
    }
    Ok(out)
}

/// The QR code as an SVG document.
pub fn qr_svg(uri: &str) -> Result<Zeroizing<String>, String> {
    let c = code(uri)?;
    Ok(Zeroizing::new(
        c.render::<svg::Color<'_>>()
            .min_dimensions(256, 256)
            .quiet_zone(true)
            .build(),
    ))
}

/// The QR code as a PNG (8-bit grayscale, 8 pixels a module, 4-module quiet zone). Drawn
/// here with the small `png` crate rather than qrcode's `image` feature, which would pull a
/// whole imaging library into a PAM module.
pub fn qr_png(uri: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let c = code(uri)?;
    let (w, scale, quiet) = (c.width(), 8usize, 4usize);
    let colors = c.to_colors();
    let side = (w + 2 * quiet) * scale;
    let mut pixels = Zeroizing::new(vec![255u8; side * side]);
    for y in 0..w {
        for x in 0..w {
            if colors.get(y * w + x) == Some(&Color::Dark) {
                for dy in 0..scale {
                    let row = ((y + quiet) * scale + dy) * side;
                    let start = row + (x + quiet) * scale;
                    if let Some(px) = pixels.get_mut(start..start + scale) {
                        px.fill(0);
                    }
                }
            }
        }
    }
    let mut out = Zeroizing::new(Vec::new());
    {
        let side32 = u32::try_from(side).map_err(|_| "QR code too large".to_string())?;
        let mut enc = png::Encoder::new(&mut *out, side32, side32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().map_err(|e| e.to_string())?;
        wr.write_image_data(&pixels).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// The enrolment service. Get one from [`Core::enrolment`].
#[derive(Debug, Clone, Copy)]
pub struct Enrolment<'a> {
    pub(crate) core: &'a Core,
}

impl Enrolment<'_> {
    /// Whether `user` has a key already (to refuse before a key is shown that would never
    /// be stored).
    pub fn is_enrolled(&self, user: &UserName) -> Result<bool, CoreError> {
        Ok(self.core.store.user(user)?.is_some_and(|r| r.enrolled()))
    }

    /// Stores a new secret for `user`, done by `actor`. With `confirm_code`, the code must
    /// match the secret (the user proved the app has it), and its step becomes the last
    /// accepted one so the confirmation code cannot be replayed. Refuses to replace an
    /// existing secret unless `replace`.
    pub fn enroll(
        &self,
        user: &UserName,
        secret: &TotpSecret,
        confirm_code: Option<&str>,
        replace: bool,
        actor: &str,
        now: i64,
    ) -> Result<(), CoreError> {
        let reason = if confirm_code.is_some() {
            ReasonCode::Confirmed
        } else {
            ReasonCode::Unconfirmed
        };
        let ev = AuditEvent::admin(now, user, actor, Action::Enroll, reason, None);
        let mode = if replace {
            Mode::NewOrReplace
        } else {
            Mode::New
        };
        self.store_key(user, secret, confirm_code, mode, now, &ev, None)
            .map(|_| ())
    }

    /// The enrolment of an invite link: stores `secret` for `user` once `code` matches it
    /// and uses the invite (`invite`, its token's hash) up, both in one store transaction
    /// with the `enroll` event and `used`. `Ok(false)`: the invite was used or expired
    /// meanwhile, and nothing was written.
    pub(crate) fn enroll_with_invite(
        &self,
        user: &UserName,
        secret: &TotpSecret,
        code: &str,
        invite: &[u8; 32],
        used: &AuditEvent,
        now: i64,
    ) -> Result<bool, CoreError> {
        let ev = AuditEvent::admin(
            now,
            user,
            &used.service,
            Action::Enroll,
            ReasonCode::Confirmed,
            None,
        );
        self.store_key(
            user,
            secret,
            Some(code),
            Mode::New,
            now,
            &ev,
            Some((invite, used)),
        )
        .map(|written| written.is_some())
    }

    /// A signed-in user's own new key (the portal's "Replace key"): stored once `code`, from
    /// the app that holds the new key, matches it, replacing the old key in one transaction;
    /// until then the old key keeps working. Audited as `re-enroll` with the reason
    /// `self_replaced`; a wrong code changes nothing, is audited (`replace_wrong_code`) and
    /// refused with [`Refusal::WrongConfirmationCode`]. A user without a key (unlinked
    /// meanwhile) is refused with [`Refusal::NotEnrolled`]: there is nothing to replace; a
    /// key other than the one signed in with, or a lock, with [`Refusal::SignInEnded`] (a
    /// session of before an unlink and a new enrolment must not replace the new key, nor
    /// clear a lockout by it). Returns the generation of the new key, for the session that
    /// replaced it to go on with.
    pub fn replace_own_key(
        &self,
        r: &OwnKey<'_>,
        actor: &str,
        now: i64,
    ) -> Result<KeyGeneration, CoreError> {
        let user = r.user;
        let mut ev = AuditEvent::admin(
            now,
            user,
            actor,
            Action::ReEnroll,
            ReasonCode::SelfReplaced,
            None,
        );
        ev.client_ip = r.client_ip.map(str::to_string);
        if r.end_old {
            ev.detail = Some("backup codes, temporary codes and remembered networks ended".into());
        }
        let mode = Mode::ReplaceOwn {
            signed_in: r.signed_in,
            end_old: r.end_old,
        };
        match self.store_key(user, r.secret, Some(r.code), mode, now, &ev, None) {
            Ok(written) => {
                self.core
                    .sink
                    .committed(self.core.store.as_ref(), std::slice::from_ref(&ev));
                written.ok_or(CoreError::Bug("no key written"))
            }
            Err(CoreError::Refused(Refusal::WrongConfirmationCode)) => {
                let mut deny = ev.clone();
                deny.decision = AuditDecision::Login(Outcome::Deny).into();
                deny.reason = ReasonCode::ReplaceWrongCode.into();
                deny.detail = None;
                let evs = std::slice::from_ref(&deny);
                self.core.store.append_audit(evs)?;
                self.core.sink.committed(self.core.store.as_ref(), evs);
                Err(Refusal::WrongConfirmationCode.into())
            }
            Err(e) => Err(e),
        }
    }

    /// Self-enrolment at login: stores the secret once the user typed a matching code. The
    /// login itself was already recorded; the enrolment writes its own audit event
    /// (`enroll` by the PAM service), so nothing is counted twice.
    pub fn self_enroll(
        &self,
        req: &Request,
        secret: &TotpSecret,
        code: &str,
    ) -> Result<Decision, CoreError> {
        let d = Decision::allow(Reason::SelfEnrolled);
        let mut ev = req.event(&d);
        // Never a replacement (`replace` is false below), so the stored action is `enroll`.
        ev.decision = AuditDecision::Admin(Action::Enroll).into();
        match self.store_key(&req.user, secret, Some(code), Mode::New, req.now, &ev, None) {
            Ok(_) => {
                self.core
                    .sink
                    .committed(self.core.store.as_ref(), std::slice::from_ref(&ev));
                Ok(d)
            }
            Err(CoreError::Refused(Refusal::WrongConfirmationCode)) => {
                Ok(Decision::deny(Reason::WrongCode))
            }
            Err(e) => Err(e),
        }
    }

    /// Writes the key with `event` as its audit entry; the event's decision becomes the
    /// action taken (`enroll` or `re-enroll`). With `invite` (a token's hash and its `used`
    /// event), the invite is used up in the same transaction; `Ok(None)` where it was no
    /// longer usable (nothing written), else the generation of the key written. The one
    /// function every key write goes through.
    #[allow(clippy::too_many_arguments)]
    fn store_key(
        &self,
        user: &UserName,
        secret: &TotpSecret,
        confirm_code: Option<&str>,
        mode: Mode,
        now: i64,
        event: &AuditEvent,
        invite: Option<(&[u8; 32], &AuditEvent)>,
    ) -> Result<Option<KeyGeneration>, CoreError> {
        let ctx = TxEnv::of(self.core);
        let params = ctx.params;
        let last_step = match confirm_code {
            Some(code) => match check(
                secret,
                &params,
                ctx.cfg.totp.skew,
                &normalize_code(code),
                now,
                None,
            ) {
                CodeMatch::Fresh(step) => Some(step),
                _ => return Err(Refusal::WrongConfirmationCode.into()),
            },
            None => None,
        };
        let sealed = ctx.sealer.seal(user, secret)?;
        let mut written = None;
        let mut write = |recs: &mut [Option<UserRecord>]| {
            written = None;
            let slot = recs.get_mut(0).ok_or(crate::store::Abort::Bug("no slot"))?;
            if let Mode::ReplaceOwn { signed_in, .. } = mode {
                if !slot.as_ref().is_some_and(UserRecord::enrolled) {
                    return Err(crate::store::Abort::Refused(Refusal::NotEnrolled(
                        user.clone(),
                    )));
                }
                signed_in
                    .holds(user, slot.as_ref(), now)
                    .map_err(crate::store::Abort::Refused)?;
            }
            let rec = slot.get_or_insert_with(|| UserRecord::new(user, params, now));
            if rec.enrolled() && mode == Mode::New {
                return Err(crate::store::Abort::Refused(Refusal::AlreadyEnrolled {
                    user: user.clone(),
                    origin: None,
                }));
            }
            let action = if rec.enrolled() {
                Action::ReEnroll
            } else {
                Action::Enroll
            };
            rec.secret = Some(sealed.clone());
            rec.params = params;
            rec.mfa_created = rec.mfa_created.or(Some(now));
            rec.mfa_changed = Some(now);
            rec.last_step = last_step;
            rec.failures = 0;
            rec.first_failure = None;
            rec.locked_until = None;
            if let Mode::ReplaceOwn { end_old: true, .. } = mode {
                // What stood beside the old key goes with it: backup and temporary codes,
                // remembered networks.
                rec.codes.clear();
                rec.unlocks.clear();
            }
            written = KeyGeneration::of(rec);
            let mut ev = event.clone();
            ev.decision = AuditDecision::Admin(action).into();
            let mut evs = vec![ev];
            evs.extend(invite.map(|(_, used)| used.clone()));
            Ok(evs)
        };
        let done = match invite {
            Some((hash, _)) => {
                self.core
                    .store
                    .transact_with_invite(hash, now, &[user], &mut write)?
            }
            None => {
                self.core.store.transact(&[user], &mut write)?;
                true
            }
        };
        Ok(written.filter(|_| done))
    }
}

/// What a key write may find: no key (enrolment), any (`mfactl enroll --replace`), or the
/// key the user signed in with (the user's own replacement, which may also end the old key's
/// codes and unlocks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode<'a> {
    New,
    NewOrReplace,
    ReplaceOwn {
        signed_in: &'a KeyGeneration,
        end_old: bool,
    },
}

/// A signed-in user's own new key, as the portal's "Replace key" confirms it.
#[derive(Debug, Clone, Copy)]
pub struct OwnKey<'a> {
    pub user: &'a UserName,
    /// The key the user signed in with (the session's): the replacement is refused once it
    /// is not the user's key any more, or the user is locked.
    pub signed_in: &'a KeyGeneration,
    /// The new key, and the code from the app that holds it.
    pub secret: &'a TotpSecret,
    pub code: &'a str,
    /// Also end what stood beside the old key: every backup and temporary code and every
    /// remembered network (the user's choice, for a phone that may be in other hands).
    pub end_old: bool,
    pub client_ip: Option<&'a str>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mfa_model::Algorithm;

    #[test]
    fn replacing_ones_own_key_takes_a_code_of_the_new_key() {
        use crate::secret::{Sealer, Unsealed};
        use crate::store::AuditQuery;
        use crate::totp::code_at_step;
        use mfa_store_sqlite::SqliteStore;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(
            &dir.path().join("mfa.db"),
            crate::OpenMode::Create,
            std::time::Duration::from_secs(5),
        )
        .unwrap();
        let mut cfg = mfa_config::Config::default();
        cfg.audit.syslog = false;
        let params = cfg.totp.params();
        let core = Core::with_sealer(
            std::sync::Arc::new(cfg),
            Box::new(store),
            Box::new(Unsealed),
            "test",
        );
        let (now, lea) = (1_800_000_000, UserName::parse("lea").unwrap());
        let e = core.enrolment();
        let (old, new) = (
            TotpSecret::generate().unwrap(),
            TotpSecret::generate().unwrap(),
        );
        // Nothing to replace yet.
        let code = code_at_step(&new, &params, now / 30);
        let nobody = KeyGeneration::of(&{
            let mut r = UserRecord::new(&lea, params, now);
            r.secret = Some(mfa_model::SealedSecret::from_stored(vec![0; 21]));
            r
        })
        .unwrap();
        let replace = |signed_in: &KeyGeneration, code: &str, ip, end_old, at| {
            let r = OwnKey {
                user: &lea,
                signed_in,
                secret: &new,
                code,
                end_old,
                client_ip: ip,
            };
            e.replace_own_key(&r, "portal", at)
        };
        assert!(matches!(
            replace(&nobody, &code, None, false, now),
            Err(CoreError::Refused(Refusal::NotEnrolled(_)))
        ));
        e.enroll(&lea, &old, None, false, "test", now - 100)
            .unwrap();
        let signed_in = KeyGeneration::of(&core.store().user(&lea).unwrap().unwrap()).unwrap();
        // Another key than the one signed in with: refused, whatever the code.
        assert!(matches!(
            replace(&nobody, &code, None, false, now),
            Err(CoreError::Refused(Refusal::SignInEnded(_)))
        ));
        // A code of the old key does not confirm the new one: the old key stays.
        let wrong = code_at_step(&old, &params, now / 30);
        assert!(matches!(
            replace(&signed_in, &wrong, Some("192.0.2.4"), false, now),
            Err(CoreError::Refused(Refusal::WrongConfirmationCode))
        ));
        let rec = core.store().user(&lea).unwrap().unwrap();
        assert_eq!(rec.mfa_changed, Some(now - 100));
        replace(&signed_in, &code, Some("192.0.2.4"), false, now + 1).unwrap();
        let rec = core.store().user(&lea).unwrap().unwrap();
        assert_eq!(rec.mfa_changed, Some(now + 1));
        assert_eq!(rec.mfa_created, Some(now - 100));
        assert_eq!(
            rec.last_step,
            Some(now / 30),
            "the confirming code is spent"
        );
        let opened = Unsealed.unseal(&lea, rec.secret.as_ref().unwrap()).unwrap();
        assert_eq!(opened, new);
        let trail: Vec<_> = core
            .store()
            .audit(&AuditQuery::default())
            .unwrap()
            .into_iter()
            .map(|ev| (ev.decision.to_string(), ev.reason.to_string(), ev.client_ip))
            .collect();
        let ip = Some("192.0.2.4".to_string());
        assert_eq!(
            trail[1..],
            [
                ("deny".into(), "replace_wrong_code".into(), ip.clone()),
                ("re-enroll".into(), "self_replaced".into(), ip),
            ]
        );
    }

    #[test]
    fn a_replacement_is_refused_after_a_new_enrolment_or_a_lock_and_may_end_the_old_codes() {
        use crate::secret::Unsealed;
        use crate::totp::code_at_step;
        use mfa_model::OtcKind;
        use mfa_store_sqlite::SqliteStore;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(
            &dir.path().join("mfa.db"),
            crate::OpenMode::Create,
            std::time::Duration::from_secs(5),
        )
        .unwrap();
        let mut cfg = mfa_config::Config::default();
        cfg.audit.syslog = false;
        cfg.policy.remember = mfa_config::Span::secs(3600);
        let params = cfg.totp.params();
        let core = Core::with_sealer(
            std::sync::Arc::new(cfg),
            Box::new(store),
            Box::new(Unsealed),
            "test",
        );
        let (now, lea) = (1_800_000_000, UserName::parse("lea").unwrap());
        let (e, a) = (core.enrolment(), core.admin("test"));
        let key = |s: &TotpSecret, at| {
            e.enroll(&lea, s, None, true, "test", at).unwrap();
            KeyGeneration::of(&core.store().user(&lea).unwrap().unwrap()).unwrap()
        };
        let first = TotpSecret::generate().unwrap();
        let stale = key(&first, now - 100);
        // Unlinked and enrolled again (even with the same seed): the old sign-in is over.
        a.unlink(&lea, now - 50).unwrap();
        let current = key(&first, now - 40);
        assert_ne!(stale, current);
        let new = TotpSecret::generate().unwrap();
        let code = code_at_step(&new, &params, now / 30);
        let own = |signed_in, end_old| OwnKey {
            user: &lea,
            signed_in,
            secret: &new,
            code: &code,
            end_old,
            client_ip: None,
        };
        fn ended<T>(r: Result<T, CoreError>) -> bool {
            matches!(r, Err(CoreError::Refused(Refusal::SignInEnded(u))) if u.as_str() == "lea")
        }
        assert!(ended(e.replace_own_key(&own(&stale, false), "portal", now)));
        assert!(ended(a.issue_backup_codes(&lea, 2, Some(&stale), now)));
        let ip: std::net::IpAddr = "192.0.2.9".parse().unwrap();
        assert!(ended(a.remember_network(&lea, &stale, ip, now)));
        let rec = core.store().user(&lea).unwrap().unwrap();
        assert!(rec.codes.is_empty() && rec.unlocks.is_empty());
        // With the current key all three work.
        a.issue_backup_codes(&lea, 2, Some(&current), now).unwrap();
        a.issue_temp_access(&lea, 3600, 1, now).unwrap();
        a.remember_network(&lea, &current, ip, now).unwrap();
        // A lock ends the sign-in too, and the replacement does not clear it.
        core.store
            .transact(&[&lea], &mut |recs| {
                recs[0].as_mut().unwrap().locked_until = Some(now + 60);
                Ok(vec![])
            })
            .unwrap();
        assert!(ended(e.replace_own_key(
            &own(&current, true),
            "portal",
            now
        )));
        let rec = core.store().user(&lea).unwrap().unwrap();
        assert_eq!(rec.locked_until, Some(now + 60));
        assert_eq!(rec.codes.len(), 3);
        a.unlock(&lea, now).unwrap();
        // Replaced without ending the old codes: they stay (and the unlock is over by the
        // new key, as always).
        let returned = e
            .replace_own_key(&own(&current, false), "portal", now + 1)
            .unwrap();
        let rec = core.store().user(&lea).unwrap().unwrap();
        assert_eq!(KeyGeneration::of(&rec), Some(returned), "the key written");
        assert_eq!(rec.usable_codes(OtcKind::Backup, now), 2);
        assert_eq!(rec.usable_codes(OtcKind::Temporary, now), 1);
        assert!(rec.unlocked("192.0.2.9", now + 2, 3600).is_none());
        // Replaced again, ending them: no code and no unlock is left.
        let current = KeyGeneration::of(&rec).unwrap();
        a.remember_network(&lea, &current, ip, now + 31).unwrap();
        let code2 = code_at_step(&new, &params, now / 30 + 2);
        let r = OwnKey {
            code: &code2,
            ..own(&current, true)
        };
        e.replace_own_key(&r, "portal", now + 60).unwrap();
        let rec = core.store().user(&lea).unwrap().unwrap();
        assert!(rec.codes.is_empty(), "{:?}", rec.codes);
        assert!(rec.unlocks.is_empty());
        assert!(ended(a.issue_backup_codes(
            &lea,
            2,
            Some(&current),
            now + 60
        )));
    }

    #[test]
    fn uri_has_every_parameter() {
        let s = TotpSecret::from_base32("JBSWY3DPEHPK3PXP").unwrap();
        let p = TotpParams {
            algorithm: Algorithm::SHA1,
            digits: 6,
            period: 30,
        };
        let u = otpauth_uri("Example Corp", "alice@example.com", &s, &p);
        assert_eq!(
            u.as_str(),
            "otpauth://totp/Example%20Corp:alice%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Example%20Corp&algorithm=SHA1&digits=6&period=30"
        );
        assert!(qr_terminal(&u).unwrap().contains('█'));
        let coloured = qr_terminal_as(&u, TerminalQr::Colours).unwrap();
        assert!(
            coloured
                .lines()
                .all(|l| l.starts_with(QR_COLOURS) && l.ends_with(RESET))
        );
        assert!(qr_svg(&u).unwrap().starts_with("<?xml"));
        assert_eq!(&qr_png(&u).unwrap()[1..4], b"PNG");
    }
}
