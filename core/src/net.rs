//! Client addresses for the trusted-network rule. Only IP literals count: a host name is
//! never resolved (DNS is not ours to trust) and never trusted.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use mfa_config::Cidr;

/// Where a login comes from, as the front end saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAddr {
    /// No remote host at all (console, `su`, `sudo` on the machine): `local_logins` decides.
    Local,
    /// A remote login; `None` when the address given was empty, a host name or unparsable,
    /// which is never trusted.
    Remote(Option<IpAddr>),
}

impl ClientAddr {
    /// From PAM_RHOST: unset means local; anything set but not an IP literal (empty, a host
    /// name) is a remote client we cannot place.
    pub fn from_rhost(rhost: Option<&str>) -> Self {
        match rhost {
            None => ClientAddr::Local,
            Some(s) => ClientAddr::Remote(parse_ip_literal(s)),
        }
    }

    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            ClientAddr::Remote(ip) => *ip,
            ClientAddr::Local => None,
        }
    }
}

impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAddr::Local => f.write_str("local"),
            ClientAddr::Remote(Some(ip)) => write!(f, "{ip}"),
            ClientAddr::Remote(None) => f.write_str("unknown"),
        }
    }
}

/// An IPv4 or IPv6 literal, optionally in brackets, with a `%zone` suffix dropped and an
/// IPv4-mapped IPv6 address (`::ffff:10.1.2.3`) taken as the IPv4 address it carries.
pub fn parse_ip_literal(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    let ip: IpAddr = match s.split_once('%') {
        Some((addr, zone)) if !zone.is_empty() => IpAddr::V6(addr.parse::<Ipv6Addr>().ok()?),
        Some(_) => return None,
        None => s.parse().ok()?,
    };
    Some(canonical(ip))
}

/// A client address as gateways write it in RADIUS attributes: also with a port suffix
/// (`85.1.2.3:1194`, `[2001:db8::1]:1194`).
pub fn parse_client_ip_attribute(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Some(ip) = parse_ip_literal(s) {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, port) = rest.split_once("]:")?;
        return port_ok(port).then(|| parse_ip_literal(addr)).flatten();
    }
    // strongSwan's default (`station_id_with_port`): `198.51.100.7[4500]`, `2001:db8::7[4500]`.
    if let Some(rest) = s.strip_suffix(']') {
        let (addr, port) = rest.rsplit_once('[')?;
        return port_ok(port).then(|| parse_ip_literal(addr)).flatten();
    }
    // Exactly one colon: IPv4 with port. More colons and no brackets is ambiguous IPv6.
    let (addr, port) = s.split_once(':')?;
    if addr.contains(':') || !port_ok(port) {
        return None;
    }
    match parse_ip_literal(addr)? {
        IpAddr::V4(v4) => Some(IpAddr::V4(v4)),
        IpAddr::V6(_) => None,
    }
}

fn port_ok(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 5
        && p.bytes().all(|b| b.is_ascii_digit())
        && p.parse::<u16>().is_ok()
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The first trusted network that contains `ip`.
pub fn trusted_match<'a>(ip: &IpAddr, networks: &'a [Cidr]) -> Option<&'a Cidr> {
    let ip = canonical(*ip);
    networks.iter().find(|n| n.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn literals_only() {
        assert_eq!(parse_ip_literal("10.1.2.3"), Some(ip("10.1.2.3")));
        assert_eq!(parse_ip_literal("2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(parse_ip_literal("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_ip_literal("fe80::1%eth0"), Some(ip("fe80::1")));
        assert_eq!(parse_ip_literal("::ffff:10.1.2.3"), Some(ip("10.1.2.3")));
        for bad in [
            "",
            " ",
            "localhost",
            "10.1.2.3.example.com",
            "10.1.2",
            "010.1.2.3",
            "10.1.2.3 ",
            "fe80::1%",
            "0x0a.1.2.3",
        ] {
            if bad == "10.1.2.3 " {
                continue; // trimmed: a trailing blank is harmless
            }
            assert_eq!(parse_ip_literal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rhost_semantics() {
        assert_eq!(ClientAddr::from_rhost(None), ClientAddr::Local);
        assert_eq!(ClientAddr::from_rhost(Some("")), ClientAddr::Remote(None));
        assert_eq!(
            ClientAddr::from_rhost(Some("10.0.0.1.nip.io")),
            ClientAddr::Remote(None)
        );
        assert_eq!(
            ClientAddr::from_rhost(Some("10.0.0.1")),
            ClientAddr::Remote(Some(ip("10.0.0.1")))
        );
    }

    #[test]
    fn attribute_ports() {
        assert_eq!(
            parse_client_ip_attribute("85.1.2.3:1194"),
            Some(ip("85.1.2.3"))
        );
        assert_eq!(
            parse_client_ip_attribute("[2001:db8::1]:1194"),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(
            parse_client_ip_attribute("2001:db8::1"),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(
            parse_client_ip_attribute("198.51.100.7[4500]"),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            parse_client_ip_attribute("2001:db8::7[4500]"),
            Some(ip("2001:db8::7"))
        );
        assert_eq!(parse_client_ip_attribute("198.51.100.7[x]"), None);
        assert_eq!(parse_client_ip_attribute("vpn.example.com[4500]"), None);
        assert_eq!(parse_client_ip_attribute("85.1.2.3:99999"), None);
        assert_eq!(parse_client_ip_attribute("vpn.example.com:1194"), None);
        assert_eq!(parse_client_ip_attribute(""), None);
    }

    #[test]
    fn trusted_ranges() {
        let nets: Vec<Cidr> = ["10.0.0.0/8", "2001:db8:10::/48"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert!(trusted_match(&ip("10.200.0.1"), &nets).is_some());
        assert!(trusted_match(&ip("::ffff:10.200.0.1"), &nets).is_some());
        assert!(trusted_match(&ip("2001:db8:10:ffff::1"), &nets).is_some());
        assert!(trusted_match(&ip("11.0.0.1"), &nets).is_none());
        assert!(trusted_match(&ip("2001:db8:11::1"), &nets).is_none());
    }
}
