//! Value types of the configuration that parse from the strings administrators write.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Deserializer, de};
use zeroize::Zeroizing;

/// A duration written as `"90s"`, `"5m"`, `"8h"`, `"14d"` or `"2w"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

impl Span {
    pub const fn secs(s: u64) -> Self {
        Self(Duration::from_secs(s))
    }
    pub fn as_secs(self) -> u64 {
        self.0.as_secs()
    }

    /// Seconds as the signed Unix-time arithmetic of the store needs them. Parsing caps a
    /// span at 100 years, so this never saturates for a configured value.
    pub fn secs_i64(self) -> i64 {
        i64::try_from(self.0.as_secs()).unwrap_or(i64::MAX)
    }
}

impl FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return Err(format!(
                "invalid duration {s:?}: expected a number and a unit, like \"90s\", \"5m\", \"8h\" or \"14d\""
            ));
        }
        let n: u64 = num
            .parse()
            .map_err(|_| format!("invalid duration {s:?}: number too large"))?;
        let mult = match unit.trim() {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            "" => {
                return Err(format!(
                    "invalid duration {s:?}: a unit is required (s, m, h, d or w)"
                ));
            }
            u => {
                return Err(format!(
                    "invalid duration {s:?}: unknown unit {u:?} (use s, m, h, d or w)"
                ));
            }
        };
        n.checked_mul(mult)
            .filter(|v| *v <= 100 * 365 * 86_400)
            .map(|v| Span(Duration::from_secs(v)))
            .ok_or_else(|| format!("invalid duration {s:?}: too long"))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs();
        for (unit, m) in [("w", 7 * 86_400), ("d", 86_400), ("h", 3600), ("m", 60)] {
            if s >= m && s.is_multiple_of(m) {
                return write!(f, "{}{unit}", s / m);
            }
        }
        write!(f, "{s}s")
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// A network written as a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a single address.
///
/// Host bits set (`10.0.0.1/8`) are refused: the administrator probably meant something else,
/// and guessing about trust is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr(pub IpNet);

impl Cidr {
    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.0.contains(ip)
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("empty network: expected a CIDR such as 10.0.0.0/8".into());
        }
        if t.len() > 64
            || !t
                .chars()
                .all(|c| c.is_ascii_hexdigit() || ".:/".contains(c))
        {
            return Err(format!(
                "invalid network {s:?}: expected a CIDR such as 10.0.0.0/8 or 2001:db8::/32"
            ));
        }
        if t.contains('/') {
            let net: IpNet = t.parse().map_err(|_| {
                format!(
                    "invalid network {s:?}: expected a CIDR such as 10.0.0.0/8 or 2001:db8::/32"
                )
            })?;
            if net.addr() != net.network() {
                return Err(format!(
                    "invalid network {s:?}: host bits are set; did you mean {}/{}?",
                    net.network(),
                    net.prefix_len()
                ));
            }
            Ok(Cidr(net))
        } else {
            let ip: IpAddr = t
                .parse()
                .map_err(|_| format!("invalid network {s:?}: not an IP address or CIDR"))?;
            Ok(Cidr(IpNet::from(ip)))
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// The IPv4-mapped IPv6 block (`::ffff:0:0/96`, RFC 4291 §2.5.5.2): client addresses in it
/// are compared as the IPv4 addresses they carry, so a trusted range there is measured as
/// IPv4 too.
const MAPPED: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96);

impl Cidr {
    /// The IPv4 addresses this range covers, IPv4-mapped IPv6 ones included
    /// (`::ffff:10.0.0.0/104` is `10.0.0.0/8`; a range holding all of `::ffff:0:0/96`, such
    /// as `::/80`, holds every IPv4 address): what an attacker would look for.
    pub fn ipv4_part(&self) -> Option<Ipv4Net> {
        match self.0 {
            IpNet::V4(n) => Some(n),
            IpNet::V6(n) if MAPPED.contains(&n) => {
                let v4 = n.network().to_ipv4_mapped()?;
                Ipv4Net::new(v4, n.prefix_len().saturating_sub(96)).ok()
            }
            IpNet::V6(n) if n.contains(&MAPPED) => Ipv4Net::new(Ipv4Addr::UNSPECIFIED, 0).ok(),
            IpNet::V6(_) => None,
        }
    }

