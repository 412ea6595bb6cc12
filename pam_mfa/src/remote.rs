//! PAM remote mode: the login is decided by mfa-radiusd, asked over RADIUS (RFC 2865, with
//! Message-Authenticator from RFC 3579) through the project's one codec, `mfa-radius-proto`,
//! whose [`mfa_radius_proto::pam_host`] module writes the request and reads the answer (the
//! daemon reads and writes them with the same code). The host opens no store and holds no
//! TOTP secret.
//!
//! Round one carries User-Name, an empty User-Password, Calling-Station-Id (PAM_RHOST, only
//! when it is an IP literal), NAS-Identifier (this host's name), Called-Station-Id (the PAM
//! service), whether this host's NSS knows the user (Name-Known, so the server gives a
//! stranger's name no record, as the module does locally) and Message-Authenticator. The
//! server answers Access-Accept (no code needed), Access-Reject (with why: a lock ends the
//! login with PAM_MAXTRIES, as locally), or Access-Challenge; after a challenge the code goes
//! back as User-Password with the State, to the server that issued it (a State lives in that
//! one server's memory). A verified reply this host does not fully understand denies.
//!
//! Push approval (issue 20): every request says the host can wait for a push
//! (Push-Capable). A challenge that offers one (Push-Offered) makes the prompt offer it; on
//! Enter the host answers the challenge with Push-Request and gets an Access-Challenge that
//! says a push is waiting (Push-Timeout, Push-Number under number matching), shows the number,
//! and asks again with each new State, once a second, until the server accepts or rejects.
//! A server whose client has `push = "only"` answers round one with the waiting push itself.
//!
//! Servers are asked in order; each gets `timeout` for all its sends (`1 + retries` copies of
//! the same packet at even intervals, so the server's duplicate cache answers a resend instead
//! of evaluating it again). A reply that fails verification (wrong Response Authenticator,
//! missing or wrong Message-Authenticator: another secret, or a forgery) counts as no answer
//! and is logged. When no server answers, the login ends with PAM_AUTHINFO_UNAVAIL within the
//! sum of the timeouts; under `[remote] offline = "trusted"` the host's own policy may first
//! let it in without a code ([`Remote::offline`], queued by [`crate::offline`]).
//!
//! Blocking `std::net` sockets with read timeouts: sshd and sudo give the module a thread and
//! expect it back; there is no runtime to run in.

use std::fmt;
use std::io::{self, ErrorKind};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use mfa_config::{Config, ConfigError, Problem, RemoteOffline, TotpConfig};
use mfa_core::{CoreError, Decision, Outcome, Reason, Request, TotpSecret, UserName};
use mfa_radius_proto::pam_host::report::{OfflineEvent, ReportRequest, read_report_ack};
use mfa_radius_proto::pam_host::{
    self, ChallengePush, HostReply, HostRequest, RejectReason, ReplyError,
};
use mfa_radius_proto::{Code, DecodeError, MAX_PACKET, Packet, VerifyError};
use zeroize::Zeroizing;

use crate::flow::{Backend, BackendError, Log, PushSent, PushStart};

/// How often a host asks whether the phone has decided.
const PUSH_POLL_EVERY: Duration = Duration::from_secs(1);

/// The remote backend of one login.
pub struct Remote {
    servers: Vec<SocketAddr>,
    secret: Zeroizing<Vec<u8>>,
    /// `[remote] source`: where the servers keep one secret per host, this host's secret is
    /// good from its own address only.
    source: Option<IpAddr>,
    timeout: Duration,
    retries: u32,
    /// `[remote] offline`: what the host does itself while no server answers.
    offline: RemoteOffline,
    /// `[remote] offline_queue`: where logins let in offline wait for a server.
    offline_queue: std::path::PathBuf,
    /// `[remote] breakglass_file`: this host's break-glass codes, where it has some.
    breakglass_file: Option<std::path::PathBuf>,
    /// No server answered round one and the code asked for is a break-glass code.
    breakglass_pending: bool,
    /// The host's configuration: `[users]` turns PAM_USER into the canonical name by the
    /// core's rule, as the server does (the two configurations should say the same).
    config: Config,
    host: String,
    /// Whether this host's NSS knows the user, sent with every request (see
    /// [`Backend::admit`]).
    name_known: bool,
    /// After an Access-Challenge: the server that sent it and its State, for the code.
    awaiting_code: Option<AwaitingCode>,
    /// After an Access-Challenge of a push waiting: where to ask whether the phone decided.
    awaiting_push: Option<AwaitingCode>,
    /// A push the server sent without asking (round one), for the flow to wait for.
    push_sent: Option<PushSent>,
    /// The server that answered round one: the logins let in offline are reported to it.
    answered: Option<SocketAddr>,
}

