//! PAM remote mode: the login is decided by mfa-radiusd, asked over RADIUS (RFC 2865, with
//! Message-Authenticator from RFC 3579) through the project's one codec, `mfa-radius-proto`.
//! The host opens no store and holds no TOTP secret.
//!
//! Round one carries User-Name, an empty User-Password, Calling-Station-Id (PAM_RHOST, only
//! when it is an IP literal), NAS-Identifier (this host's name), Called-Station-Id (the PAM
//! service) and Message-Authenticator. Called-Station-Id rather than a Vendor-Specific
//! attribute: it is a standard string attribute every RADIUS server logs and every dictionary
//! knows, a PAM host has no other use for it, and a VSA would need a registered enterprise
//! number. The server answers Access-Accept (no code needed), Access-Reject, or
//! Access-Challenge; after a challenge the code goes back as User-Password with the State, to
//! the server that issued it (a State lives in that one server's memory).
//!
//! Servers are asked in order; each gets `timeout` for all its sends (`1 + retries` copies of
//! the same packet at even intervals, so the server's duplicate cache answers a resend instead
//! of evaluating it again). A reply that fails verification (wrong Response Authenticator,
//! missing or wrong Message-Authenticator: another secret, or a forgery) counts as no answer
//! and is logged. When no server answers, the login ends with PAM_AUTHINFO_UNAVAIL within the
//! sum of the timeouts.
//!
//! Blocking `std::net` sockets with read timeouts: sshd and sudo give the module a thread and
//! expect it back; there is no runtime to run in.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use mfa_config::{Config, ConfigError, Problem, TotpConfig};
use mfa_core::{CoreError, Decision, Outcome, Reason, Request, TotpSecret, UserName};
use mfa_radius_proto::{
    AttrType, Builder, Code, MAX_ATTR_VALUE, MAX_PACKET, Packet, hide_password,
};
use zeroize::Zeroizing;

use crate::flow::{Backend, BackendError, Log};

/// Longest Reply-Message text shown to the user.
const MAX_MESSAGE: usize = 1024;

/// The remote backend of one login.
pub struct Remote {
    servers: Vec<SocketAddr>,
    secret: Zeroizing<Vec<u8>>,
    /// `[remote] source`: where the servers keep one secret per host, this host's secret is
    /// good from its own address only.
    source: Option<IpAddr>,
    timeout: Duration,
    retries: u32,
    totp: TotpConfig,
    /// `[users]`: the host turns PAM_USER into the canonical name as the server would (the
    /// two configurations should say the same).
    users: mfa_config::UsersConfig,
    host: String,
    /// After an Access-Challenge: the server that sent it and its State, for the code.
    pending: Option<Pending>,
}

struct Pending {
    server: SocketAddr,
    state: Vec<u8>,
}

/// A reply that passed verification.
struct Reply {
    code: Code,
    message: Option<String>,
    state: Option<Vec<u8>>,
}

/// One request on the wire: the packet and what its reply must match.
struct Outgoing {
    packet: Vec<u8>,
    authenticator: [u8; 16],
    identifier: u8,
}

impl Remote {
    /// The remote backend where the configuration has `[remote]`; `None` otherwise.
    pub fn from_config(cfg: &Config) -> Result<Option<Self>, CoreError> {
        let Some(r) = &cfg.remote else {
            return Ok(None);
        };
        let secret = r.load_secret().map_err(|e| {
            CoreError::Config(ConfigError {
                problems: vec![Problem {
                    file: cfg.source.clone(),
                    line: None,
                    key: Some("remote.secret_file".into()),
                    message: e.to_string(),
                }],
            })
        })?;
        Ok(Some(Remote {
            servers: r.servers.clone(),
            secret,
            source: r.source,
            timeout: r.timeout.0,
            retries: r.retries,
            totp: cfg.totp.clone(),
            users: cfg.users.clone(),
            host: host_name(),
            pending: None,
        }))
    }

