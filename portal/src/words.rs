//! The audit trail in words a person reads, in English and Dutch: "Allowed: valid code",
//! not `allow (valid_code)`. One table for the whole portal: the console's log and user
//! pages and the user's own "Last logins" on My account read it. A code this table lacks
//! (one a newer version wrote) is shown as its code; a test holds the table complete.

use mfa_core::{Action, AuditDecision, AuditEvent, Outcome, ReasonCode};
use mfa_model::{StoredDecision, StoredReason};

use crate::text::Lang;

/// A reason of the audit trail in words; `None` for a code this table lacks (a test holds
/// it complete).
fn reason_pair(r: ReasonCode) -> Option<(&'static str, &'static str)> {
    Some(match r {
        ReasonCode::TrustedNetwork => ("trusted network", "vertrouwd netwerk"),
        ReasonCode::RememberedNetwork => (
            "remembered network (unlocked on the portal)",
            "onthouden netwerk (ontgrendeld in het portaal)",
        ),
        ReasonCode::LocalLogin => ("local login", "lokale aanmelding"),
        ReasonCode::ExemptUser => ("exempt user", "vrijgestelde gebruiker"),
        ReasonCode::ExemptGroup => (
            "member of an exempt group",
            "lid van een vrijgestelde groep",
        ),
        ReasonCode::BeforeGoLive => ("before the go-live", "vóór de ingangsdatum"),
        ReasonCode::GracePeriod => ("in the grace period", "in de overgangsperiode"),
        ReasonCode::CodeRequired => ("code required", "code vereist"),
        ReasonCode::ValidCode => ("valid code", "geldige code"),
        ReasonCode::BackupCode => ("backup code", "back-upcode"),
        ReasonCode::TemporaryAccess => ("temporary access code", "tijdelijke toegangscode"),
        ReasonCode::SelfEnrolled => ("linked at login", "gekoppeld bij het aanmelden"),
        ReasonCode::MissingCode => ("no code given", "geen code opgegeven"),
        ReasonCode::WrongCode => ("wrong code", "verkeerde code"),
        ReasonCode::ReplayedCode => ("code used twice", "code twee keer gebruikt"),
        ReasonCode::Locked => (
            "locked after too many wrong codes",
            "geblokkeerd na te veel verkeerde codes",
        ),
        ReasonCode::SourceLocked => (
            "this address locked after wrong codes",
            "dit adres geblokkeerd na verkeerde codes",
        ),
        ReasonCode::NotEnrolled => (
            "not linked after the go-live",
            "niet gekoppeld na de ingangsdatum",
        ),
        ReasonCode::WrongPassword => ("wrong password", "verkeerd wachtwoord"),
        ReasonCode::InvalidUserName => ("invalid user name", "ongeldige gebruikersnaam"),
        ReasonCode::UnsupportedMethod => (
            "unsupported RADIUS method",
            "niet-ondersteunde RADIUS-methode",
        ),
        ReasonCode::MalformedPassword => {
            ("unreadable RADIUS password", "onleesbaar RADIUS-wachtwoord")
        }
        ReasonCode::MalformedStaticChallenge => (
            "malformed OpenVPN static-challenge answer",
            "ongeldig OpenVPN-static-challenge-antwoord",
        ),
        ReasonCode::UnknownState => (
            "unknown or expired challenge",
            "onbekende of verlopen uitdaging",
        ),
        ReasonCode::StateMismatch => (
            "challenge of another request",
            "uitdaging van een ander verzoek",
        ),
        ReasonCode::InternalError => ("internal error", "interne fout"),
        ReasonCode::ServerAccepted => (
            "accepted by the MFA server",
            "geaccepteerd door de MFA-server",
        ),
        ReasonCode::ServerRejected => ("refused by the MFA server", "geweigerd door de MFA-server"),
        ReasonCode::OfflineAllowed => (
            "let in by the host while no MFA server answered",
            "binnengelaten door de host terwijl geen MFA-server antwoordde",
        ),
        ReasonCode::BreakglassUsed => (
            "break-glass code of the host, while no MFA server answered",
            "noodcode van de host, terwijl geen MFA-server antwoordde",
        ),
        ReasonCode::SessionStart => ("session started", "sessie begonnen"),
        ReasonCode::SessionStop => ("session ended", "sessie beëindigd"),
        ReasonCode::SessionInterim => ("session still open", "sessie nog open"),
        ReasonCode::RuleDenied => (
            "refused by a rule for this service",
            "geweigerd door een regel voor deze dienst",
        ),
        ReasonCode::RuleNoCode => (
            "no code needed by a rule for this service",
            "geen code nodig volgens een regel voor deze dienst",
        ),
        ReasonCode::PushRequired => (
            "approval on the phone required, a typed code is not enough",
            "goedkeuring op de telefoon vereist, een getypte code is niet genoeg",
        ),
        ReasonCode::PushSent => (
            "approval requested on the phone",
            "goedkeuring gevraagd op de telefoon",
        ),
        ReasonCode::PushApproved => ("approved on the phone", "goedgekeurd op de telefoon"),
        ReasonCode::PushDenied => ("denied on the phone", "geweigerd op de telefoon"),
        ReasonCode::PushExpired => ("approval request expired", "goedkeuringsverzoek verlopen"),
        ReasonCode::PushFraud => (
            "reported as \"This wasn't me\"",
            "gemeld als \"Dit was ik niet\"",
        ),
        ReasonCode::PushBlocked => (
            "pushes blocked after a report",
            "pushberichten geblokkeerd na een melding",
        ),
        ReasonCode::PushUndeliverable => (
            "push could not be delivered",
            "pushbericht kon niet worden bezorgd",
        ),
        ReasonCode::PushUsed => ("approval already used", "goedkeuring al gebruikt"),
        ReasonCode::PushWaiting => ("waiting for approval", "wacht op goedkeuring"),
        ReasonCode::PushOff => ("push approval is off", "goedkeuren via push staat uit"),
        ReasonCode::PushNotAsked => ("push not asked for", "geen push gevraagd"),
        ReasonCode::PushNoDevice => ("no phone registered", "geen telefoon geregistreerd"),
        ReasonCode::PushAlreadyPending => (
            "an approval request is pending already",
            "er wacht al een goedkeuringsverzoek",
        ),
        ReasonCode::PushRateLimited => (
            "too many approval requests",
            "te veel goedkeuringsverzoeken",
        ),
        ReasonCode::PushNoPortal => (
            "no portal delivers pushes",
            "geen portaal bezorgt pushberichten",
        ),
        ReasonCode::PushUnblocked => ("push block lifted", "pushblokkade opgeheven"),
        ReasonCode::DeviceRegistered => ("phone registered", "telefoon geregistreerd"),
        ReasonCode::DeviceRemoved => ("phone removed", "telefoon verwijderd"),
        ReasonCode::DeviceGone => ("phone no longer reachable", "telefoon niet meer bereikbaar"),
        ReasonCode::Confirmed => ("confirmed with a code", "bevestigd met een code"),
        ReasonCode::Unconfirmed => ("set by an administrator", "ingesteld door een beheerder"),
        ReasonCode::SelfReplaced => ("replaced by the user", "vervangen door de gebruiker"),
        ReasonCode::ReplaceWrongCode => (
            "wrong code for the new key",
            "verkeerde code voor de nieuwe sleutel",
        ),
        ReasonCode::KeyRemoved => ("key removed", "sleutel verwijderd"),
        ReasonCode::LockCleared => ("lock cleared", "blokkade opgeheven"),
        ReasonCode::NotLocked => ("was not locked", "was niet geblokkeerd"),
        ReasonCode::Issued => ("issued", "uitgegeven"),
        ReasonCode::Revoked => ("revoked", "ingetrokken"),
        ReasonCode::NewSet => ("new set", "nieuwe set"),
        ReasonCode::Imported => ("imported", "geïmporteerd"),
        ReasonCode::NetworkUnlocked => ("network unlocked", "netwerk ontgrendeld"),
        ReasonCode::NetworkRevoked => (
            "remembered networks revoked",
            "onthouden netwerken ingetrokken",
        ),
        ReasonCode::CanonicalName => (
            "renamed to the canonical name",
            "hernoemd naar de standaardnaam",
        ),
        ReasonCode::Merged => ("merged", "samengevoegd"),
        ReasonCode::RecordRemoved => ("record removed", "gegevens verwijderd"),
        ReasonCode::SealedStore => ("keys encrypted", "sleutels versleuteld"),
        ReasonCode::Rekeyed => ("store key replaced", "opslagsleutel vervangen"),
        ReasonCode::Admin => ("by an administrator", "door een beheerder"),
        ReasonCode::Used => ("used", "gebruikt"),
        ReasonCode::AlreadyEnrolled => ("already linked", "al gekoppeld"),
        ReasonCode::InviteExpired => ("link expired", "link verlopen"),
        ReasonCode::InviteUnknown => ("unknown link", "onbekende link"),
        ReasonCode::InviteUsed => ("link already used", "link al gebruikt"),
        ReasonCode::Refused => ("refused", "geweigerd"),
        ReasonCode::RateLimited => ("too many requests", "te veel verzoeken"),
        ReasonCode::SlowForm => ("form too slow", "formulier te traag"),
        ReasonCode::OversizedForm => ("form too large", "formulier te groot"),
        ReasonCode::OversizedField => ("field too long", "veld te lang"),
        ReasonCode::BadForm => ("unknown form", "onbekend formulier"),
        ReasonCode::SessionMissing => ("no session", "geen sessie"),
        ReasonCode::CsrfRefused => (
            "form not from this session (CSRF)",
            "formulier niet uit deze sessie (CSRF)",
        ),
        ReasonCode::SessionEnded => ("session ended", "sessie beëindigd"),
        ReasonCode::ReplaceNotStarted => (
            "no new key to confirm",
            "geen nieuwe sleutel om te bevestigen",
        ),
        ReasonCode::NotAdministrator => ("not an administrator", "geen beheerder"),
        ReasonCode::RoleRefused => ("not allowed for the role", "niet toegestaan voor de rol"),
        ReasonCode::OwnAccount => ("own account", "eigen account"),
        ReasonCode::GoLiveSet => ("go-live set", "ingangsdatum ingesteld"),
        ReasonCode::GoLiveCleared => ("go-live cleared", "ingangsdatum gewist"),
        ReasonCode::TrustedAdded => ("trusted network added", "vertrouwd netwerk toegevoegd"),
        ReasonCode::TrustedRemoved => ("trusted network removed", "vertrouwd netwerk verwijderd"),
        ReasonCode::ExemptionAdded => ("exemption added", "vrijstelling toegevoegd"),
        ReasonCode::ExemptionRemoved => ("exemption removed", "vrijstelling verwijderd"),
        _ => return None,
    })
}