    /// The IPv6 range, unless it lies wholly in the IPv4-mapped block (then it is IPv4).
    pub fn ipv6_part(&self) -> Option<Ipv6Net> {
        match self.0 {
            IpNet::V6(n) if !MAPPED.contains(&n) => Some(n),
            _ => None,
        }
    }
}

/// How much of an address family a set of ranges covers, overlaps counted once: the
/// number of addresses as a share of the family, in 1/2^32 of it (so 2^31 is half).
fn share(prefixes: impl Iterator<Item = u8>, bits: u8) -> u64 {
    prefixes
        .map(|p| {
            // A /p holds 2^(bits-p) of 2^bits addresses: 2^(32-p) in units of 2^-32.
            let p = u32::from(p.min(bits));
            if p >= 32 { 1 } else { 1u64 << (32 - p) }
        })
        .fold(0u64, u64::saturating_add)
}

/// Where a set of trusted ranges stands against the rule that trusting half an address
/// family or more is no trusted network but MFA turned off (see `validate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    V4,
    V6,
}

impl Family {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// Half of an address family, in the units of [`share`].
pub(crate) const HALF: u64 = 1 << 31;

/// The share of each family that `nets` cover together, overlaps counted once (IPv4-mapped
/// ranges as IPv4), in the units of [`share`] (2^32 is all of it).
pub(crate) fn coverage(nets: &[Cidr]) -> [(Family, u64); 2] {
    let v4: Vec<Ipv4Net> = nets.iter().filter_map(Cidr::ipv4_part).collect();
    let v6: Vec<Ipv6Net> = nets.iter().filter_map(Cidr::ipv6_part).collect();
    let v4 = share(Ipv4Net::aggregate(&v4).iter().map(Ipv4Net::prefix_len), 32);
    // IPv6 prefixes beyond /32 are less than 2^-32 of the family each: counted as one unit,
    // which only errs towards a larger share.
    let v6 = share(Ipv6Net::aggregate(&v6).iter().map(Ipv6Net::prefix_len), 128);
    [(Family::V4, v4), (Family::V6, v6)]
}

/// One entry of `[policy] remember_for`: a kind of login that an address a user unlocked on
/// the portal lets in without a code. An unlock reaches no further than these.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RememberFor {
    /// `"code-only"`: every RADIUS client in code-only mode, the gateways that checked the
    /// password themselves and cannot ask for a code (Microsoft RD Gateway). The default.
    CodeOnly,
    /// `"radius:NAME"`: the RADIUS client `NAME` of `[[radius.clients]]`, in any mode (for a
    /// PAM host in remote mode: every PAM login that host sends).
    Radius(String),
    /// `"pam:SERVICE"`: logins through the PAM service `SERVICE` (`sshd`, `sudo`), by the
    /// module on this host or by a PAM host in remote mode.
    Pam(String),
}

impl FromStr for RememberFor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        // No example in quotes: the error's line is found by the quoted entry alone.
        const FORMS: &str = "expected code-only, radius:NAME (a [[radius.clients]] name) or pam:SERVICE (a PAM service such as sshd)";
        if s == "code-only" {
            return Ok(RememberFor::CodeOnly);
        }
        if let Some(name) = s.strip_prefix("radius:") {
            // As `[[radius.clients]] name` is checked: 1 to 64 characters, not blank.
            if name.trim().is_empty() || name.trim() != name || name.len() > 64 {
                return Err(format!(
                    "{s:?}: the RADIUS client name after radius: must be 1 to 64 characters without surrounding blanks"
                ));
            }
            return Ok(RememberFor::Radius(name.into()));
        }
        if let Some(svc) = s.strip_prefix("pam:") {
            if svc.is_empty()
                || svc.len() > 64
                || !svc
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(format!(
                    "{s:?}: the PAM service after pam: must be a PAM service name (letters, digits, - _ .), as in pam:sshd"
                ));
            }
            return Ok(RememberFor::Pam(svc.into()));
        }
        Err(format!("{s:?} is not a kind of login: {FORMS}"))
    }
}

impl fmt::Display for RememberFor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RememberFor::CodeOnly => f.write_str("code-only"),
            RememberFor::Radius(n) => write!(f, "radius:{n}"),
            RememberFor::Pam(s) => write!(f, "pam:{s}"),
        }
    }
}

