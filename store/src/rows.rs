//! Stored rows to records and back, for every engine: each column is checked here once, so
//! a damaged or hand-edited row is refused the same way whichever engine read it, and the
//! limits are the ones the configuration and import use (`mfa_model::DIGITS`, `PERIODS`).

use mfa_model::{
    Algorithm, Invite, OneTimeCode, OtcHash, OtcKind, SealedSecret, SourceFailures, TotpParams,
    Unlock, UserName, UserRecord,
};

use mfa_model::{
    DeviceId, KeyId, PUSH_NUMBERS, PUSH_PUBLIC_KEY_BYTES, PushDevice, PushId, PushRequest,
    PushState, SealedBlob, check_device_name, check_sealed, check_sealed_blob, sealed_blob_key_id,
    sealed_key_id,
};

use crate::{Abort, ResealBlobFn, ResealFn, StoreError};

/// A `users` row as an engine reads and writes it: column values, unchecked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub name: String,
    pub secret: Option<Vec<u8>>,
    pub algorithm: String,
    pub digits: i64,
    pub period: i64,
    pub mfa_created: Option<i64>,
    pub mfa_changed: Option<i64>,
    pub first_seen: i64,
    pub grace_started: Option<i64>,
    pub last_step: Option<i64>,
    pub failures: i64,
    pub first_failure: Option<i64>,
    pub locked_until: Option<i64>,
    pub login_count: i64,
    pub last_login: Option<i64>,
    pub last_ip: Option<String>,
    pub last_outcome: Option<String>,
}

/// A `one_time_codes` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRow {
    pub kind: String,
    /// The hash's scheme number ([`OtcHash::number`]).
    pub scheme: i64,
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
    pub created: i64,
    pub expires: Option<i64>,
    pub uses_left: i64,
}

/// A `source_failures` row: one client address's wrong codes for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRow {
    pub source: String,
    pub failures: i64,
    pub first_failure: i64,
    pub locked_until: Option<i64>,
}

/// An `unlocks` row: one remembered client address of the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlockRow {
    pub ip: String,
    pub created: i64,
    pub expires: i64,
}

/// An `invites` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteRow {
    pub hash: Vec<u8>,
    pub user: String,
    pub created: i64,
    pub expires: i64,
    pub used: Option<i64>,
}

/// The invite of a row, or the column that makes no sense.
pub fn decode_invite(r: InviteRow) -> Result<Invite, StoreError> {
    UserName::parse(&r.user).map_err(|e| bad(&r.user, "invites.user", e.to_string()))?;
    let hash = r
        .hash
        .try_into()
        .map_err(|_| bad(&r.user, "invites.hash", "not 32 bytes"))?;
    // Equal: voided in the second it was issued ([`voids_invites`]).
    if r.expires < r.created {
        return Err(bad(&r.user, "invites.expires", "before created"));
    }
    Ok(Invite {
        hash,
        user: r.user,
        created: r.created,
        expires: r.expires,
        used: r.used,
    })
}

/// Whether writing `rec` (read as `before`) voids the user's unused invites, and when: its
/// key changed (`mfa_changed` moved: enrolled by any path, replaced, unlinked). An invite
/// stands for the key state it was issued in: one issued before the user enrolled some
/// other way must not enrol (show a key) again after a later unlink. Every engine voids
/// them in the same transaction as the record, by ending them at that time (their
/// `expires`; never before their `created`, which another node's clock may have put after
/// it), so no schema change is needed and the portal says the link no longer works.
///
/// The same change removes every push device of the user in that transaction: a phone was
/// registered by a sign-in with the key of then (`KeyGeneration`), as an unlock is made, and
/// a lost phone must stop approving once the administrator unlinks or replaces the key. A
/// device registered after the change proved the new key.
pub fn voids_invites(before: Option<&UserRecord>, rec: &UserRecord) -> Option<i64> {
    let changed = rec.mfa_changed?;
    (before.and_then(|b| b.mfa_changed) != Some(changed)).then_some(changed)
}

pub fn encode_invite(i: &Invite) -> InviteRow {
    InviteRow {
        hash: i.hash.to_vec(),
        user: i.user.clone(),
        created: i.created,
        expires: i.expires,
        used: i.used,
    }
}

fn bad(user: &str, column: &'static str, problem: impl Into<String>) -> StoreError {
    StoreError::BadRow {
        user: user.into(),
        column,
        problem: problem.into(),
    }
}

