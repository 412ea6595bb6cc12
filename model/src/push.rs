//! Push approval: a phone registered for approvals ([`PushDevice`]) and a sign-in request
//! sent to it ([`PushRequest`]), as every engine stores them and every front end speaks of
//! them. The rules (who may register, when a request may be sent or decided) are the
//! core's; the layouts and their limits are here, so an engine checks its rows without the
//! core.

use std::fmt;
use std::ops::RangeInclusive;

use zeroize::Zeroizing;

use crate::name::UserName;

/// Bytes of a request's or a device's id: 128 random bits, a capability in a URL.
pub const PUSH_ID_BYTES: usize = 16;

/// The numbers number matching shows: always two digits, so the phone's field has one
/// length.
pub const PUSH_NUMBERS: RangeInclusive<u8> = 10..=99;

/// The longest device name, in characters.
pub const MAX_DEVICE_NAME_CHARS: usize = 64;

/// Devices one user may register.
pub const MAX_PUSH_DEVICES: usize = 10;

/// A device's approval key: an uncompressed SEC1 P-256 point (`0x04 || x || y`).
pub const PUSH_PUBLIC_KEY_BYTES: usize = 65;

/// The longest service text a request keeps (the `Service` a front end names).
pub const MAX_PUSH_SERVICE_BYTES: usize = 1024;

/// The longest delivery error a request keeps.
pub const MAX_DELIVERY_ERROR_BYTES: usize = 512;

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; PUSH_ID_BYTES]);

        impl $name {
            /// The id of stored bytes; `None` unless exactly [`PUSH_ID_BYTES`] long.
            pub fn from_slice(b: &[u8]) -> Option<Self> {
                b.try_into().ok().map(Self)
            }

            /// 32 hex digits, as in URLs and on the command line (either case).
            pub fn parse_hex(s: &str) -> Option<Self> {
                let s = s.as_bytes();
                if s.len() != 2 * PUSH_ID_BYTES {
                    return None;
                }
                let mut out = [0u8; PUSH_ID_BYTES];
                for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
                    let d = |b: u8| char::from(b).to_digit(16);
                    *o = u8::try_from(d(pair[0])? * 16 + d(pair[1])?).ok()?;
                }
                Some(Self(out))
            }

            /// Lower-case hex.
            pub fn hex(&self) -> String {
                self.0.iter().map(|b| format!("{b:02x}")).collect()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.hex())
            }
        }
    };
}

id_type!(
    /// A sign-in request's id.
    PushId
);
id_type!(
    /// A registered device's id.
    DeviceId
);

/// Where a sign-in request stands. Only `Pending` changes, and only once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushState {
    /// Written, waiting for the phone (delivered or not yet).
    Pending,
    /// Approved on a registered device of the user, with the right number.
    Approved,
    /// Denied on the phone, or approved with the wrong number.
    Denied,
    /// Not decided before it expired.
    Expired,
    /// "This wasn't me": denied, and further pushes to the user blocked for a while.
    Fraud,
    /// The push service refused it or could not be reached, or the user had no device left.
    Undeliverable,
}

impl PushState {
    pub const ALL: [PushState; 6] = [
        PushState::Pending,
        PushState::Approved,
        PushState::Denied,
        PushState::Expired,
        PushState::Fraud,
        PushState::Undeliverable,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            PushState::Pending => "pending",
            PushState::Approved => "approved",
            PushState::Denied => "denied",
            PushState::Expired => "expired",
            PushState::Fraud => "fraud",
            PushState::Undeliverable => "undeliverable",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for PushState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One sign-in request sent to the user's phones. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRequest {
    pub id: PushId,
    pub user: UserName,
    /// What asks (the `Service` display text: `sshd`, `vpn-gw`, `hosts/web1/sshd`); a
    /// login settles the request only for the same service.
    pub service: String,
    /// The client address of the sign-in (an IP literal), where known.
    pub client_ip: Option<String>,
    pub created: i64,
    /// From then on it can no longer be decided.
    pub expires: i64,
    /// The number the sign-in shows and the phone must type; `None` without number
    /// matching. Never sent to the phone.
    pub number: Option<u8>,
    pub state: PushState,
    /// When it left `Pending`.
    pub decided: Option<i64>,
    /// The device that approved, denied or reported it.
    pub device: Option<DeviceId>,
    /// When the portal handed it to the push service (the outbox holds it until then).
    pub sent: Option<i64>,
    /// Why delivery failed (no secret: the push service's status and words).
    pub delivery_error: Option<String>,
    /// When a login used its approval: an approval lets in one login, once.
    pub used: Option<i64>,
}

impl PushRequest {
    /// The state as of `now`: a pending request past its expiry is expired, whether or not
    /// that was written yet.
    pub fn state_at(&self, now: i64) -> PushState {
        match self.state {
            PushState::Pending if now >= self.expires => PushState::Expired,
            s => s,
        }
    }