impl<'de> Deserialize<'de> for RememberFor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// A point in time, as Unix seconds (UTC). Written in TOML as an offset date-time
/// (`2026-12-01T08:00:00Z`), a local date-time (taken as UTC) or a date (midnight UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant(pub i64);

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let dt = toml::value::Datetime::deserialize(d)?;
        let date = dt
            .date
            .ok_or_else(|| de::Error::custom("a date is required, like 2026-12-01T08:00:00Z"))?;
        let days = days_from_civil(i64::from(date.year), date.month.into(), date.day.into());
        let mut secs = days * 86_400;
        if let Some(t) = dt.time {
            secs += i64::from(t.hour) * 3600
                + i64::from(t.minute) * 60
                + i64::from(t.second.unwrap_or(0));
        }
        if let Some(toml::value::Offset::Custom { minutes }) = dt.offset {
            secs -= i64::from(minutes) * 60;
        }
        Ok(Instant(secs))
    }
}

/// `[policy] enforce_from`, the go-live: from when a user who is not enrolled needs a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GoLive {
    /// The key is absent: enforced from now (SPEC, "Policy").
    #[default]
    Now,
    /// A date: before it, a user who is not enrolled is let in and told how many days are
    /// left; from it, the per-user grace (`grace_days`) counts.
    At(Instant),
    /// `"never"`: the roll-out is not scheduled. Before go-live for ever: a user who is not
    /// enrolled is let in and told that MFA is not required yet (no day count); an enrolled
    /// user still needs the code.
    Never,
}

impl GoLive {
    /// Whether `now` is before go-live (always, for `Never`; never, for `Now`).
    pub fn is_before(self, now: i64) -> bool {
        match self {
            GoLive::Now => false,
            GoLive::At(t) => now < t.0,
            GoLive::Never => true,
        }
    }

    /// The go-live date, where one is set.
    pub fn date(self) -> Option<i64> {
        match self {
            GoLive::At(t) => Some(t.0),
            GoLive::Now | GoLive::Never => None,
        }
    }
}

impl<'de> Deserialize<'de> for GoLive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = GoLive;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a date such as 2027-03-01 (or 2027-03-01T08:00:00Z), or \"never\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<GoLive, E> {
                if s == "never" {
                    Ok(GoLive::Never)
                } else {
                    Err(E::custom(format!(
                        "expected a date such as 2027-03-01 (written without quotes) or \"never\", found {s:?}"
                    )))
                }
            }
            // A TOML date-time reaches serde as a one-entry map; `Instant` reads it from there.
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<GoLive, A::Error> {
                Instant::deserialize(de::value::MapAccessDeserializer::new(map)).map(GoLive::At)
            }
        }
        d.deserialize_any(V)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats Unix seconds as `2026-12-01T08:00:00Z`.
pub fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// A shared secret held in memory that is wiped on drop and never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(pub Zeroizing<String>);

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(SecretString(Zeroizing::new(String::deserialize(d)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_parse() {
        assert_eq!("90s".parse::<Span>().unwrap().as_secs(), 90);
        assert_eq!("5m".parse::<Span>().unwrap().as_secs(), 300);
        assert_eq!("14d".parse::<Span>().unwrap().as_secs(), 14 * 86_400);
        assert!("5".parse::<Span>().is_err());
        assert!("m".parse::<Span>().is_err());
        assert!("5y".parse::<Span>().is_err());
        assert!("99999999999999999999s".parse::<Span>().is_err());
        assert_eq!(Span::secs(900).to_string(), "15m");
    }

    #[test]
    fn cidrs_parse_strictly() {
        assert!("10.0.0.0/8".parse::<Cidr>().is_ok());
        assert!("2001:db8:10::/48".parse::<Cidr>().is_ok());
        assert_eq!(
            "192.0.2.1".parse::<Cidr>().unwrap().to_string(),
            "192.0.2.1/32"
        );
        let e = "10.0.0.1/8".parse::<Cidr>().unwrap_err();
        assert!(e.contains("did you mean 10.0.0.0/8"), "{e}");
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("example.com".parse::<Cidr>().is_err());
        assert!("10.0.0.0/8\"]\nx = [\"".parse::<Cidr>().is_err());
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2026, 12, 1), 20_788);
        for z in [-1000, 0, 20_788, 60_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m.into(), d.into()), z);
        }
        assert_eq!(format_utc(1_796_112_000), "2026-12-01T08:00:00Z");
    }
}