/// The record of a row, its codes and its address counters, or the first column that makes
/// no sense.
pub fn decode(
    row: UserRow,
    codes: Vec<CodeRow>,
    sources: Vec<SourceRow>,
    unlocks: Vec<UnlockRow>,
) -> Result<UserRecord, StoreError> {
    let n = row.name.as_str();
    let name = UserName::parse(n).map_err(|e| bad(n, "name", e.to_string()))?;
    let algorithm = Algorithm::parse(&row.algorithm).ok_or_else(|| {
        bad(
            n,
            "algorithm",
            format!("{:?} is not SHA1, SHA256 or SHA512", row.algorithm),
        )
    })?;
    let params = TotpParams::new(algorithm, row.digits, row.period).map_err(|e| {
        let column = match e {
            mfa_model::BadTotpParams::Digits(_) => "digits",
            _ => "period",
        };
        bad(n, column, e.to_string())
    })?;
    let secret = match row.secret {
        Some(bytes) => {
            let sealed = SealedSecret::from_stored(bytes);
            check_sealed(&sealed).map_err(|e| bad(n, "secret", e.to_string()))?;
            Some(sealed)
        }
        None => None,
    };
    let codes = codes
        .into_iter()
        .map(|c| decode_code(n, c))
        .collect::<Result<_, _>>()?;
    let sources = sources
        .into_iter()
        .map(|s| {
            Ok(SourceFailures {
                failures: u32::try_from(s.failures)
                    .map_err(|_| bad(n, "source_failures.failures", "negative or too large"))?,
                source: s.source,
                first_failure: s.first_failure,
                locked_until: s.locked_until,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    let unlocks = unlocks
        .into_iter()
        .map(|u| {
            // Only an IP literal was ever stored: anything else would match no client.
            if u.ip.parse::<std::net::IpAddr>().is_err() {
                return Err(bad(
                    n,
                    "unlocks.ip",
                    format!("{:?} is not an IP address", u.ip),
                ));
            }
            Ok(Unlock {
                ip: u.ip,
                created: u.created,
                expires: u.expires,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(UserRecord {
        secret,
        params,
        mfa_created: row.mfa_created,
        mfa_changed: row.mfa_changed,
        first_seen: row.first_seen,
        grace_started: row.grace_started,
        last_step: row.last_step,
        failures: u32::try_from(row.failures)
            .map_err(|_| bad(n, "failures", "negative or too large"))?,
        first_failure: row.first_failure,
        locked_until: row.locked_until,
        login_count: u64::try_from(row.login_count)
            .map_err(|_| bad(n, "login_count", "negative"))?,
        last_login: row.last_login,
        last_ip: row.last_ip,
        last_outcome: row.last_outcome,
        codes,
        sources,
        unlocks,
        name,
    })
}

fn decode_code(user: &str, c: CodeRow) -> Result<OneTimeCode, StoreError> {
    Ok(OneTimeCode {
        kind: OtcKind::parse(&c.kind)
            .ok_or_else(|| bad(user, "one_time_codes.kind", format!("{:?}", c.kind)))?,
        scheme: OtcHash::from_number(c.scheme).ok_or_else(|| {
            bad(
                user,
                "one_time_codes.scheme",
                format!("{} is not a known hash scheme (1 or 2)", c.scheme),
            )
        })?,
        salt: c
            .salt
            .try_into()
            .map_err(|_| bad(user, "one_time_codes.salt", "not 16 bytes"))?,
        hash: c
            .hash
            .try_into()
            .map_err(|_| bad(user, "one_time_codes.hash", "not 32 bytes"))?,
        created: c.created,
        expires: c.expires,
        uses_left: u32::try_from(c.uses_left)
            .map_err(|_| bad(user, "one_time_codes.uses_left", "negative"))?,
    })
}

/// The row of a record (its codes: [`encode_codes`]).
pub fn encode(rec: &UserRecord) -> UserRow {
    UserRow {
        name: rec.name.to_string(),
        secret: rec.secret.as_ref().map(|s| s.stored().to_vec()),
        algorithm: rec.params.algorithm.as_str().into(),
        digits: i64::from(rec.params.digits),
        period: i64::try_from(rec.params.period).unwrap_or(i64::MAX),
        mfa_created: rec.mfa_created,
        mfa_changed: rec.mfa_changed,
        first_seen: rec.first_seen,
        grace_started: rec.grace_started,
        last_step: rec.last_step,
        failures: i64::from(rec.failures),
        first_failure: rec.first_failure,
        locked_until: rec.locked_until,
        login_count: i64::try_from(rec.login_count).unwrap_or(i64::MAX),
        last_login: rec.last_login,
        last_ip: rec.last_ip.clone(),
        last_outcome: rec.last_outcome.clone(),
    }
}

pub fn encode_sources(rec: &UserRecord) -> Vec<SourceRow> {
    rec.sources
        .iter()
        .map(|s| SourceRow {
            source: s.source.clone(),
            failures: i64::from(s.failures),
            first_failure: s.first_failure,
            locked_until: s.locked_until,
        })
        .collect()
}

pub fn encode_unlocks(rec: &UserRecord) -> Vec<UnlockRow> {
    rec.unlocks
        .iter()
        .map(|u| UnlockRow {
            ip: u.ip.clone(),
            created: u.created,
            expires: u.expires,
        })
        .collect()
}

pub fn encode_codes(rec: &UserRecord) -> Vec<CodeRow> {
    rec.codes
        .iter()
        .map(|c| CodeRow {
            kind: c.kind.as_str().into(),
            scheme: c.scheme.number(),
            salt: c.salt.to_vec(),
            hash: c.hash.to_vec(),
            created: c.created,
            expires: c.expires,
            uses_left: i64::from(c.uses_left),
        })
        .collect()
}

/// One stored seed through a re-encryption ([`super::Store::reseal`]), for every engine: the
/// row's name and seed checked, `f` applied, and the result required to be under `new`.
pub fn reseal_one(
    name: &str,
    bytes: Vec<u8>,
    new: KeyId,
    f: &mut ResealFn<'_>,
) -> Result<SealedSecret, StoreError> {
    let user = UserName::parse(name).map_err(|e| bad(name, "name", e.to_string()))?;
    let old = SealedSecret::from_stored(bytes);
    check_sealed(&old).map_err(|e| bad(name, "secret", e.to_string()))?;
    let sealed = f(&user, &old).map_err(StoreError::Aborted)?;
    if sealed_key_id(&sealed) != Some(new) {
        return Err(StoreError::Aborted(Abort::Bug(
            "a seed re-sealed under another key than the one recorded",
        )));
    }
    Ok(sealed)
}

/// A `push_requests` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRequestRow {
    pub id: Vec<u8>,
    pub user: String,
    pub service: String,
    pub client_ip: Option<String>,
    pub created: i64,
    pub expires: i64,
    pub number: Option<i64>,
    pub state: String,
    pub decided: Option<i64>,
    pub device: Option<Vec<u8>>,
    pub sent: Option<i64>,
    pub delivery_error: Option<String>,
    pub used: Option<i64>,
}

/// A `push_devices` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushDeviceRow {
    pub id: Vec<u8>,
    pub user: String,
    pub name: String,
    pub subscription: Vec<u8>,
    pub public_key: Vec<u8>,
    pub created: i64,
    pub last_used: Option<i64>,
}

/// The request of a row, or the column that makes no sense.
pub fn decode_push_request(r: PushRequestRow) -> Result<PushRequest, StoreError> {
    let u = r.user.as_str();
    let user = UserName::parse(u).map_err(|e| bad(u, "push_requests.user", e.to_string()))?;
    let id = PushId::from_slice(&r.id).ok_or_else(|| bad(u, "push_requests.id", "not 16 bytes"))?;
    if r.service.is_empty() || r.service.len() > mfa_model::MAX_PUSH_SERVICE_BYTES {
        return Err(bad(
            u,
            "push_requests.service",
            format!(
                "empty or longer than {} bytes",
                mfa_model::MAX_PUSH_SERVICE_BYTES
            ),
        ));
    }
    if let Some(ip) = &r.client_ip
        && ip.parse::<std::net::IpAddr>().is_err()
    {
        return Err(bad(
            u,
            "push_requests.client_ip",
            format!("{ip:?} is not an IP address"),
        ));
    }
    if r.expires < r.created {
        return Err(bad(u, "push_requests.expires", "before created"));
    }
    let number = match r.number {
        None => None,
        Some(n) => Some(
            u8::try_from(n)
                .ok()
                .filter(|n| PUSH_NUMBERS.contains(n))
                .ok_or_else(|| bad(u, "push_requests.number", format!("{n} is not 10 to 99")))?,
        ),
    };
    let state = PushState::parse(&r.state).ok_or_else(|| {
        bad(
            u,
            "push_requests.state",
            format!("{:?} is no request state", r.state),
        )
    })?;
    let device = match r.device {
        None => None,
        Some(d) => Some(
            DeviceId::from_slice(&d)
                .ok_or_else(|| bad(u, "push_requests.device", "not 16 bytes"))?,
        ),
    };
    if (state == PushState::Pending) != r.decided.is_none() {
        return Err(bad(
            u,
            "push_requests.decided",
            format!("{state} with decided = {:?}", r.decided),
        ));
    }
    Ok(PushRequest {
        id,
        user,
        service: r.service,
        client_ip: r.client_ip,
        created: r.created,
        expires: r.expires,
        number,
        state,
        decided: r.decided,
        device,
        sent: r.sent,
        delivery_error: r.delivery_error,
        used: r.used,
    })
}

/// The row of a request; `Bug` where it breaks a rule a row is checked against when read
/// (so nothing unreadable is ever written).
pub fn encode_push_request(r: &PushRequest) -> Result<PushRequestRow, StoreError> {
    let row = PushRequestRow {
        id: r.id.0.to_vec(),
        user: r.user.to_string(),
        service: r.service.clone(),
        client_ip: r.client_ip.clone(),
        created: r.created,
        expires: r.expires,
        number: r.number.map(i64::from),
        state: r.state.as_str().into(),
        decided: r.decided,
        device: r.device.map(|d| d.0.to_vec()),
        sent: r.sent,
        delivery_error: r.delivery_error.as_ref().map(|e| {
            let mut e = e.clone();
            truncate(&mut e, mfa_model::MAX_DELIVERY_ERROR_BYTES);
            e
        }),
        used: r.used,
    };
    decode_push_request(row.clone())
        .map_err(|_| StoreError::Aborted(Abort::Bug("a push request that would not read back")))?;
    Ok(row)
}

/// Cuts `s` to at most `max` bytes, at a character boundary.
fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
}

/// The device of a row, or the column that makes no sense.
pub fn decode_push_device(r: PushDeviceRow) -> Result<PushDevice, StoreError> {
    let u = r.user.as_str();
    let user = UserName::parse(u).map_err(|e| bad(u, "push_devices.user", e.to_string()))?;
    let id =
        DeviceId::from_slice(&r.id).ok_or_else(|| bad(u, "push_devices.id", "not 16 bytes"))?;
    check_device_name(&r.name).map_err(|e| bad(u, "push_devices.name", e))?;
    let subscription = SealedBlob::from_stored(r.subscription);
    check_sealed_blob(&subscription)
        .map_err(|e| bad(u, "push_devices.subscription", e.to_string()))?;
    if r.public_key.len() != PUSH_PUBLIC_KEY_BYTES || r.public_key.first() != Some(&0x04) {
        return Err(bad(
            u,
            "push_devices.public_key",
            "not an uncompressed P-256 point (65 bytes, 0x04 first)",
        ));
    }
    Ok(PushDevice {
        id,
        user,
        name: r.name,
        subscription,
        public_key: r.public_key,
        created: r.created,
        last_used: r.last_used,
    })
}

/// The row of a device; `Bug` where it would not read back.
pub fn encode_push_device(d: &PushDevice) -> Result<PushDeviceRow, StoreError> {
    let row = PushDeviceRow {
        id: d.id.0.to_vec(),
        user: d.user.to_string(),
        name: d.name.clone(),
        subscription: d.subscription.stored().to_vec(),
        public_key: d.public_key.clone(),
        created: d.created,
        last_used: d.last_used,
    };
    decode_push_device(row.clone())
        .map_err(|_| StoreError::Aborted(Abort::Bug("a push device that would not read back")))?;
    Ok(row)
}

/// A device's subscription being written must be sealed under the store's key `store`, as
/// a seed must ([`StoreError::KeyChanged`] otherwise).
pub fn check_blob_key(d: &PushDevice, store: Option<KeyId>) -> Result<(), StoreError> {
    let id = sealed_blob_key_id(&d.subscription);
    if id.is_some() && id == store {
        return Ok(());
    }
    Err(StoreError::KeyChanged {
        context: format!("writing a push device of user {:?}", d.user.as_str()),
    })
}

/// One stored subscription through a re-encryption ([`super::Store::reseal`]), for every
/// engine: the row checked, `f` applied, the result required to be under `new`.
pub fn reseal_blob(
    row: PushDeviceRow,
    new: KeyId,
    f: &mut ResealBlobFn<'_>,
) -> Result<PushDeviceRow, StoreError> {
    let d = decode_push_device(row)?;
    let sealed = f(&d.user, &d.id, &d.subscription).map_err(StoreError::Aborted)?;
    if sealed_blob_key_id(&sealed) != Some(new) {
        return Err(StoreError::Aborted(Abort::Bug(
            "a subscription re-sealed under another key than the one recorded",
        )));
    }
    encode_push_device(&PushDevice {
        subscription: sealed,
        ..d
    })
}
