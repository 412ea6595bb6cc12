//! The data model of the product, shared by the core, every store engine and every front end.
//!
//! It imports nothing from the project (no policy, no store, no configuration), so the layers
//! above it can depend on it without depending on each other: the audit model, the policy and
//! the store all speak these types.
#![forbid(unsafe_code)]

mod audit;
mod name;
mod push;
mod record;
mod refusal;
mod sealed;
mod totp;

pub use audit::{
    Action, AuditDecision, AuditEvent, Outcome, ReasonCode, StoredDecision, StoredReason,
    UnknownCode,
};
pub use name::{
    BadUserName, MAX_NAME_BYTES, NameRules, UserName, look_alike, lookalike_key,
    lookalike_key_version,
};
pub use push::{
    DecisionRefusal, DeviceId, DeviceRefusal, MAX_DELIVERY_ERROR_BYTES, MAX_DEVICE_NAME_CHARS,
    MAX_PUSH_DEVICES, MAX_PUSH_SERVICE_BYTES, PUSH_ID_BYTES, PUSH_NUMBERS, PUSH_PUBLIC_KEY_BYTES,
    PushDevice, PushId, PushRefusal, PushRequest, PushState, SealedBlob, check_device_name,
};
pub use record::{
    BACKUP_CODES, BACKUP_CODES_DEFAULT, INVITE_VALID_SECS, INVITE_VALID_TEXT, Invite, OneTimeCode,
    OtcHash, OtcKind, RolloutStatus, SealedSecret, SourceFailures, Unlock, UserRecord,
};
pub use refusal::Refusal;
pub use sealed::{
    FORM_CLEAR, FORM_XCHACHA20POLY1305, KEY_ID_BYTES, KeyId, MAX_BLOB_BYTES, MAX_SECRET_BYTES,
    MIN_SECRET_BYTES, NONCE_BYTES, SEALED_HEADER, SecretError, TAG_BYTES, check_sealed,
    check_sealed_blob, check_seed_len, sealed_blob_key_id, sealed_key_id,
};
pub use totp::{Algorithm, BadTotpParams, DIGITS, PERIODS, TotpParams};
