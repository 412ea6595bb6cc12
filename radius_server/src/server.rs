//! The daemon: UDP sockets, the per-packet admission checks, the three modes, reload and
//! shutdown. Policy is not decided here: every question goes to the core's login service.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use mfa_config::{ClientSettings, Config, ConfigError, FirstFactor, RadiusMode};
use mfa_core::audit::Syslog;
use mfa_core::login::Login;
use mfa_core::policy::{Decision, Outcome, Reason};
use mfa_core::verify::split_appended;
use mfa_core::{Attempt, ClientAddr, Core, CoreError, NameCheck, OpenMode, Request, UserName};
use mfa_radius_proto::{AttrType, Builder, Code, Packet, VerifyError, unhide_password};
use tokio::net::UdpSocket;
use zeroize::Zeroizing;

use crate::attrs::{client_addr, service_of};
use crate::challenge::{Asker, Challenges, Pending, Redeem};
use crate::dedup::{self, Seen};
use crate::lanes::{Lane, LaneError};
use crate::logbuf::LogBuffer;
use crate::metrics::{ClientLabels, DecisionLabels, Metrics, StoreMetrics};
use crate::radsec::{CertId, Tls};
use crate::stats::{Drop, Stats};
use crate::store::{Writer, WriterError};

/// How long a reply stays in the duplicate cache at least (at most twice that): longer than
/// any gateway's retry schedule.
const DEDUP_TTL: Duration = Duration::from_secs(30);
const DEDUP_CAPACITY: usize = 65_536;
/// Read-only store calls (the policy before a password check) at once. Writes all go through
/// the one batching writer (`store::Writer`): a second writer in this process would only wait
/// in SQLite's busy handler (1 ms, 2 ms, 5 ms...).
const STORE_READERS: usize = 2;
/// Requests waiting for a reader, or for the writer.
const STORE_QUEUE: usize = 4096;
/// Requests being processed at once (waiting for a lane, or sleeping a PAM failure delay);
/// past this, new ones are dropped and the gateway retransmits.
const MAX_INFLIGHT: usize = 16_384;
/// Requests waiting for a PAM worker, per worker.
const PAM_QUEUE_PER_WORKER: usize = 16;

/// Command-line options that are not configuration.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub config_path: PathBuf,
    /// Read PAM service files from here instead of /etc/pam.d (`pam_start_confdir`).
    pub pam_confdir: Option<PathBuf>,
}

/// A RADIUS client (NAS) from the configuration, with its secret loaded.
pub(crate) struct Nas {
    pub(crate) name: String,
    pub(crate) net: IpNet,
    pub(crate) secret: Zeroizing<Vec<u8>>,
    /// RadSec clients: the certificate that identifies it. Such a client is matched over TLS
    /// only, never by address alone over UDP.
    pub(crate) cert: Option<CertId>,
    /// Its mode, first factor, client IP attribute and Message-Authenticator rule: its own
    /// where its `[[radius.clients]]` entry sets them, `[radius]`'s otherwise.
    pub(crate) settings: ClientSettings,
    /// Its entry covers more than one host (a CIDR, or one secret per host from
    /// `secrets_dir`): the hosts are told apart by their source address, never by the name
    /// a host gives itself.
    pub(crate) several_hosts: bool,
}

