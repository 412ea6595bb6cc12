//! RADIUS accounting (RFC 2866): what a gateway reports in an Accounting-Request, read from a
//! packet whose authenticator was checked ([`Packet::verify_accounting_request`]), and the
//! names of the values a log line shows. The answer is an Accounting-Response built as any
//! reply is ([`crate::Builder::reply`] with [`Code::ACCOUNTING_RESPONSE`]).
//!
//! Written here rather than in the daemon so that it is fuzzed with the rest of the codec:
//! every attribute below comes from the gateway, and a wrong length or a repeated attribute
//! is a typed error, never a guess.

use std::fmt;
use std::net::Ipv4Addr;

use super::{AttrType, Code, Packet};

/// Acct-Status-Type (RFC 2866 §5.1): what the request reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcctStatus {
    /// A session began (1).
    Start,
    /// A session ended (2).
    Stop,
    /// A session is still up (3, RFC 2869 §2.1), sent every Acct-Interim-Interval.
    InterimUpdate,
    /// The gateway started (7): every session it had before is over.
    AccountingOn,
    /// The gateway is stopping (8): so are all its sessions.
    AccountingOff,
    /// Any other value (the tunnel values of RFC 2867, Failed = 15, vendor ones).
    Other(u32),
}

impl AcctStatus {
    pub fn from_value(v: u32) -> Self {
        match v {
            1 => AcctStatus::Start,
            2 => AcctStatus::Stop,
            3 => AcctStatus::InterimUpdate,
            7 => AcctStatus::AccountingOn,
            8 => AcctStatus::AccountingOff,
            other => AcctStatus::Other(other),
        }
    }

    pub fn value(self) -> u32 {
        match self {
            AcctStatus::Start => 1,
            AcctStatus::Stop => 2,
            AcctStatus::InterimUpdate => 3,
            AcctStatus::AccountingOn => 7,
            AcctStatus::AccountingOff => 8,
            AcctStatus::Other(v) => v,
        }
    }

    /// The dictionary's name, for log lines.
    pub fn name(self) -> &'static str {
        match self {
            AcctStatus::Start => "Start",
            AcctStatus::Stop => "Stop",
            AcctStatus::InterimUpdate => "Interim-Update",
            AcctStatus::AccountingOn => "Accounting-On",
            AcctStatus::AccountingOff => "Accounting-Off",
            AcctStatus::Other(_) => "other",
        }
    }
}

impl fmt::Display for AcctStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.value())
    }
}

/// Acct-Terminate-Cause (RFC 2866 §5.10) by its dictionary name, `None` for a value the RFC
/// does not name.
pub fn terminate_cause_name(v: u32) -> Option<&'static str> {
    Some(match v {
        1 => "User-Request",
        2 => "Lost-Carrier",
        3 => "Lost-Service",
        4 => "Idle-Timeout",
        5 => "Session-Timeout",
        6 => "Admin-Reset",
        7 => "Admin-Reboot",
        8 => "Port-Error",
        9 => "NAS-Error",
        10 => "NAS-Request",
        11 => "NAS-Reboot",
        12 => "Port-Unneeded",
        13 => "Port-Preempted",
        14 => "Port-Suspended",
        15 => "Service-Unavailable",
        16 => "Callback",
        17 => "User-Error",
        18 => "Host-Request",
        _ => return None,
    })
}

/// What an Accounting-Request reports, borrowing the packet. Every field but `status` is
/// optional: gateways send different sets (a Start has no Acct-Session-Time, an
/// Accounting-On no User-Name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountingReport<'a> {
    pub status: AcctStatus,
    pub user_name: Option<&'a [u8]>,
    pub session_id: Option<&'a [u8]>,
    /// Seconds the session lasted (Stop, Interim-Update).
    pub session_time: Option<u32>,
    /// Octets from and to the user, the Gigawords attributes (RFC 2869 §5.1) included.
    pub input_octets: Option<u64>,
    pub output_octets: Option<u64>,
    /// Acct-Terminate-Cause (Stop).
    pub terminate_cause: Option<u32>,
    /// The address the gateway gave the user inside the tunnel.
    pub framed_ip: Option<Ipv4Addr>,
}