/// An administrator's action in words.
fn action_pair(a: Action) -> Option<(&'static str, &'static str)> {
    Some(match a {
        Action::Enroll => ("Linked", "Gekoppeld"),
        Action::ReEnroll => ("Key replaced", "Sleutel vervangen"),
        Action::Unlink => ("Unlinked", "Ontkoppeld"),
        Action::Unlock => ("Unlock", "Deblokkeren"),
        Action::TempAccess => ("Temporary access", "Tijdelijke toegang"),
        Action::BackupCodes => ("Backup codes", "Back-upcodes"),
        Action::Import => ("Import", "Import"),
        Action::Invite => ("Invite", "Uitnodiging"),
        Action::Remember => ("Remembered network", "Onthouden netwerk"),
        Action::Rename => ("Rename", "Hernoemen"),
        Action::Merge => ("Merge", "Samenvoegen"),
        Action::Remove => ("Remove", "Verwijderen"),
        Action::Seal => ("Encryption", "Versleuteling"),
        Action::Rekey => ("New store key", "Nieuwe opslagsleutel"),
        Action::Push => ("Push", "Push"),
        Action::PushDevice => ("Phone", "Telefoon"),
        Action::Config => ("Configuration", "Configuratie"),
        Action::Session => ("Gateway session", "Gatewaysessie"),
        _ => return None,
    })
}