/// A challenge this login has yet to answer.
struct AwaitingCode {
    server: SocketAddr,
    state: Vec<u8>,
    /// The challenge offered a push (Push-Offered).
    push_offered: bool,
}

/// A push waiting, as a challenge says it.
fn push_sent(number: Option<u8>, timeout_secs: u32) -> PushSent {
    PushSent {
        number,
        timeout: Duration::from_secs(u64::from(timeout_secs)),
    }
}

/// A verified reply: what the server answered, or why this host cannot act on it.
type Verified = Result<HostReply, ReplyError>;

/// One request on the wire: the packet and what its reply must match.
struct Outgoing {
    packet: Vec<u8>,
    authenticator: [u8; 16],
    identifier: u8,
}

/// Why one server gave no answer this host believes (the next one is asked).
#[derive(Debug)]
pub enum NoAnswer {
    /// No socket, or none from `[remote] source`.
    Socket {
        source: Option<IpAddr>,
        error: io::Error,
    },
    Connect(io::Error),
    /// ICMP port unreachable.
    Refused,
    Send(io::Error),
    Wait(io::Error),
    Receive(io::Error),
    /// Only datagrams that are not its verified reply arrived; the last one's fault.
    NoValidReply {
        timeout: Duration,
        last: BadReply,
    },
    /// Nothing arrived.
    Silent {
        timeout: Duration,
        sends: u32,
    },
}

impl fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoAnswer::Socket {
                source: Some(ip),
                error,
            } => write!(f, "cannot send from [remote] source {ip}: {error}"),
            NoAnswer::Socket {
                source: None,
                error,
            } => write!(f, "cannot open a UDP socket: {error}"),
            NoAnswer::Connect(e) => write!(f, "cannot reach it: {e}"),
            NoAnswer::Refused => {
                f.write_str("refused (ICMP port unreachable: is mfa-radiusd running?)")
            }
            NoAnswer::Send(e) => write!(f, "cannot send: {e}"),
            NoAnswer::Wait(e) => write!(f, "cannot wait for the reply: {e}"),
            NoAnswer::Receive(e) => write!(f, "receive error: {e}"),
            NoAnswer::NoValidReply { timeout, last } => {
                write!(
                    f,
                    "no valid reply within {timeout:?} (the last one: {last})"
                )
            }
            NoAnswer::Silent { timeout, sends } => {
                write!(f, "no answer within {timeout:?} ({sends} send(s))")
            }
        }
    }
}

impl std::error::Error for NoAnswer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NoAnswer::Socket { error: e, .. }
            | NoAnswer::Connect(e)
            | NoAnswer::Send(e)
            | NoAnswer::Wait(e)
            | NoAnswer::Receive(e) => Some(e),
            NoAnswer::NoValidReply { last, .. } => Some(last),
            NoAnswer::Refused | NoAnswer::Silent { .. } => None,
        }
    }
}

/// A datagram that is not the server's verified reply to our request: ignored.
#[derive(Debug)]
pub enum BadReply {
    Malformed(DecodeError),
    Identifier {
        got: u8,
        want: u8,
    },
    UnexpectedCode(Code),
    /// Another secret, or a forgery.
    Unverified(VerifyError),
}

impl fmt::Display for BadReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadReply::Malformed(e) => write!(f, "malformed: {e}"),
            BadReply::Identifier { got, want } => {
                write!(f, "identifier {got} does not match the request's {want}")
            }
            BadReply::UnexpectedCode(c) => write!(f, "unexpected {c}"),
            BadReply::Unverified(e) => write!(
                f,
                "{e} (is the shared secret the same on both sides? BlastRADIUS, CVE-2024-3596: replies must be signed)"
            ),
        }
    }
}

impl std::error::Error for BadReply {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BadReply::Malformed(e) => Some(e),
            BadReply::Unverified(e) => Some(e),
            BadReply::Identifier { .. } | BadReply::UnexpectedCode(_) => None,
        }
    }
}

/// Why a verified reply cannot be acted on: the login is denied rather than guessed.
#[derive(Debug)]
pub enum Unusable {
    /// Its attributes are not what this host understands.
    NotUnderstood(ReplyError),
    /// A Reject-Reason this release does not know as a refusal.
    UnknownReason(RejectReason),
    /// The code was answered with another Access-Challenge.
    ChallengedAgain,
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::NotUnderstood(e) => write!(f, "a reply this host does not understand: {e}"),
            Unusable::UnknownReason(r) => write!(
                f,
                "a reject for a reason this host does not know: {:?}{}",
                r.code,
                if r.locked_until.is_some() {
                    " with a lock's end"
                } else {
                    ""
                }
            ),
            Unusable::ChallengedAgain => {
                f.write_str("answered the code with another Access-Challenge")
            }
        }
    }
}