    /// Builds an Access-Request with a fresh identifier and Request Authenticator.
    fn request(
        &self,
        req: &Request,
        password: &[u8],
        state: Option<&[u8]>,
    ) -> Result<Outgoing, BackendError> {
        let mut random = [0u8; 17];
        getrandom::fill(&mut random)
            .map_err(|e| BackendError::Failed(format!("no random numbers from the system: {e}")))?;
        let mut authenticator = [0u8; 16];
        authenticator.copy_from_slice(&random[..16]);
        let identifier = random[16];
        let bad = |e: &dyn std::fmt::Display| {
            BackendError::Failed(format!("cannot build the RADIUS request: {e}"))
        };
        let hidden = hide_password(password, &self.secret, &authenticator).map_err(|e| bad(&e))?;
        let mut b = Builder::request(Code::ACCESS_REQUEST, identifier, true);
        b.add(AttrType::USER_NAME, req.user.as_str().as_bytes())
            .map_err(|e| bad(&e))?;
        b.add(AttrType::USER_PASSWORD, &hidden)
            .map_err(|e| bad(&e))?;
        if let Some(ip) = req.client.ip() {
            b.add(AttrType::CALLING_STATION_ID, ip.to_string().as_bytes())
                .map_err(|e| bad(&e))?;
        }
        b.add(AttrType::NAS_IDENTIFIER, self.host.as_bytes())
            .map_err(|e| bad(&e))?;
        b.add(
            AttrType::CALLED_STATION_ID,
            label(&req.service.to_string()).as_bytes(),
        )
        .map_err(|e| bad(&e))?;
        if let Some(s) = state {
            b.add(AttrType::STATE, s).map_err(|e| bad(&e))?;
        }
        let packet = b
            .encode_request(&self.secret, &authenticator)
            .map_err(|e| bad(&e))?;
        Ok(Outgoing {
            packet,
            authenticator,
            identifier,
        })
    }

    /// Sends `out` to `server` and waits up to `timeout` for a verified reply. `Err`: why
    /// there is none, for the log.
    fn exchange(&self, server: SocketAddr, out: &Outgoing, log: &dyn Log) -> Result<Reply, String> {
        let local = match self.source {
            Some(ip) => SocketAddr::new(ip, 0),
            None if server.is_ipv6() => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
            None => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        };
        // Connected, so the kernel hands us datagrams from this server's address only.
        let sock = UdpSocket::bind(local).map_err(|e| match self.source {
            Some(ip) => format!("cannot send from [remote] source {ip}: {e}"),
            None => format!("cannot open a UDP socket: {e}"),
        })?;
        sock.connect(server)
            .map_err(|e| format!("cannot reach it: {e}"))?;
        let start = Instant::now();
        let sends = self.retries.saturating_add(1);
        let mut bad_reply: Option<String> = None;
        let mut buf = vec![0u8; MAX_PACKET + 1];
        for i in 1..=sends {
            match sock.send(&out.packet) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    return Err("refused (ICMP port unreachable: is mfa-radiusd running?)".into());
                }
                Err(e) => return Err(format!("cannot send: {e}")),
            }
            let until = start + self.timeout * i / sends;
            loop {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                sock.set_read_timeout(Some(left))
                    .map_err(|e| format!("cannot wait for the reply: {e}"))?;
                match sock.recv(&mut buf) {
                    Ok(n) => match self.check(buf.get(..n).unwrap_or_default(), out) {
                        Ok(r) => return Ok(r),
                        Err(why) => {
                            // Logged once per server: a flood of forgeries must not flood syslog.
                            if bad_reply.is_none() {
                                log.error(&format!(
                                    "RADIUS server {server}: ignored a reply: {why}"
                                ));
                            }
                            bad_reply = Some(why);
                        }
                    },
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        break;
                    }
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                        return Err(
                            "refused (ICMP port unreachable: is mfa-radiusd running?)".into()
                        );
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("receive error: {e}")),
                }
            }
        }
        Err(match bad_reply {
            Some(why) => format!(
                "no valid reply within {:?} (the last one: {why})",
                self.timeout
            ),
            None => format!("no answer within {:?} ({sends} send(s))", self.timeout),
        })
    }

    /// A datagram believed only once it answers our request and carries the shared secret's
    /// proof (Response Authenticator and Message-Authenticator, both required).
    fn check(&self, datagram: &[u8], out: &Outgoing) -> Result<Reply, String> {
        let p = Packet::parse(datagram).map_err(|e| format!("malformed: {e}"))?;
        if p.identifier != out.identifier {
            return Err(format!(
                "identifier {} does not match the request's {}",
                p.identifier, out.identifier
            ));
        }
        if ![
            Code::ACCESS_ACCEPT,
            Code::ACCESS_REJECT,
            Code::ACCESS_CHALLENGE,
        ]
        .contains(&p.code)
        {
            return Err(format!("unexpected {}", p.code));
        }
        p.verify_reply(&self.secret, &out.authenticator)
            .map_err(|e| {
                format!("{e} (is the shared secret the same on both sides? BlastRADIUS, CVE-2024-3596: replies must be signed)")
            })?;
        let mut text = Vec::new();
        for m in p.attrs(AttrType::REPLY_MESSAGE) {
            text.extend_from_slice(m);
        }
        let message = (!text.is_empty()).then(|| shown(&text));
        Ok(Reply {
            code: p.code,
            message,
            state: p.attr(AttrType::STATE).map(<[u8]>::to_vec),
        })
    }

    /// Round one: the servers in order, until one answers.
    fn round_one(&mut self, req: &Request, log: &dyn Log) -> Result<Decision, BackendError> {
        self.pending = None;
        let out = self.request(req, b"", None)?;
        let mut why = Vec::new();
        for &server in &self.servers {
            match self.exchange(server, &out, log) {
                Ok(reply) => {
                    if !why.is_empty() {
                        log.error(&format!(
                            "answered by RADIUS server {server} after: {}",
                            why.join("; ")
                        ));
                    }
                    return self.first_reply(server, reply);
                }
                Err(e) => {
                    log.error(&format!("RADIUS server {server}: {e}; trying the next one"));
                    why.push(format!("{server}: {e}"));
                }
            }
        }
        Err(BackendError::Unavailable(format!(
            "no RADIUS server answered ({})",
            why.join("; ")
        )))
    }

    fn first_reply(&mut self, server: SocketAddr, reply: Reply) -> Result<Decision, BackendError> {
        match reply.code {
            Code::ACCESS_CHALLENGE => {
                let Some(state) = reply.state else {
                    return Err(BackendError::Failed(format!(
                        "RADIUS server {server} sent an Access-Challenge without a State"
                    )));
                };
                self.pending = Some(Pending { server, state });
                Ok(Decision::need_code())
            }
            Code::ACCESS_ACCEPT => Ok(decision(Outcome::Allow, Reason::ServerAccepted, reply)),
            _ => Ok(decision(Outcome::Deny, Reason::ServerRejected, reply)),
        }
    }
}