    /// Pending and not expired at `now`: the only state a decision may change.
    pub fn open_at(&self, now: i64) -> bool {
        self.state_at(now) == PushState::Pending
    }
}

/// A stored value sealed under the store key (a push subscription): the same layout as a
/// sealed seed (`FORM_XCHACHA20POLY1305 || key id || nonce || ciphertext || tag`), never a
/// clear form, opened only by the core's sealer with its own associated data. Wiped on drop,
/// never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedBlob(Zeroizing<Vec<u8>>);

impl SealedBlob {
    pub fn from_stored(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub fn stored(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SealedBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedBlob(<redacted>)")
    }
}

/// A phone registered for approvals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushDevice {
    pub id: DeviceId,
    pub user: UserName,
    /// What the user called it ([`check_device_name`]).
    pub name: String,
    /// The Web Push subscription (its endpoint is a capability: whoever has it can push to
    /// the phone), sealed under the store key.
    pub subscription: SealedBlob,
    /// The key every decision of this device is signed with: an uncompressed SEC1 P-256
    /// point ([`PUSH_PUBLIC_KEY_BYTES`]), made on the phone, its private half never leaving
    /// it.
    pub public_key: Vec<u8>,
    pub created: i64,
    pub last_used: Option<i64>,
}

/// Why a device name is refused: 1 to [`MAX_DEVICE_NAME_CHARS`] characters, no control
/// characters, no blanks around it.
pub fn check_device_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("the name is empty".into());
    }
    if name.trim() != name {
        return Err("the name starts or ends with a blank".into());
    }
    if name.chars().count() > MAX_DEVICE_NAME_CHARS {
        return Err(format!(
            "the name is longer than {MAX_DEVICE_NAME_CHARS} characters"
        ));
    }
    if name
        .chars()
        .any(|c| {
            c.is_control()
                || matches!(c, '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
    {
        return Err("the name holds a control or direction character".into());
    }
    Ok(())
}

/// Why a sign-in request could not be sent: each a business answer, named for the front end
/// to show ([`crate::Refusal::Push`]) and for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushRefusal {
    /// Push is off (`[push] enabled`, or this RADIUS client's `push`).
    Off,
    /// The user has no key: push approves a sign-in of an enrolled user only.
    NotEnrolled,
    /// The policy asks no second factor of this login (a trusted network, an exemption), or
    /// refuses it outright (a lock): settle it through the login path instead.
    NotAsked,
    /// The user has registered no phone.
    NoDevice,
    /// "This wasn't me" was answered lately: no push until then.
    Blocked { until: i64 },
    /// A request of this user for this service is waiting already.
    AlreadyPending,
    /// Too many requests of this user lately (`[push] rate`): the next one from then.
    RateLimited { until: i64 },
    /// No portal wrote its heartbeat lately, so nothing would deliver the push.
    NoPortal,
}

impl fmt::Display for PushRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushRefusal::Off => f.write_str("push approval is off for this login"),
            PushRefusal::NotEnrolled => f.write_str("the user is not enrolled"),
            PushRefusal::NotAsked => {
                f.write_str("the policy asks no approval of this login (settle it without one)")
            }
            PushRefusal::NoDevice => f.write_str("the user has registered no phone for approvals"),
            PushRefusal::Blocked { until } => write!(
                f,
                "pushes to the user are blocked until Unix time {until} (a request was reported as not theirs)"
            ),
            PushRefusal::AlreadyPending => {
                f.write_str("a request of the user for this service is pending already")
            }
            PushRefusal::RateLimited { until } => {
                write!(
                    f,
                    "too many requests for the user; the next one from Unix time {until}"
                )
            }
            PushRefusal::NoPortal => {
                f.write_str("no portal is running to deliver the push ([push] needs mfa-portal)")
            }
        }
    }
}