impl std::error::Error for Unusable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Unusable::NotUnderstood(e) => Some(e),
            Unusable::UnknownReason(_) | Unusable::ChallengedAgain => None,
        }
    }
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
            offline: r.offline,
            offline_queue: r.offline_queue.clone(),
            breakglass_file: r.breakglass_file.clone(),
            breakglass_pending: false,
            config: cfg.clone(),
            host: host_name(),
            name_known: false,
            awaiting_code: None,
            awaiting_push: None,
            push_sent: None,
            answered: None,
        }))
    }

    /// An Access-Request with a fresh identifier and Request Authenticator.
    fn request(
        &self,
        req: &Request,
        password: &[u8],
        state: Option<&[u8]>,
        push_request: bool,
    ) -> Result<Outgoing, BackendError> {
        let mut random = [0u8; 17];
        getrandom::fill(&mut random).map_err(BackendError::Random)?;
        let mut authenticator = [0u8; 16];
        authenticator.copy_from_slice(&random[..16]);
        let identifier = random[16];
        let service = req.service.to_string();
        let packet = HostRequest {
            identifier,
            authenticator,
            user: req.user.as_str(),
            password,
            rhost: req.client.ip(),
            host: &self.host,
            service: &service,
            state,
            name_known: self.name_known,
            push_capable: true,
            push_request,
        }
        .encode(&self.secret)
        .map_err(BackendError::Request)?;
        Ok(Outgoing {
            packet,
            authenticator,
            identifier,
        })
    }

    /// Sends `out` to `server` and waits up to `timeout` for a verified reply.
    fn exchange(
        &self,
        server: SocketAddr,
        out: &Outgoing,
        log: &dyn Log,
    ) -> Result<Verified, NoAnswer> {
        self.exchange_with(server, out, log, &|p| pam_host::read_reply(p))
    }

    /// [`Self::exchange`], the verified reply read by `read`.
    fn exchange_with<T>(
        &self,
        server: SocketAddr,
        out: &Outgoing,
        log: &dyn Log,
        read: &dyn Fn(&Packet<'_>) -> T,
    ) -> Result<T, NoAnswer> {
        let local = match self.source {
            Some(ip) => SocketAddr::new(ip, 0),
            None if server.is_ipv6() => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
            None => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        };
        // Connected, so the kernel hands us datagrams from this server's address only.
        let sock = UdpSocket::bind(local).map_err(|error| NoAnswer::Socket {
            source: self.source,
            error,
        })?;
        sock.connect(server).map_err(NoAnswer::Connect)?;
        let start = Instant::now();
        let sends = self.retries.saturating_add(1);
        let mut bad_reply: Option<BadReply> = None;
        let mut buf = vec![0u8; MAX_PACKET + 1];
        for i in 1..=sends {
            match sock.send(&out.packet) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    return Err(NoAnswer::Refused);
                }
                Err(e) => return Err(NoAnswer::Send(e)),
            }
            let until = start + self.timeout * i / sends;
            loop {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                sock.set_read_timeout(Some(left)).map_err(NoAnswer::Wait)?;
                match sock.recv(&mut buf) {
                    Ok(n) => match check(buf.get(..n).unwrap_or_default(), out, &self.secret, read)
                    {
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
                        return Err(NoAnswer::Refused);
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(NoAnswer::Receive(e)),
                }
            }
        }
        Err(match bad_reply {
            Some(last) => NoAnswer::NoValidReply {
                timeout: self.timeout,
                last,
            },
            None => NoAnswer::Silent {
                timeout: self.timeout,
                sends,
            },
        })
    }

    /// Round one: the servers in order, until one answers.
    fn round_one(&mut self, req: &Request, log: &dyn Log) -> Result<Decision, BackendError> {
        self.awaiting_code = None;
        self.breakglass_pending = false;
        self.awaiting_push = None;
        self.push_sent = None;
        self.answered = None;
        let out = self.request(req, b"", None, false)?;
        let mut why = Vec::new();
        let mut asked = Vec::new();
        for &server in &self.servers {
            match self.exchange(server, &out, log) {
                Ok(reply) => {
                    asked.push((server, Ok(())));
                    self.note_reachability(req.now, &asked, log);
                    if !why.is_empty() {
                        let skipped: Vec<String> =
                            why.iter().map(|(s, e)| format!("{s}: {e}")).collect();
                        log.error(&format!(
                            "answered by RADIUS server {server} after: {}",
                            skipped.join("; ")
                        ));
                    }
                    self.answered = Some(server);
                    return self.first_reply(server, reply);
                }
                Err(e) => {
                    log.error(&format!("RADIUS server {server}: {e}; trying the next one"));
                    asked.push((server, Err(e.to_string())));
                    why.push((server, e));
                }
            }
        }
        self.note_reachability(req.now, &asked, log);
        Err(BackendError::NoServer(why))
    }

    /// Keeps what this round saw of the servers for `mfactl status` on this host
    /// ([`mfa_core::reachability`]). A failure is only logged at debug: the file is a
    /// report, and a login never depends on it.
    fn note_reachability(
        &self,
        now: i64,
        asked: &[(SocketAddr, Result<(), String>)],
        log: &dyn Log,
    ) {
        let path = mfa_core::reachability::state_path(&self.offline_queue);
        if let Err(e) = crate::offline::record_reachability(&path, now, &self.servers, asked) {
            log.debug(&format!("cannot record the servers' reachability: {e}"));
        }
    }

    fn first_reply(
        &mut self,
        server: SocketAddr,
        reply: Verified,
    ) -> Result<Decision, BackendError> {
        match understood(server, reply)? {
            HostReply::Challenge {
                state,
                push:
                    Some(ChallengePush::Waiting {
                        number,
                        timeout_secs,
                    }),
                ..
            } => {
                self.awaiting_push = Some(AwaitingCode {
                    server,
                    state,
                    push_offered: false,
                });
                self.push_sent = Some(push_sent(number, timeout_secs));
                Ok(Decision::need_code())
            }
            HostReply::Challenge { state, push, .. } => {
                self.awaiting_code = Some(AwaitingCode {
                    server,
                    state,
                    push_offered: push == Some(ChallengePush::Offered),
                });
                Ok(Decision::need_code())
            }
            HostReply::Accept { message } => Ok(accepted(message)),
            HostReply::Reject { message, reason } => {
                rejected(server, message, reason, Reason::ServerRejected)
            }
        }
    }
}