impl Nas {
    /// Who a request from `from` is, for the challenge table's shares and bindings.
    pub(crate) fn asker(&self, from: IpAddr) -> Asker {
        Asker {
            client: self.name.clone(),
            host: self.several_hosts.then(|| canonical_ip(from)),
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Where a request's reply goes: out of the UDP socket it came in on, or onto the RadSec
/// connection it came in on (its writer task).
#[derive(Clone)]
pub(crate) enum ReplyTo {
    Udp(Arc<UdpSocket>),
    Tls(tokio::sync::mpsc::Sender<Arc<[u8]>>),
}

impl ReplyTo {
    /// Sends without waiting (a cached reply, a Status-Server answer); lost when the socket
    /// or connection is full, as a datagram may be.
    fn try_send(&self, reply: Arc<[u8]>, to: SocketAddr) {
        match self {
            ReplyTo::Udp(sock) => {
                let _ = sock.try_send_to(&reply, to);
            }
            ReplyTo::Tls(tx) => {
                let _ = tx.try_send(reply);
            }
        }
    }

    async fn send(&self, reply: Arc<[u8]>, to: SocketAddr) {
        match self {
            ReplyTo::Udp(sock) => {
                let _ = sock.send_to(&reply, to).await;
            }
            // Closed connection: the reply has nowhere to go.
            ReplyTo::Tls(tx) => {
                let _ = tx.send(reply).await;
            }
        }
    }
}

/// One generation of configuration; SIGHUP builds a new one and swaps it in whole, so a
/// request sees either the old or the new configuration, never a mix.
pub struct Runtime {
    config: Arc<Config>,
    core: Arc<Core>,
    pub(crate) clients: Vec<Arc<Nas>>,
    /// The RadSec TLS configuration, when `[radius.radsec]` is set.
    pub(crate) radsec: Option<Arc<Tls>>,
    pam: Arc<Lane>,
    writer: Writer,
    syslog: Option<Syslog>,
    /// What the configuration allows but should not (`Config::warnings`), logged when it is
    /// put in force.
    warnings: Vec<String>,
}

/// Why a configuration could not be put in force.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    Config(ConfigError),
    /// A client's shared secret could not be read; the text names the client and file.
    Secret(mfa_config::SecretFileError),
    NoClients {
        path: PathBuf,
    },
    Store(CoreError),
    Thread(std::io::Error),
    /// `[radius.radsec]`: a file or the TLS configuration built from it; the text names the
    /// file and key.
    Radsec(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Config(e) => write!(f, "{e}"),
            LoadError::Secret(e) => write!(f, "{e}"),
            LoadError::NoClients { path } => write!(
                f,
                "{}: radius.clients: no RADIUS client is configured; every request would be dropped",
                path.display()
            ),
            LoadError::Store(e) => write!(f, "cannot open the store: {e}"),
            LoadError::Thread(e) => write!(f, "cannot start the store writer thread: {e}"),
            LoadError::Radsec(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Config(e) => Some(e),
            LoadError::Store(e) => Some(e),
            LoadError::Thread(e) => Some(e),
            LoadError::Secret(_) | LoadError::NoClients { .. } | LoadError::Radsec(_) => None,
        }
    }
}

impl Runtime {
    /// Loads and checks everything a configuration needs (file, store, every secret); any
    /// problem is an error and nothing is half-applied.
    pub fn load(path: &Path, metrics: &StoreMetrics) -> Result<Self, LoadError> {
        let config = mfa_config::load(path).map_err(LoadError::Config)?;
        let mut clients = Vec::new();
        for c in &config.radius.clients {
            let several_hosts = c.address.0.prefix_len() < c.address.0.max_prefix_len();
            let settings = config.radius.settings_for(c);
            if c.secrets_dir.is_some() {
                // One client per host, each good from its own address only.
                for (ip, secret) in c.load_host_secrets().map_err(LoadError::Secret)? {
                    clients.push(Arc::new(Nas {
                        name: c.name.clone(),
                        net: IpNet::from(ip),
                        secret,
                        cert: None,
                        settings,
                        several_hosts,
                    }));
                }
                continue;
            }
            let secret = c.load_secret().map_err(LoadError::Secret)?;
            clients.push(Arc::new(Nas {
                name: c.name.clone(),
                net: c.address.0,
                secret,
                cert: CertId::of(c),
                settings,
                several_hosts,
            }));
        }
        let radsec = Tls::load(&config).map_err(LoadError::Radsec)?.map(Arc::new);
        if clients.is_empty() {
            return Err(LoadError::NoClients {
                path: path.to_path_buf(),
            });
        }
        let warnings = config.warnings().iter().map(ToString::to_string).collect();
        let config = Arc::new(config);
        // Every start (and reload) checks the stored names against `[users]`: a store with
        // two names of one user is refused with the names and the fix.
        let core = mfa_store_open::open_core(
            config.clone(),
            OpenMode::Create,
            "mfa-radiusd",
            NameCheck::Always,
        )
        .map_err(LoadError::Store)?;
        let r = &config.radius;
        let pam = Arc::new(Lane::new(
            "PAM",
            r.pam_workers,
            r.pam_workers.saturating_mul(PAM_QUEUE_PER_WORKER),
        ));
        let syslog = r.syslog.then(|| Syslog::open("mfa-radiusd"));
        let core = Arc::new(core);
        let writer =
            Writer::start(core.clone(), STORE_QUEUE, metrics.clone()).map_err(LoadError::Thread)?;
        let mut rt = Self {
            config,
            core,
            clients,
            radsec,
            pam,
            writer,
            syslog,
            warnings,
        };
        let open = rt.message_authenticator_warnings();
        rt.warnings.extend(open);
        Ok(rt)
    }

    /// See [`Config::warnings`], and every client that may send requests without
    /// Message-Authenticator.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What an administrator must hear about this configuration when it comes into force:
    /// every client that may send requests without Message-Authenticator.
    fn message_authenticator_warnings(&self) -> Vec<String> {
        // Per entry: one with `secrets_dir` is a client per host here.
        self.config
            .radius
            .clients
            .iter()
            .map(|e| (e, self.config.radius.settings_for(e)))
            .filter(|(_, settings)| !settings.require_message_authenticator)
            .map(|(c, _)| {
                let own = c.require_message_authenticator.is_some();
                format!(
                    "client {:?} ({}): requests without Message-Authenticator are accepted ({}); this client is open to BlastRADIUS (CVE-2024-3596)",
                    c.name,
                    c.address.0,
                    if own {
                        "require_message_authenticator = false on the client"
                    } else {
                        "inherited from [radius] require_message_authenticator = false"
                    }
                )
            })
            .collect()
    }

    /// The most specific UDP client network containing `ip` (RadSec clients are identified
    /// by their certificate, on their connection).
    fn client_for(&self, ip: IpAddr) -> Option<&Arc<Nas>> {
        let ip = canonical_ip(ip);
        self.clients
            .iter()
            .filter(|c| c.cert.is_none() && c.net.contains(&ip))
            .max_by_key(|c| c.net.prefix_len())
    }
}

/// State shared by every task, across reloads.
pub struct Shared {
    runtime: RwLock<Arc<Runtime>>,
    dedup: Mutex<dedup::Cache>,
    challenges: Mutex<Challenges>,
    readers: Lane,
    pub stats: Stats,
    /// The labelled counters and histograms of `[radius] metrics_listen`.
    pub metrics: Metrics,
    /// The stderr log; `run` flushes it on a timer and at exit.
    pub log: LogBuffer,
    inflight: AtomicUsize,
    options: Options,
}

/// One request being processed. Dropped on every path, a panic included: the in-flight count
/// goes down, and a request that got no answer is forgotten by the duplicate cache so the
/// gateway's retransmission is evaluated instead of ignored.
struct InFlight {
    shared: Arc<Shared>,
    key: Option<dedup::Key>,
}

impl InFlight {
    fn finish(&mut self, reply: Option<Arc<[u8]>>) {
        if let Some(key) = self.key.take() {
            relock(&self.shared.dedup).finish(key, reply);
        }
    }
}

impl std::ops::Drop for InFlight {
    fn drop(&mut self) {
        self.finish(None);
        self.shared.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What to answer and what to log.
struct Answer {
    code: Code,
    message: Option<String>,
    state: Option<[u8; 16]>,
    /// PAM's failure delay, slept asynchronously before a Reject.
    delay: Duration,
    reason: Reason,
    /// The client address the decision used, when not the request's own (a challenge answer
    /// uses the first round's).
    client: Option<ClientAddr>,
}

impl Answer {
    fn from_decision(d: &Decision) -> Self {
        Answer {
            code: if d.outcome == Outcome::Allow {
                Code::ACCESS_ACCEPT
            } else {
                Code::ACCESS_REJECT
            },
            message: d.message.clone(),
            state: None,
            delay: Duration::ZERO,
            reason: d.reason.clone(),
            client: None,
        }
    }

    /// A Reject with no message: for refusals before the policy, which tell a probing
    /// client nothing.
    fn reject(reason: Reason) -> Self {
        Answer {
            code: Code::ACCESS_REJECT,
            message: None,
            state: None,
            delay: Duration::ZERO,
            reason,
            client: None,
        }
    }
}

/// Why processing stopped without a policy answer.
enum Fail {
    /// Internal error: reject (fail closed) and log the cause.
    Internal(String),
    /// A lane is full: drop and let the gateway retransmit.
    Overloaded,
}

impl From<WriterError> for Fail {
    fn from(e: WriterError) -> Self {
        match e {
            WriterError::Overloaded => Fail::Overloaded,
            e => Fail::Internal(e.to_string()),
        }
    }
}

impl From<LaneError> for Fail {
    fn from(e: LaneError) -> Self {
        match e {
            LaneError::Overloaded(_) => Fail::Overloaded,
            LaneError::Failed(_) => Fail::Internal(e.to_string()),
        }
    }
}

impl From<CoreError> for Fail {
    fn from(e: CoreError) -> Self {
        Fail::Internal(e.to_string())
    }
}

pub fn mode_name(m: RadiusMode) -> &'static str {
    match m {
        RadiusMode::Append => "append",
        RadiusMode::Challenge => "challenge",
        RadiusMode::CodeOnly => "code-only",
    }
}

/// Locks a mutex even if a thread panicked while holding it: the tables behind these locks
/// are only ever updated by single map operations, so they stay consistent, and a daemon that
/// stopped answering after one panic would be worse.
fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A quoted, escaped, bounded rendering of an untrusted name for the log.
fn log_name(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let short: String = s.chars().take(64).collect();
    format!("{short:?}")
}

impl Shared {
    pub fn new(runtime: Runtime, options: Options, metrics: Metrics) -> Arc<Self> {
        // Taken at start: a reload keeps the table and its size.
        let challenges = Challenges::new(runtime.config.radius.max_pending_challenges);
        Arc::new(Self {
            runtime: RwLock::new(Arc::new(runtime)),
            dedup: Mutex::new(dedup::Cache::new(DEDUP_TTL, DEDUP_CAPACITY)),
            challenges: Mutex::new(challenges),
            readers: Lane::new("store reader", STORE_READERS, STORE_QUEUE),
            stats: Stats::default(),
            metrics,
            log: LogBuffer::default(),
            inflight: AtomicUsize::new(0),
            options,
        })
    }

    /// The configuration generation in force now.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn log(&self, rt: &Runtime, line: &str) {
        self.log.line(line);
        if let Some(s) = &rt.syslog {
            s.info(line);
        }
    }

    pub fn warn(&self, line: &str) {
        self.log.warning(line);
        if let Some(s) = &self.runtime().syslog {
            s.warning(line);
        }
    }

    pub(crate) fn dropped(&self, why: Drop, from: SocketAddr, detail: &dyn std::fmt::Display) {
        if self.stats.drop(why) {
            self.warn(&format!(
                "dropped a packet from {from}: {detail} ({} {} so far; further ones are counted, not logged, for a minute)",
                self.stats.dropped(why),
                why.name()
            ));
        }
    }

    /// SIGHUP: the new configuration replaces the old only if all of it loads.
    pub async fn reload(self: &Arc<Self>) {
        let path = self.options.config_path.clone();
        let store_metrics = self.metrics.store.clone();
        let loaded =
            tokio::task::spawn_blocking(move || Runtime::load(&path, &store_metrics)).await;
        match loaded {
            Ok(Ok(new)) => {
                if self.runtime().config.radius.listen != new.config.radius.listen {
                    self.warn(
                        "radius.listen changed: the new addresses take effect at the next restart",
                    );
                }
                let radsec_listen =
                    |rt: &Runtime| rt.config.radius.radsec.as_ref().map(|t| t.listen.clone());
                if radsec_listen(&self.runtime()) != radsec_listen(&new) {
                    self.warn(
                        "radius.radsec.listen changed: the new addresses take effect at the next restart",
                    );
                }
                let summary = format!(
                    "configuration reloaded from {}: mode {}, {} client(s)",
                    self.options.config_path.display(),
                    mode_name(new.config.radius.mode),
                    new.config.radius.clients.len()
                );
                *self.runtime.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(new);
                self.log(&self.runtime(), &summary);
                for w in self.runtime().warnings() {
                    self.warn(w);
                }
            }
            Ok(Err(e)) => self.warn(&format!(
                "reload failed; the previous configuration stays in force: {e}"
            )),
            Err(e) => self.warn(&format!(
                "reload failed; the previous configuration stays in force: {e}"
            )),
        }
    }

    /// A UDP datagram: the client by its source address, then [`Self::admit`].
    pub fn on_datagram(self: &Arc<Self>, sock: &Arc<UdpSocket>, from: SocketAddr, buf: &[u8]) {
        Stats::bump(&self.stats.received);
        let rt = self.runtime();
        let pkt = match Packet::parse(buf) {
            Ok(p) => p,
            Err(e) => return self.dropped(Drop::Malformed, from, &e),
        };
        let Some(nas) = rt.client_for(from.ip()).cloned() else {
            return self.dropped(Drop::UnknownClient, from, &"not a configured RADIUS client");
        };
        self.admit(rt, &nas, pkt, from, 0, ReplyTo::Udp(sock.clone()));
    }

    /// One packet framed off a RadSec connection whose client `nas` was identified by its
    /// certificate and address when the connection was accepted; `conn` numbers the
    /// connection, so duplicate detection is per connection (RFC 6613, which RFC 6614 builds on).
    pub(crate) fn on_tls_packet(
        self: &Arc<Self>,
        nas: &Arc<Nas>,
        conn: u64,
        from: SocketAddr,
        buf: &[u8],
        reply: ReplyTo,
    ) {
        Stats::bump(&self.stats.received);
        let rt = self.runtime();
        let pkt = match Packet::parse(buf) {
            Ok(p) => p,
            Err(e) => return self.dropped(Drop::Malformed, from, &e),
        };
        self.admit(rt, nas, pkt, from, conn, reply);
    }

    /// The synchronous checks on every request, whatever its transport, cheap enough for the
    /// receive loop: code, Message-Authenticator, duplicate. Spawns the rest; the reply goes
    /// to `reply_to`.
    fn admit(
        self: &Arc<Self>,
        rt: Arc<Runtime>,
        nas: &Arc<Nas>,
        pkt: Packet<'_>,
        from: SocketAddr,
        conn: u64,
        reply_to: ReplyTo,
    ) {
        let admitted = Instant::now();
        self.metrics
            .requests
            .get_or_create(&ClientLabels {
                client: nas.name.clone(),
            })
            .inc();
        if pkt.code != Code::ACCESS_REQUEST && pkt.code != Code::STATUS_SERVER {
            return self.dropped(Drop::UnsupportedCode, from, &pkt.code);
        }
        match pkt.verify_request_message_authenticator(&nas.secret) {
            Ok(()) => {}
            Err(VerifyError::MissingMessageAuthenticator) => {
                if pkt.code == Code::STATUS_SERVER
                    || nas.settings.require_message_authenticator
                    || pkt.attr(AttrType::EAP_MESSAGE).is_some()
                {
                    return self.dropped(
                        Drop::MissingMessageAuthenticator,
                        from,
                        &format_args!(
                            "{} from client {:?} without Message-Authenticator (required: BlastRADIUS, CVE-2024-3596)",
                            pkt.code.name(),
                            nas.name
                        ),
                    );
                }
            }
            // Wrong, or any failure added later: fail closed.
            Err(_) => {
                return self.dropped(
                    Drop::BadAuthenticator,
                    from,
                    &format_args!(
                        "wrong Message-Authenticator (client {:?}: is the shared secret the same on both sides?)",
                        nas.name
                    ),
                );
            }
        }
        if pkt.code == Code::STATUS_SERVER {
            // No side effects, so no duplicate cache: answering again is harmless, and a
            // health-check flood must not push real replies out of the cache.
            Stats::bump(&self.stats.status_server);
            if let Ok(r) = Builder::reply(Code::ACCESS_ACCEPT, &pkt)
                .encode_reply(&nas.secret, &pkt.authenticator)
            {
                reply_to.try_send(Arc::from(r), from);
            }
            return;
        }
        if self.inflight.load(Ordering::Acquire) >= MAX_INFLIGHT {
            return self.dropped(Drop::Overloaded, from, &"too many requests in progress");
        }
        let key = dedup::Key::new(from, pkt.identifier, pkt.authenticator).on_connection(conn);
        let seen = relock(&self.dedup).begin(key, Instant::now());
        match seen {
            Seen::New => {}
            Seen::InProgress => return self.dropped(Drop::Duplicate, from, &"still processing"),
            Seen::Answered(reply) => {
                self.stats.drop(Drop::Duplicate);
                Stats::bump(&self.stats.resent);
                reply_to.try_send(reply, from);
                return;
            }
        }
        let datagram = pkt.raw().to_vec();
        let nas = nas.clone();
        let this = self.clone();
        self.inflight.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(async move {
            let mut guard = InFlight {
                shared: this.clone(),
                key: Some(key),
            };
            let reply = this.process(rt, &nas, &datagram, from).await;
            let reply: Option<Arc<[u8]>> = reply.map(Arc::from);
            if reply.is_some() {
                this.metrics
                    .latency_seconds
                    .observe(admitted.elapsed().as_secs_f64());
            }
            guard.finish(reply.clone());
            if let Some(r) = reply {
                reply_to.send(r, from).await;
            }
        });
    }

    /// Everything after admission. `None`: no reply (overload; the gateway retries).
    async fn process(
        self: &Arc<Self>,
        rt: Arc<Runtime>,
        nas: &Nas,
        datagram: &[u8],
        from: SocketAddr,
    ) -> Option<Vec<u8>> {
        let pkt = Packet::parse(datagram).ok()?;
        let user_raw = pkt.attr(AttrType::USER_NAME).unwrap_or_default();
        let addr = client_addr(nas.settings.client_ip_attribute, &pkt);
        let answer = match self.access_request(&rt, nas, &pkt, addr, from.ip()).await {
            Ok(a) => a,
            Err(Fail::Overloaded) => {
                self.dropped(Drop::Overloaded, from, &"worker queue full");
                return None;
            }
            Err(Fail::Internal(e)) => {
                self.warn(&format!(
                    "internal error for user {} from client {:?}; rejecting: {e}",
                    log_name(user_raw),
                    nas.name
                ));
                Answer::reject(Reason::InternalError)
            }
        };
        let (result, counter) = match answer.code {
            Code::ACCESS_ACCEPT => ("accept", &self.stats.accepted),
            Code::ACCESS_CHALLENGE => ("challenge", &self.stats.challenged),
            _ => ("reject", &self.stats.rejected),
        };
        Stats::bump(counter);
        self.metrics
            .decisions
            .get_or_create(&DecisionLabels {
                outcome: result.to_string(),
                reason: answer.reason.code().to_string(),
            })
            .inc();
        self.log(
            &rt,
            &format!(
                "user={} client={:?} client_ip={} decision={result} reason={}",
                log_name(user_raw),
                nas.name,
                answer.client.unwrap_or(addr),
                answer.reason.code()
            ),
        );
        if !answer.delay.is_zero() {
            tokio::time::sleep(answer.delay).await;
        }
        let mut b = Builder::reply(answer.code, &pkt);
        if let Some(state) = &answer.state {
            b.add(AttrType::STATE, state).ok()?;
        }
        if let Some(m) = &answer.message {
            b.add_split(AttrType::REPLY_MESSAGE, m.as_bytes()).ok()?;
        }
        match b.encode_reply(&nas.secret, &pkt.authenticator) {
            Ok(r) => Some(r),
            Err(e) => {
                self.warn(&format!("cannot encode the reply: {e}"));
                // Fail closed: a bare Reject always fits.
                Builder::reply(Code::ACCESS_REJECT, &pkt)
                    .encode_reply(&nas.secret, &pkt.authenticator)
                    .ok()
            }
        }
    }

    /// A read-only store call (the policy before the password check), on the reader pool.
    async fn read<R, F>(&self, rt: &Runtime, f: F) -> Result<R, Fail>
    where
        F: FnOnce(Login<'_>) -> Result<R, CoreError> + Send + 'static,
        R: Send + 'static,
    {
        let core = rt.core.clone();
        Ok(self.readers.run(move || f(core.login())).await??)
    }

    /// The policy before the password check, and the groups it used (kept for the final
    /// decision, so a slow directory is asked once per request).
    async fn look(&self, rt: &Runtime, req: &Request) -> Result<(Decision, Vec<String>), Fail> {
        let r2 = req.clone();
        self.read(rt, move |a| {
            let groups = a.groups_for(&r2.user);
            let d = a.decide_with_groups(&r2, &groups)?;
            Ok((d, groups))
        })
        .await
    }

    /// The final decision for a login, batched with others into one store commit. `code`:
    /// what the user typed where a code is expected (`Some("")` when nothing was typed, so
    /// the core answers `missing_code`).
    ///
    /// `groups`: looked up with an earlier decision for this request, or `None` to look
    /// them up here.
    async fn finish(
        &self,
        rt: &Runtime,
        req: Request,
        code: Option<Zeroizing<String>>,
        groups: Option<Vec<String>>,
    ) -> Result<Decision, Fail> {
        let groups = match groups {
            Some(g) => g,
            None if rt.config.policy.exempt_groups.is_empty() => Vec::new(),
            // NSS may be slow (LDAP): look the groups up before taking a place in a batch.
            None => {
                let user = req.user.clone();
                self.read(rt, move |a| Ok(a.groups_for(&user))).await?
            }
        };
        // Every request that reaches a final decision passed a first factor here (PAM) or at
        // the gateway (code-only mode), so the name may get a record.
        let req = req.vouched(true);
        Ok(rt.writer.attempt(Attempt { req, code, groups }).await?)
    }

    async fn first_factor(
        &self,
        rt: &Runtime,
        user: &UserName,
        password: Zeroizing<Vec<u8>>,
        addr: ClientAddr,
    ) -> Result<mfa_pam_client::PamCheck, Fail> {
        let service = rt.config.radius.pam_service.clone();
        let user = user.to_string();
        let confdir = self.options.pam_confdir.clone();
        let rhost = addr.ip().map(|i| i.to_string());
        Ok(rt
            .pam
            .run(move || {
                mfa_pam_client::check(&mfa_pam_client::PamRequest {
                    service: &service,
                    user: &user,
                    password: &password,
                    rhost: rhost.as_deref(),
                    confdir: confdir.as_deref(),
                })
            })
            .await?)
    }

    /// A refused password: audited in the core, answered after PAM's delay.
    async fn wrong_password(
        &self,
        rt: &Runtime,
        req: Request,
        delay: Duration,
    ) -> Result<Answer, Fail> {
        let d = rt.writer.call(move |l| l.deny_first_factor(&req)).await?;
        let mut ans = Answer::from_decision(&d);
        ans.delay = delay;
        Ok(ans)
    }

    /// A request refused before the policy could run: audited in the core like any
    /// decision, then rejected.
    async fn refuse(&self, rt: &Runtime, req: Request, reason: Reason) -> Result<Answer, Fail> {
        let r = reason.clone();
        rt.writer.call(move |l| l.deny_request(&req, r)).await?;
        Ok(Answer::reject(reason))
    }

    async fn access_request(
        &self,
        rt: &Arc<Runtime>,
        nas: &Nas,
        pkt: &Packet<'_>,
        addr: ClientAddr,
        from: IpAddr,
    ) -> Result<Answer, Fail> {
        let r = &nas.settings;
        let asker = nas.asker(from);
        let raw = match (
            pkt.count(AttrType::USER_NAME),
            pkt.attr(AttrType::USER_NAME),
        ) {
            (1, Some(u)) => match std::str::from_utf8(u) {
                Ok(u) => u,
                Err(_) => return Ok(Answer::reject(Reason::InvalidUserName)),
            },
            _ => return Ok(Answer::reject(Reason::InvalidUserName)),
        };
        // Where the name is checked against the stored ones (look-alikes, under `[users]
        // unicode = "allow"`), on a store reader rather than on this thread.
        // A refused name is rejected; a store that cannot be read is a failure like any.
        let named = if rt.core.user_name_reads_store() {
            let raw = raw.to_string();
            self.read(rt, move |l| match l.user_name(&raw) {
                Err(CoreError::BadUserName { .. }) => Ok(None),
                r => r.map(Some),
            })
            .await?
        } else {
            rt.core.user_name(raw).ok()
        };
        let Some(user) = named else {
            return Ok(Answer::reject(Reason::InvalidUserName));
        };
        // The client by name and mode; a PAM host (remote mode) as the PAM login it sends.
        let req = Request::new(&user, addr, service_of(&asker, r, pkt));
        if pkt.attr(AttrType::CHAP_PASSWORD).is_some() || pkt.attr(AttrType::EAP_MESSAGE).is_some()
        {
            // CHAP and EAP cannot be checked through PAM nor carry a TOTP code.
            return self.refuse(rt, req, Reason::UnsupportedMethod).await;
        }
        let password = match pkt.attr(AttrType::USER_PASSWORD) {
            None => None,
            Some(h) => match unhide_password(h, &nas.secret, &pkt.authenticator) {
                Ok(p) => Some(p),
                Err(_) => return self.refuse(rt, req, Reason::MalformedPassword).await,
            },
        };
        match r.mode {
            RadiusMode::CodeOnly => self.code_only(rt, req, password).await,
            RadiusMode::Append => self.append(rt, nas, req, password).await,
            RadiusMode::Challenge => match pkt.attr(AttrType::STATE) {
                Some(state) => {
                    self.challenge_answer(rt, &asker, req, state, password)
                        .await
                }
                None => self.challenge_start(rt, nas, &asker, req, password).await,
            },
        }
    }

    /// code-only: the gateway checked the password; User-Password is the code (or absent).
    async fn code_only(
        &self,
        rt: &Runtime,
        req: Request,
        code: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Answer, Fail> {
        let code = Zeroizing::new(
            code.map_or_else(String::new, |c| String::from_utf8_lossy(&c).into_owned()),
        );
        let d = self.finish(rt, req, Some(code), None).await?;
        Ok(Answer::from_decision(&d))
    }

    fn require_pam(nas: &Nas) -> Result<(), Fail> {
        if nas.settings.first_factor == FirstFactor::Pam {
            Ok(())
        } else {
            // Config validation refuses this; never let a code alone in where a password was
            // expected.
            Err(Fail::Internal(
                "first_factor = \"none\" outside code-only mode".into(),
            ))
        }
    }

    /// append: User-Password is password + code. One PAM attempt, always before anything is
    /// recorded or said about the user: a wrong password gets the same answer (and PAM's
    /// delay) whoever the name belongs to, and leaves the code unspent. The read-only policy
    /// look only says where the password ends: a user who must type a code (or is locked)
    /// sent password + code, anyone else only a password.
    async fn append(
        &self,
        rt: &Runtime,
        nas: &Nas,
        req: Request,
        whole: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Answer, Fail> {
        Self::require_pam(nas)?;
        let Some(whole) = whole else {
            return self.wrong_password(rt, req, Duration::ZERO).await;
        };
        let (d, groups) = self.look(rt, &req).await?;
        let expects_code = d.outcome == Outcome::NeedCode || d.is_locked();
        let t = &rt.config;
        let (password, code) = if expects_code {
            match split_appended(&whole, t.totp.digits, t.radius.append_delimiter.as_deref()) {
                Some((password, code)) => (password, Some(code)),
                // No code at the end: the whole is the password; past it, the core answers
                // `missing_code`.
                None => (whole, Some(Zeroizing::default())),
            }
        } else {
            (whole, None)
        };
        let pam = self
            .first_factor(rt, &req.user, password, req.client)
            .await?;
        if !pam.ok {
            return self.wrong_password(rt, req, pam.fail_delay).await;
        }
        self.conclude(rt, req, code, Some(groups)).await
    }

    /// The final decision as an answer. The core decides again inside the write transaction,
    /// so a change since the first look (a lock, an enrolment) is honoured.
    async fn conclude(
        &self,
        rt: &Runtime,
        req: Request,
        code: Option<Zeroizing<String>>,
        groups: Option<Vec<String>>,
    ) -> Result<Answer, Fail> {
        let d = self.finish(rt, req, code, groups).await?;
        Ok(Answer::from_decision(&d))
    }

    /// challenge, first round: the password, checked before anything is recorded or said
    /// about the user (a wrong password gets the same answer whoever the name belongs to);
    /// then Accept (no code needed), Reject, or an Access-Challenge carrying a fresh State.
    ///
    /// A client with `first_factor = "none"` (allowed only per client, in this mode: a PAM
    /// host in remote mode, whose own password module ran first) sends an empty
    /// User-Password, and goes straight to the policy.
    async fn challenge_start(
        &self,
        rt: &Runtime,
        nas: &Nas,
        asker: &Asker,
        req: Request,
        password: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Answer, Fail> {
        if nas.settings.first_factor == FirstFactor::Pam {
            let Some(password) = password else {
                return self.wrong_password(rt, req, Duration::ZERO).await;
            };
            let pam = self
                .first_factor(rt, &req.user, password, req.client)
                .await?;
            if !pam.ok {
                return self.wrong_password(rt, req, pam.fail_delay).await;
            }
        }
        let (d, groups) = self.look(rt, &req).await?;
        if d.outcome != Outcome::NeedCode {
            return self.conclude(rt, req, None, Some(groups)).await;
        }
        let now = Instant::now();
        let pending = Pending {
            asker: asker.clone(),
            service: req.service.to_string(),
            user: req.user.to_string(),
            client_addr: req.client,
            expires: now + rt.config.radius.challenge_timeout.0,
        };
        let state = relock(&self.challenges).issue(pending, now);
        let Some(state) = state else {
            return Err(Fail::Internal(
                "cannot issue a challenge State (table full or no randomness)".into(),
            ));
        };
        Ok(Answer {
            code: Code::ACCESS_CHALLENGE,
            message: Some(mfa_core::login::CODE_CHALLENGE.into()),
            state: Some(state),
            delay: Duration::ZERO,
            reason: Reason::CodeRequired,
            client: None,
        })
    }

    /// challenge, second round: State + code. The State is spent whatever happens.
    async fn challenge_answer(
        &self,
        rt: &Runtime,
        asker: &Asker,
        mut req: Request,
        state: &[u8],
        code: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Answer, Fail> {
        let redeemed = relock(&self.challenges).redeem(
            state,
            asker,
            &req.service.to_string(),
            &req.user,
            Instant::now(),
        );
        match redeemed {
            Redeem::Ok(addr) => req.client = addr,
            Redeem::Unknown => {
                let mut a = self.refuse(rt, req, Reason::UnknownState).await?;
                a.message = Some("The login timed out or was already used; start again.".into());
                return Ok(a);
            }
            Redeem::Mismatch => return self.refuse(rt, req, Reason::StateMismatch).await,
        }
        let first_round = req.client;
        let code = Zeroizing::new(
            code.map_or_else(String::new, |c| String::from_utf8_lossy(&c).into_owned()),
        );
        let mut ans = self.conclude(rt, req, Some(code), None).await?;
        ans.client = Some(first_round);
        Ok(ans)
    }

    /// Periodic housekeeping: expired challenges.
    pub fn sweep(&self) {
        relock(&self.challenges).sweep(Instant::now());
    }

    /// Challenges issued and not yet redeemed or expired (the metrics' gauge).
    pub fn pending_challenges(&self) -> usize {
        relock(&self.challenges).len()
    }

    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Acquire)
    }
}