/// Why a phone's decision was refused. Nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecisionRefusal {
    /// No such request.
    UnknownRequest,
    /// The device is no registered device of the request's user.
    UnknownDevice,
    /// The signature does not verify under the device's key.
    BadSignature,
    /// The request is no longer pending (decided, or expired): its state now.
    Closed(PushState),
}

impl fmt::Display for DecisionRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecisionRefusal::UnknownRequest => f.write_str("no such sign-in request"),
            DecisionRefusal::UnknownDevice => {
                f.write_str("this device is not registered for the request's user")
            }
            DecisionRefusal::BadSignature => {
                f.write_str("the decision's signature does not verify under the device's key")
            }
            DecisionRefusal::Closed(s) => write!(f, "the sign-in request is {s} already"),
        }
    }
}

/// Why a device registration was refused. Nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeviceRefusal {
    /// The device name ([`check_device_name`]).
    Name(String),
    /// The approval key is no P-256 public key.
    PublicKey(String),
    /// The Web Push subscription is malformed or names a push service not allowed
    /// (`[push] services`).
    Subscription(String),
    /// The user has [`MAX_PUSH_DEVICES`] already.
    TooMany,
    /// Push is off (`[push] enabled`).
    Off,
}

impl fmt::Display for DeviceRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceRefusal::Name(why) => write!(f, "device name refused: {why}"),
            DeviceRefusal::PublicKey(why) => write!(f, "approval key refused: {why}"),
            DeviceRefusal::Subscription(why) => write!(f, "push subscription refused: {why}"),
            DeviceRefusal::TooMany => write!(
                f,
                "{MAX_PUSH_DEVICES} devices are registered already; remove one first"
            ),
            DeviceRefusal::Off => f.write_str("push approval is off ([push] enabled)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_from_hex_either_case() {
        let id = PushId([0xab; 16]);
        assert_eq!(id.hex(), "ab".repeat(16));
        assert_eq!(PushId::parse_hex(&id.hex()), Some(id));
        assert_eq!(PushId::parse_hex(&"AB".repeat(16)), Some(id));
        for bad in [
            "",
            "ab",
            &"ab".repeat(17),
            &"zz".repeat(16),
            &"+1".repeat(16),
        ] {
            assert_eq!(PushId::parse_hex(bad), None, "{bad}");
        }
        assert_eq!(DeviceId::from_slice(&[1; 15]), None);
    }

    #[test]
    fn states_read_back_and_expire_by_time() {
        for s in PushState::ALL {
            assert_eq!(PushState::parse(s.as_str()), Some(s));
        }
        assert_eq!(PushState::parse("maybe"), None);
        let r = PushRequest {
            id: PushId([1; 16]),
            user: UserName::parse("ann").unwrap(),
            service: "sshd".into(),
            client_ip: None,
            created: 100,
            expires: 160,
            number: Some(42),
            state: PushState::Pending,
            decided: None,
            device: None,
            sent: None,
            delivery_error: None,
            used: None,
        };
        assert!(r.open_at(159));
        assert_eq!(r.state_at(160), PushState::Expired);
        assert!(!r.open_at(160));
    }

    #[test]
    fn device_names() {
        assert!(check_device_name("Anna's phone").is_ok());
        assert!(check_device_name(&"é".repeat(64)).is_ok());
        for bad in [
            "",
            "  ",
            " x",
            "x ",
            "a\nb",
            "a\u{202e}b",
            "a\u{2067}b",
            &"x".repeat(65),
        ] {
            assert!(check_device_name(bad).is_err(), "{bad:?}");
        }
    }
}