impl Remote {
    /// No server answered round one. Under `offline = "trusted"` the core's policy decides
    /// under this host's `[policy]`, with no record ([`mfa_core::login::decide_offline`]):
    /// only what needs no code and no record lets in, and only once it is queued for the
    /// servers; everything else, and every code, stays `why` (PAM_AUTHINFO_UNAVAIL).
    fn offline(
        &mut self,
        req: &Request,
        why: BackendError,
        log: &dyn Log,
    ) -> Result<Decision, BackendError> {
        let user = req.user.as_str();
        let trusted = if self.offline == RemoteOffline::Trusted {
            let d = mfa_core::login::decide_offline(&self.config, req);
            if d.is_none() {
                log.error(&format!(
                    "user {user:?}: no RADIUS server answered and this host's [policy] does not let the login in without a code ([remote] offline = \"trusted\" never takes a code)"
                ));
            }
            d
        } else {
            None
        };
        let Some(d) = trusted else {
            // A file not there (not copied yet, or removed) offers nothing to type.
            if let Some(f) = self.breakglass_file.as_ref().filter(|f| f.exists()) {
                log.error(&format!(
                    "user {user:?}: {why}; asking for a break-glass code of {}",
                    f.display()
                ));
                self.breakglass_pending = true;
                return Ok(Decision::need_code());
            }
            return Err(why);
        };
        let id = match crate::offline::Entry::id() {
            Ok(id) => id,
            Err(e) => {
                log.error(&format!(
                    "user {user:?}: not let in offline: no random id for its queue line: {e}"
                ));
                return Err(why);
            }
        };
        let entry = crate::offline::Entry {
            time: req.now,
            user,
            service: &req.service.to_string(),
            client: req.client,
            reason: d.reason.code(),
            host: &self.host,
            id,
        };
        if let Err(e) = crate::offline::queue(&self.offline_queue, &entry) {
            log.error(&format!(
                "user {user:?}: not let in offline: the login cannot be queued for the servers in {}: {e}",
                self.offline_queue.display()
            ));
            return Err(why);
        }
        log.error(&format!(
            "OFFLINE ALLOW ({why}; [remote] offline = \"trusted\"): {entry}; queued in {} for the servers",
            self.offline_queue.display()
        ));
        Ok(d)
    }