/// Why an Accounting-Request cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccountingError {
    /// Not an Accounting-Request at all.
    NotAccounting(Code),
    /// No Acct-Status-Type, which RFC 2866 §5.1 requires in every one.
    MissingStatusType,
    /// An attribute the request may carry once, twice.
    Repeated(AttrType),
    /// A number that is not 4 octets, an address that is not 4 octets.
    BadLength { typ: AttrType, len: usize },
}

impl fmt::Display for AccountingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountingError::NotAccounting(c) => write!(f, "{c} is not an Accounting-Request"),
            AccountingError::MissingStatusType => {
                f.write_str("Accounting-Request without Acct-Status-Type")
            }
            AccountingError::Repeated(t) => write!(f, "more than one {t}"),
            AccountingError::BadLength { typ, len } => {
                write!(f, "{typ} of {len} octets, not 4")
            }
        }
    }
}

/// The cause is the octets themselves: `source()` is `None`.
impl std::error::Error for AccountingError {}

/// The one value of `typ`, if any; two are an error.
fn once<'a>(p: &Packet<'a>, typ: AttrType) -> Result<Option<&'a [u8]>, AccountingError> {
    let mut it = p.attrs(typ);
    let first = it.next();
    if it.next().is_some() {
        return Err(AccountingError::Repeated(typ));
    }
    Ok(first)
}

/// The one 32-bit integer of `typ`, if any.
fn integer(p: &Packet<'_>, typ: AttrType) -> Result<Option<u32>, AccountingError> {
    once(p, typ)?
        .map(|v| {
            <[u8; 4]>::try_from(v)
                .map(u32::from_be_bytes)
                .map_err(|_| AccountingError::BadLength { typ, len: v.len() })
        })
        .transpose()
}

/// Octets counted in 32 bits plus the times they wrapped (Gigawords).
fn octets(p: &Packet<'_>, low: AttrType, high: AttrType) -> Result<Option<u64>, AccountingError> {
    let (lo, hi) = (integer(p, low)?, integer(p, high)?);
    Ok(match (lo, hi) {
        (None, None) => None,
        (lo, hi) => Some(u64::from(hi.unwrap_or(0)) << 32 | u64::from(lo.unwrap_or(0))),
    })
}

/// Reads what an Accounting-Request reports. Structure only: whether the sender knows the
/// secret is [`Packet::verify_accounting_request`]'s question, asked first.
pub fn read_report<'a>(p: &Packet<'a>) -> Result<AccountingReport<'a>, AccountingError> {
    if p.code != Code::ACCOUNTING_REQUEST {
        return Err(AccountingError::NotAccounting(p.code));
    }
    let status = integer(p, AttrType::ACCT_STATUS_TYPE)?
        .map(AcctStatus::from_value)
        .ok_or(AccountingError::MissingStatusType)?;
    let framed_ip = once(p, AttrType::FRAMED_IP_ADDRESS)?
        .map(|v| {
            <[u8; 4]>::try_from(v)
                .map(Ipv4Addr::from)
                .map_err(|_| AccountingError::BadLength {
                    typ: AttrType::FRAMED_IP_ADDRESS,
                    len: v.len(),
                })
        })
        .transpose()?;
    Ok(AccountingReport {
        status,
        user_name: once(p, AttrType::USER_NAME)?,
        session_id: once(p, AttrType::ACCT_SESSION_ID)?,
        session_time: integer(p, AttrType::ACCT_SESSION_TIME)?,
        input_octets: octets(
            p,
            AttrType::ACCT_INPUT_OCTETS,
            AttrType::ACCT_INPUT_GIGAWORDS,
        )?,
        output_octets: octets(
            p,
            AttrType::ACCT_OUTPUT_OCTETS,
            AttrType::ACCT_OUTPUT_GIGAWORDS,
        )?,
        terminate_cause: integer(p, AttrType::ACCT_TERMINATE_CAUSE)?,
        framed_ip,
    })
}