/// The reason's words, or its code where the table has none.
pub fn reason(lang: Lang, r: &StoredReason) -> String {
    match r {
        StoredReason::Known(k) => {
            reason_pair(*k).map_or_else(|| k.as_str().to_string(), |p| pick(lang, p).to_string())
        }
        StoredReason::Unknown(_) => r.as_str().to_string(),
    }
}

/// One event in words: "Allowed: valid code", "Unlinked: key removed".
pub fn event_words(lang: Lang, e: &AuditEvent) -> String {
    let what = match &e.decision {
        StoredDecision::Known(AuditDecision::Login(o)) => pick(
            lang,
            match o {
                Outcome::Allow => ("Allowed", "Toegestaan"),
                Outcome::Deny => ("Denied", "Geweigerd"),
                Outcome::NeedCode => ("Code asked", "Code gevraagd"),
            },
        )
        .to_string(),
        StoredDecision::Known(AuditDecision::Admin(a)) => {
            action_pair(*a).map_or_else(|| a.as_str().to_string(), |p| pick(lang, p).to_string())
        }
        StoredDecision::Unknown(_) => e.decision.as_str().to_string(),
    };
    format!("{what}: {}", reason(lang, &e.reason))
}

fn pick(lang: Lang, (en, nl): (&'static str, &'static str)) -> &'static str {
    match lang {
        Lang::En => en,
        Lang::Nl => nl,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every reason code and action of the audit trail has words in both languages.
    #[test]
    fn every_code_has_words_in_both_languages() {
        for r in ReasonCode::ALL {
            let (en, nl) = reason_pair(*r).unwrap_or_else(|| panic!("no words for {}", r.as_str()));
            assert!(!en.is_empty() && !nl.is_empty(), "{}", r.as_str());
        }
        for a in Action::ALL {
            assert!(action_pair(*a).is_some(), "no words for {}", a.as_str());
        }
        let e = AuditEvent {
            time: 0,
            user: "ann".into(),
            service: "sshd".into(),
            client_ip: None,
            decision: AuditDecision::Login(Outcome::Allow).into(),
            reason: ReasonCode::ValidCode.into(),
            detail: None,
        };
        assert_eq!(event_words(Lang::En, &e), "Allowed: valid code");
        assert_eq!(event_words(Lang::Nl, &e), "Toegestaan: geldige code");
    }
}