    /// A code typed while no server answered round one: a break-glass code of this host, or
    /// nothing. One that matches is spent before the login is let in, logged, and queued for
    /// the servers like every offline allow (a login that cannot be queued is refused).
    fn breakglass(&mut self, req: &Request, code: &str, log: &dyn Log) -> Decision {
        let user = req.user.as_str();
        let Some(path) = &self.breakglass_file else {
            return Decision::deny(Reason::InternalError);
        };
        // Drawn before a code is spent, so a code never goes unrecorded for want of one.
        let id = match crate::offline::Entry::id() {
            Ok(id) => id,
            Err(e) => {
                log.error(&format!(
                    "user {user:?}: denied: no random id for the break-glass queue line: {e}"
                ));
                return Decision::deny(Reason::InternalError);
            }
        };
        match crate::offline::take_breakglass(path, code) {
            Ok(crate::offline::BreakGlass::NoMatch) => {
                log.error(&format!(
                    "user {user:?}: no RADIUS server answered and the code typed is no unused break-glass code of {}",
                    path.display()
                ));
                Decision::deny(Reason::WrongCode)
            }
            Err(e) => {
                log.error(&format!(
                    "user {user:?}: denied: cannot use the break-glass codes: {e}"
                ));
                Decision::deny(Reason::InternalError)
            }
            Ok(crate::offline::BreakGlass::Used { left }) => {
                let entry = crate::offline::Entry {
                    time: req.now,
                    user,
                    service: &req.service.to_string(),
                    client: req.client,
                    reason: mfa_core::offline_report::BREAK_GLASS,
                    host: &self.host,
                    id,
                };
                if let Err(e) = crate::offline::queue(&self.offline_queue, &entry) {
                    log.error(&format!(
                        "user {user:?}: denied: a break-glass code was spent but the login cannot be queued for the servers in {}: {e}",
                        self.offline_queue.display()
                    ));
                    return Decision::deny(Reason::InternalError);
                }
                log.error(&format!(
                    "OFFLINE ALLOW (BREAK-GLASS CODE USED; no RADIUS server answered): {entry}; {left} unused code(s) left in {}; queued in {} for the servers",
                    path.display(),
                    self.offline_queue.display()
                ));
                let mut d = Decision::allow(Reason::BackupCode);
                d.message = Some(format!(
                    "Let in with a break-glass code: no MFA server answered. {left} code(s) left on this host."
                ));
                d
            }
        }
    }

    /// A server answered round one: the logins this host let in while none did are
    /// reported to it, each forgotten only once the server acknowledged its id
    /// ([`crate::offline::report`]).
    fn report_offline(&self, log: &dyn Log) {
        let Some(server) = self.answered else {
            return;
        };
        crate::offline::report(&self.offline_queue, log, &mut |q| {
            self.report_one(server, q, log)
        });
    }

    /// One queued login, reported to `server`: `Ok` once it acknowledged the event.
    fn report_one(
        &self,
        server: SocketAddr,
        q: &crate::offline::Queued,
        log: &dyn Log,
    ) -> Result<(), crate::offline::NotReported> {
        use crate::offline::NotReported;
        let mut random = [0u8; 17];
        getrandom::fill(&mut random)
            .map_err(|e| NotReported::Refused(format!("no random authenticator: {e}")))?;
        let mut authenticator = [0u8; 16];
        authenticator.copy_from_slice(&random[..16]);
        let identifier = random[16];
        let event = OfflineEvent {
            id: q.id,
            // RFC 8044 time: a time before 1970 or past 2106 is not a host's clock.
            time: u32::try_from(q.time)
                .map_err(|_| NotReported::Refused(format!("time {} out of range", q.time)))?,
            reason: q.reason.clone(),
        };
        let packet = ReportRequest {
            identifier,
            authenticator,
            user: &q.user,
            rhost: q.client.ip(),
            host: &q.host,
            service: &q.service,
            event: &event,
        }
        .encode(&self.secret)
        .map_err(|e| NotReported::Refused(e.to_string()))?;
        let out = Outgoing {
            packet,
            authenticator,
            identifier,
        };
        // A refusal of this server's is a bare Access-Reject; anything else that does not
        // acknowledge (a Reject with a reason, an Accept, a Challenge) is a server that took
        // the report for a login: one of an older release, not to be sent the rest.
        let read = |p: &Packet<'_>| {
            read_report_ack(p, &q.id).map_err(|e| {
                let refusal = p.code == Code::ACCESS_REJECT
                    && p.attr(mfa_radius_proto::AttrType::VENDOR_SPECIFIC)
                        .is_none();
                (refusal, e)
            })
        };
        match self.exchange_with(server, &out, log, &read) {
            Ok(Ok(())) => Ok(()),
            Ok(Err((true, _))) => Err(NotReported::Refused(format!(
                "RADIUS server {server} refused it (its log says why)"
            ))),
            Ok(Err((false, e))) => Err(NotReported::Stop(format!("RADIUS server {server}: {e}"))),
            Err(e) => Err(NotReported::Stop(format!("RADIUS server {server}: {e}"))),
        }
    }

    /// A request to the server that sent the challenge it answers: another would not know
    /// its State.
    fn to_challenger(
        &self,
        server: SocketAddr,
        out: &Outgoing,
        log: &dyn Log,
    ) -> Result<Verified, BackendError> {
        self.exchange(server, out, log)
            .map_err(|why| BackendError::ChallengerSilent { server, why })
    }
}