/// The server's answer as a decision; its Reply-Message is what the user sees.
fn decision(outcome: Outcome, reason: Reason, reply: Reply) -> Decision {
    let message = match (outcome, reply.message) {
        (_, Some(m)) => Some(m),
        (Outcome::Allow, None) => None,
        (_, None) => Decision::deny(reason.clone()).message,
    };
    Decision {
        outcome,
        reason,
        message,
        offer_enrolment: false,
    }
}

impl Backend for Remote {
    fn user_name(&self, raw: &str) -> Result<UserName, CoreError> {
        UserName::canonical(raw, &self.users.rules()).map_err(|e| CoreError::bad_name(raw, e))
    }

    fn begin(&mut self, req: &Request, log: &dyn Log) -> Result<Decision, BackendError> {
        self.round_one(req, log)
    }

    fn verify_code(
        &mut self,
        req: &Request,
        code: &str,
        log: &dyn Log,
    ) -> Result<Decision, BackendError> {
        // A second code at one login (try_first_pass after a refused token): the State was
        // spent, so start again.
        if self.pending.is_none() {
            let d = self.round_one(req, log)?;
            if d.outcome != Outcome::NeedCode {
                return Ok(d);
            }
        }
        let Some(p) = self.pending.take() else {
            return Err(BackendError::Failed("no challenge to answer".into()));
        };
        let code = Zeroizing::new(code.as_bytes().to_vec());
        let out = self.request(req, &code, Some(&p.state))?;
        let reply = self.exchange(p.server, &out, log).map_err(|e| {
            BackendError::Unavailable(format!(
                "RADIUS server {} sent the challenge but did not answer the code: {e}",
                p.server
            ))
        })?;
        match reply.code {
            Code::ACCESS_ACCEPT => Ok(decision(Outcome::Allow, Reason::ServerAccepted, reply)),
            // A refused code, as far as the flow can tell (try_first_pass prompts after it).
            Code::ACCESS_REJECT => Ok(decision(Outcome::Deny, Reason::WrongCode, reply)),
            _ => Err(BackendError::Failed(format!(
                "RADIUS server {} answered the code with another Access-Challenge",
                p.server
            ))),
        }
    }

    fn totp(&self) -> &TotpConfig {
        &self.totp
    }

    fn self_enroll(
        &mut self,
        _req: &Request,
        _secret: &TotpSecret,
        _code: &str,
    ) -> Result<Decision, CoreError> {
        // The host holds no secrets; the server's decisions never offer enrolment.
        Err(CoreError::Bug(
            "self-enrolment is not offered in remote mode",
        ))
    }
}

/// Text from the server as the conversation shows it: valid UTF-8, no control characters
/// but newlines, bounded.
fn shown(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .take(MAX_MESSAGE)
        .collect()
}

/// An attribute value from local text: printable, at most 64 characters.
fn label(s: &str) -> String {
    let v: String = s
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(64.min(MAX_ATTR_VALUE))
        .collect();
    if v.is_empty() { "-".into() } else { v }
}

/// This host's name for NAS-Identifier. Read from the kernel's file rather than through
/// gethostname(2), which would be `unsafe` outside ffi.rs; Linux is the only target.
fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    label(raw.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_messages_are_tamed() {
        assert_eq!(label("sshd"), "sshd");
        assert_eq!(label(""), "-");
        assert_eq!(label("a b\u{7}"), "a_b_");
        assert_eq!(label(&"x".repeat(300)).len(), 64);
        assert_eq!(shown(b"Wrong\x1b[2J code\nagain"), "Wrong[2J code\nagain");
        assert!(!host_name().is_empty());
    }
}