/// A datagram believed only once it answers our request and carries the shared secret's
/// proof (Response Authenticator and Message-Authenticator, both required); then read as the
/// server's answer.
fn check<T>(
    datagram: &[u8],
    out: &Outgoing,
    secret: &[u8],
    read: &dyn Fn(&Packet<'_>) -> T,
) -> Result<T, BadReply> {
    let p = Packet::parse(datagram).map_err(BadReply::Malformed)?;
    if p.identifier != out.identifier {
        return Err(BadReply::Identifier {
            got: p.identifier,
            want: out.identifier,
        });
    }
    if ![
        Code::ACCESS_ACCEPT,
        Code::ACCESS_REJECT,
        Code::ACCESS_CHALLENGE,
    ]
    .contains(&p.code)
    {
        return Err(BadReply::UnexpectedCode(p.code));
    }
    p.verify_reply(secret, &out.authenticator)
        .map_err(BadReply::Unverified)?;
    Ok(read(&p))
}

/// The server's verified answer, where this host understands it.
fn understood(server: SocketAddr, reply: Verified) -> Result<HostReply, BackendError> {
    reply.map_err(|e| BackendError::Unusable {
        server,
        why: Unusable::NotUnderstood(e),
    })
}

/// An Access-Accept as a decision; its Reply-Message is what the user sees.
fn accepted(message: Option<String>) -> Decision {
    Decision {
        outcome: Outcome::Allow,
        reason: Reason::ServerAccepted,
        message,
        offer_enrolment: false,
        // The server's rule is in its own audit trail.
        rule: None,
    }
}

/// An Access-Reject as a decision, for the reason the server gave (read by the core's rule,
/// so a lock is a lock here too); `unsaid` where a server of an older release gave none. A
/// reason this host does not know denies as a failure.
fn rejected(
    server: SocketAddr,
    message: Option<String>,
    reason: Option<RejectReason>,
    unsaid: Reason,
) -> Result<Decision, BackendError> {
    let reason = match reason {
        None => unsaid,
        Some(r) => match Reason::refusal_from_code(&r.code, r.locked_until) {
            Some(reason) => reason,
            None => {
                return Err(BackendError::Unusable {
                    server,
                    why: Unusable::UnknownReason(r),
                });
            }
        },
    };
    let mut d = Decision::deny(reason);
    if message.is_some() {
        d.message = message;
    }
    Ok(d)
}

impl Backend for Remote {
    fn user_name(&self, raw: &str) -> Result<UserName, CoreError> {
        mfa_core::user_name(&self.config, raw)
    }

    /// The server decides whether the name may get a record (`Voucher::PamHost`), from what
    /// this host's NSS says about it, which every request carries.
    fn admit(&mut self, req: Request) -> Result<Request, BackendError> {
        self.name_known = mfa_core::login::system_knows(&req.user);
        Ok(req)
    }

    /// Where no server answers and `[remote] offline = "trusted"`, the host's own policy
    /// may let in without a code (see [`Remote::offline`]); a server that answers first
    /// hears nothing new, but the logins let in while it was away are reported.
    fn begin(&mut self, req: &Request, log: &dyn Log) -> Result<Decision, BackendError> {
        match self.round_one(req, log) {
            Err(e @ BackendError::NoServer(_)) => self.offline(req, e, log),
            Ok(d) => {
                self.report_offline(log);
                Ok(d)
            }
            Err(e) => Err(e),
        }
    }

    fn verify_code(
        &mut self,
        req: &Request,
        code: &str,
        log: &dyn Log,
    ) -> Result<Decision, BackendError> {
        if self.breakglass_pending {
            return Ok(self.breakglass(req, code, log));
        }
        // A second code at one login (try_first_pass after a refused token): the State was
        // spent, so start again.
        if self.awaiting_code.is_none() {
            let d = self.round_one(req, log)?;
            if d.outcome != Outcome::NeedCode {
                return Ok(d);
            }
        }
        let Some(p) = self.awaiting_code.take() else {
            return Err(CoreError::Bug("no challenge to answer").into());
        };
        let code = Zeroizing::new(code.as_bytes().to_vec());
        let out = self.request(req, &code, Some(&p.state), false)?;
        let reply = self.to_challenger(p.server, &out, log)?;
        match understood(p.server, reply)? {
            HostReply::Accept { message } => Ok(accepted(message)),
            // A server of an older release says no reason: refused, no more (no second
            // prompt under try_first_pass, which takes a wrong code only as wrong).
            HostReply::Reject { message, reason } => {
                rejected(p.server, message, reason, Reason::ServerRejected)
            }
            HostReply::Challenge { .. } => Err(BackendError::Unusable {
                server: p.server,
                why: Unusable::ChallengedAgain,
            }),
        }
    }

    /// Any code a key may have: the server's `[totp]` and stored keys decide what it takes,
    /// not this host's configuration.
    fn looks_like_code(&self, token: &str) -> bool {
        mfa_core::verify::looks_like_any_code(token)
    }

    fn totp(&self) -> Option<&TotpConfig> {
        // The host holds no secrets; the server's decisions never offer enrolment.
        None
    }

    fn self_enroll(
        &mut self,
        _req: &Request,
        _secret: &TotpSecret,
        _code: &str,
    ) -> Result<Decision, CoreError> {
        Err(CoreError::Bug(
            "self-enrolment is not offered in remote mode",
        ))
    }

    /// Where the server's challenge offered it (the server asked the core).
    fn push_offered(&mut self, _req: &Request) -> Result<bool, BackendError> {
        Ok(self.awaiting_code.as_ref().is_some_and(|a| a.push_offered))
    }

    /// Answers the challenge that offered the push with Push-Request: the server sends the
    /// push and says so with a push-waiting challenge, or says why not with a plain
    /// challenge for the code (its Reply-Message the reason), or decides.
    fn start_push(&mut self, req: &Request, log: &dyn Log) -> Result<PushStart, BackendError> {
        let Some(p) = self.awaiting_code.take().filter(|a| a.push_offered) else {
            return Err(CoreError::Bug("no challenge offered a push").into());
        };
        let out = self.request(req, b"", Some(&p.state), true)?;
        let reply = self.to_challenger(p.server, &out, log)?;
        match understood(p.server, reply)? {
            HostReply::Challenge {
                state,
                push:
                    Some(ChallengePush::Waiting {
                        number,
                        timeout_secs,
                    }),
                ..
            } => {
                self.awaiting_push = Some(AwaitingCode {
                    server: p.server,
                    state,
                    push_offered: false,
                });
                Ok(PushStart::Sent(push_sent(number, timeout_secs)))
            }
            HostReply::Challenge {
                state,
                push: None,
                message,
            } => {
                self.awaiting_code = Some(AwaitingCode {
                    server: p.server,
                    state,
                    push_offered: false,
                });
                Ok(PushStart::Refused {
                    message: message.unwrap_or_else(|| {
                        "No approval could be sent to your phone; enter your verification code."
                            .into()
                    }),
                })
            }
            HostReply::Challenge {
                push: Some(ChallengePush::Offered),
                ..
            } => Err(BackendError::Unusable {
                server: p.server,
                why: Unusable::ChallengedAgain,
            }),
            HostReply::Accept { message } => Ok(PushStart::Decided(accepted(message))),
            HostReply::Reject { message, reason } => Ok(PushStart::Decided(rejected(
                p.server,
                message,
                reason,
                Reason::ServerRejected,
            )?)),
        }
    }

    fn take_push_sent(&mut self) -> Option<PushSent> {
        self.push_sent.take()
    }

    /// Asks the server with the waiting push's State: another push-waiting challenge (a
    /// fresh State) while the phone has not decided, else the server's decision.
    fn poll_push(
        &mut self,
        req: &Request,
        log: &dyn Log,
    ) -> Result<Option<Decision>, BackendError> {
        let Some(p) = self.awaiting_push.take() else {
            return Err(CoreError::Bug("no push to wait for").into());
        };
        let out = self.request(req, b"", Some(&p.state), false)?;
        let reply = self.to_challenger(p.server, &out, log)?;
        match understood(p.server, reply)? {
            HostReply::Challenge {
                state,
                push: Some(ChallengePush::Waiting { .. }),
                ..
            } => {
                self.awaiting_push = Some(AwaitingCode {
                    server: p.server,
                    state,
                    push_offered: false,
                });
                Ok(None)
            }
            HostReply::Challenge { .. } => Err(BackendError::Unusable {
                server: p.server,
                why: Unusable::ChallengedAgain,
            }),
            HostReply::Accept { message } => Ok(Some(accepted(message))),
            HostReply::Reject { message, reason } => Ok(Some(rejected(
                p.server,
                message,
                reason,
                Reason::ServerRejected,
            )?)),
        }
    }

    fn push_poll_every(&self) -> Duration {
        PUSH_POLL_EVERY
    }
}

/// This host's name for NAS-Identifier. Read from the kernel's file rather than through
/// gethostname(2), which would be `unsafe` outside ffi.rs; Linux is the only target.
fn host_name() -> String {
    host_name_from(std::fs::read_to_string("/proc/sys/kernel/hostname"), || {
        std::fs::read_to_string("/etc/hostname")
    })
}

/// The kernel's name, else /etc/hostname's, made a label; `-` where neither is readable.
fn host_name_from(kernel: io::Result<String>, etc: impl FnOnce() -> io::Result<String>) -> String {
    let raw = kernel.or_else(|_| etc()).unwrap_or_default();
    pam_host::label(raw.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gone() -> io::Result<String> {
        Err(io::Error::from(ErrorKind::NotFound))
    }

    /// The name is the kernel's, trimmed; /etc/hostname only where the kernel's file cannot
    /// be read; `-` where neither can, never an empty NAS-Identifier.
    #[test]
    fn the_host_name_is_the_kernels() {
        assert_eq!(
            host_name_from(Ok("web1\n".into()), || Ok("etc".into())),
            "web1"
        );
        assert_eq!(host_name_from(gone(), || Ok(" etc1 \n".into())), "etc1");
        assert_eq!(host_name_from(gone(), gone), "-");
        assert_eq!(host_name_from(Ok("a b\n".into()), gone), "a_b");
        let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(host_name(), pam_host::label(kernel.trim()));
    }

    fn config(text: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("remote.secret");
        std::fs::write(&secret, "0123456789abcdef\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let path = dir.path().join("mfa.toml");
        std::fs::write(
            &path,
            format!(
                "[remote]\nservers = [\"127.0.0.1:1\"]\nsecret_file = \"remote.secret\"\n{text}"
            ),
        )
        .unwrap();
        let cfg = mfa_config::load(&path).unwrap();
        (dir, cfg)
    }

    /// What looks like a code is the core's rule for any key, not this host's `[totp]`,
    /// which says nothing about the server's keys (a 7-digit key there, `digits = 6` here);
    /// and names are made canonical by the core's rule under this host's `[users]`.
    #[test]
    fn remote_mode_takes_the_cores_rules_not_the_hosts_totp() {
        let (_dir, cfg) = config("[totp]\ndigits = 6\n[users]\ndomains = [\"CONTOSO\"]\n");
        let r = Remote::from_config(&cfg).unwrap().unwrap();
        assert!(r.looks_like_code("1234567"));
        assert!(r.looks_like_code("123 456"));
        assert!(!r.looks_like_code("hunter2"));
        assert!(r.totp().is_none());
        assert_eq!(r.user_name("CONTOSO\\Alice").unwrap().as_str(), "alice");
        assert!(r.user_name("OTHER\\bob").is_err());
    }

    /// A Reject's reason is read by the core's rule: a lock is a lock; a reason this host
    /// does not know denies as a failure, never as some other refusal.
    #[test]
    fn a_reject_says_why() {
        let server: SocketAddr = "127.0.0.1:1812".parse().unwrap();
        let r = |code: &str, until| {
            Some(RejectReason {
                code: code.into(),
                locked_until: until,
            })
        };
        let d = rejected(
            server,
            None,
            r("locked", Some(1_800_000_000)),
            Reason::ServerRejected,
        )
        .unwrap();
        assert!(d.is_locked(), "{d:?}");
        assert!(d.message.unwrap().contains("locked"));
        let d = rejected(
            server,
            Some("Wrong.".into()),
            r("wrong_code", None),
            Reason::ServerRejected,
        )
        .unwrap();
        assert_eq!(
            (d.reason, d.message.as_deref()),
            (Reason::WrongCode, Some("Wrong."))
        );
        let d = rejected(server, None, None, Reason::ServerRejected).unwrap();
        assert_eq!(d.reason, Reason::ServerRejected);
        for bad in [
            r("trusted_network", None),
            r("locked", None),
            r("wrong_code", Some(1)),
        ] {
            assert!(matches!(
                rejected(server, None, bad, Reason::ServerRejected),
                Err(BackendError::Unusable {
                    why: Unusable::UnknownReason(_),
                    ..
                })
            ));
        }
    }
}
