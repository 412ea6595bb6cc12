//! What every task shares across reloads ([`Shared`]: the configuration generation in force,
//! the duplicate cache, the challenge table, the counters, the log) and one admitted
//! request's way from its mode's answer to the reply: the decision counted, logged and
//! encoded. The parts: `admission.rs` (what a packet passes first), `mode/` (the three
//! modes), `accounting.rs` (Accounting-Requests), `answer.rs` (what is said, as a packet),
//! `runtime.rs` (configuration generations and reload). Policy is not decided here: every
//! question goes to the core's login service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use mfa_config::Config;
use mfa_config::{ClientPush, FirstFactor};
use mfa_core::login::Login;
use mfa_core::login::Service;
use mfa_core::policy::{Decision, Reason};
use mfa_core::push::PushStarted;
use mfa_core::{
    Admission, Attempt, ClientAddr, Core, CoreError, PushId, PushRefusal, PushState, Refusal,
    Request, UserName, Voucher,
};
use mfa_pam_client::PamCheck;
use mfa_radius_proto::{AttrType, Code, Packet};
use tokio::net::UdpSocket;
use zeroize::Zeroizing;

use crate::answer::{self, Answer};
use crate::attrs::client_addr;
use crate::challenge::{self, Asker, PendingChallenge, Redeem, WireState};
use crate::dedup;
use crate::lanes::Lane;
use crate::logbuf::LogBuffer;
use crate::metrics::{DecisionLabels, Metrics};
use crate::mode::{self, HoldSlot, InternalError, ModeBackend, RequestError};
use crate::runtime::{Nas, Runtime};
use crate::stats::{DropReason, Stats};

/// How long a reply stays in the duplicate cache at least (at most twice that): longer than
/// any gateway's retry schedule.
const DEDUP_TTL: Duration = Duration::from_secs(30);
const DEDUP_CAPACITY: usize = 65_536;
/// Read-only store calls (the policy before a password check) at once. Writes all go through
/// the one batching writer (`writer::Writer`): a second writer in this process would only wait
/// in SQLite's busy handler (1 ms, 2 ms, 5 ms...).
const STORE_READERS: usize = 2;
/// Requests waiting for a reader, or for the writer.
pub(crate) const STORE_QUEUE: usize = 4096;
/// Requests held for a push at once (append and code-only mode): each looks at its push's
/// state on a store reader every [`PUSH_POLL_EVERY`], so this bounds that load too. Past it,
/// a request that would send a push is dropped before anything is written, and the gateway
/// retransmits.
pub(crate) const MAX_HELD_PUSHES: usize = 512;
/// How often a held request looks at its push's state.
const PUSH_POLL_EVERY: Duration = Duration::from_millis(500);
/// The actor the audit trail names for the daemon's pushes.
const ACTOR: &str = "mfa-radiusd";

/// Command-line options that are not configuration.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub config_path: PathBuf,
    /// Read PAM service files from here instead of /etc/pam.d (`pam_start_confdir`).
    pub pam_confdir: Option<PathBuf>,
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
    pub(crate) fn try_send(&self, reply: Arc<[u8]>, to: SocketAddr) {
        match self {
            ReplyTo::Udp(sock) => {
                let _ = sock.try_send_to(&reply, to);
            }
            ReplyTo::Tls(tx) => {
                let _ = tx.try_send(reply);
            }
        }
    }

    pub(crate) async fn send(&self, reply: Arc<[u8]>, to: SocketAddr) {
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

/// State shared by every task, across reloads.
pub struct Shared {
    pub(crate) runtime: RwLock<Arc<Runtime>>,
    pub(crate) dedup: Mutex<dedup::Cache>,
    /// The caps on pending challenges (`[radius] max_pending_challenges`, taken at start),
    /// counted in the store over every node.
    pub(crate) challenge_limits: mfa_core::store::ChallengeLimits,
    /// The store reader lane: read-only store calls, the policy before a password check.
    pub(crate) readers: Lane,
    /// Shared with the metrics' scrape.
    pub stats: Arc<Stats>,
    /// The labelled counters and histograms of `[radius] metrics_listen`.
    pub metrics: Metrics,
    /// The stderr log; `run` flushes it on a timer and at exit.
    pub log: LogBuffer,
    pub(crate) inflight: AtomicUsize,
    /// The places of requests held for a push ([`MAX_HELD_PUSHES`]).
    pub(crate) held: Arc<tokio::sync::Semaphore>,
    pub(crate) options: Options,
}

/// Locks a mutex even if a thread panicked while holding it: the tables behind these locks
/// are only ever updated by single map operations, so they stay consistent, and a daemon that
/// stopped answering after one panic would be worse.
pub(crate) fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A quoted, escaped, bounded rendering of an untrusted name for the log.
pub(crate) fn log_name(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let short: String = s.chars().take(64).collect();
    format!("{short:?}")
}

impl Shared {
    pub fn new(runtime: Runtime, options: Options, metrics: Metrics) -> Arc<Self> {
        // Taken at start: a reload keeps the caps.
        let challenge_limits = challenge::limits(runtime.config.radius.max_pending_challenges);
        Arc::new(Self {
            runtime: RwLock::new(Arc::new(runtime)),
            dedup: Mutex::new(dedup::Cache::new(DEDUP_TTL, DEDUP_CAPACITY)),
            challenge_limits,
            readers: Lane::new("store reader", STORE_READERS, STORE_QUEUE),
            stats: Arc::default(),
            metrics,
            log: LogBuffer::default(),
            inflight: AtomicUsize::new(0),
            held: Arc::new(tokio::sync::Semaphore::new(MAX_HELD_PUSHES)),
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

    pub(crate) fn log(&self, rt: &Runtime, line: &str) {
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

    pub(crate) fn dropped(
        &self,
        why: DropReason,
        from: SocketAddr,
        detail: &dyn std::fmt::Display,
    ) {
        self.dropped_from(why, None, from, detail);
    }

    /// A record the store writer did not take (an accounting record, a PAM host's offline
    /// report): an overloaded writer drops the packet as any overload does; any other
    /// failure is a warning naming `what`, the user and the client. Either way nothing is
    /// answered, so `sender` sends it again.
    pub(crate) fn not_recorded(
        &self,
        e: &crate::writer::WriterError,
        from: SocketAddr,
        what: &str,
        user_raw: &[u8],
        client: &str,
        sender: &str,
    ) {
        if let crate::writer::WriterError::Overloaded = e {
            self.dropped(DropReason::Overloaded, from, e);
        } else {
            self.warn(&format!(
                "{what} for user {} from client {client:?} not recorded, not answered ({sender} sends it again): {e}",
                log_name(user_raw),
            ));
        }
    }

    /// [`Shared::dropped`] of a packet from the configured client entry `client`: its
    /// warnings are limited per entry ([`Stats::count_drop_from`]), so each entry that
    /// needs a change is named.
    pub(crate) fn dropped_from(
        &self,
        why: DropReason,
        client: Option<&str>,
        from: SocketAddr,
        detail: &dyn std::fmt::Display,
    ) {
        if self.stats.count_drop_from(why, client) {
            self.warn(&format!(
                "dropped a packet from {from}: {detail} ({} {} so far; further ones are counted, not logged, for a minute)",
                self.stats.dropped(why),
                why.name()
            ));
        }
    }

    /// Everything after admission. `None`: no reply (overload; the gateway retries).
    pub(crate) async fn process(
        self: &Arc<Self>,
        rt: Arc<Runtime>,
        nas: &Nas,
        datagram: &[u8],
        from: SocketAddr,
    ) -> Option<Vec<u8>> {
        let pkt = Packet::parse(datagram).ok()?;
        // A PAM host's report of a login it let in offline is no login (offline_report.rs).
        if mfa_radius_proto::pam_host::report::is_report(&pkt) {
            return self.offline_report(rt, nas, &pkt, from).await;
        }
        let user_raw = pkt.attr(AttrType::USER_NAME).unwrap_or_default();
        let addr = client_addr(nas.settings.client_ip_attribute, &pkt);
        let live = Live {
            shared: self,
            rt: &rt,
        };
        let answer = match mode::answer(&live, nas, &pkt, addr, from.ip()).await {
            Ok(a) => a,
            Err(RequestError::Overloaded) => {
                self.dropped(DropReason::Overloaded, from, &"worker queue full");
                return None;
            }
            Err(RequestError::Internal(e)) => {
                self.warn(&format!(
                    "internal error for user {} from client {:?}; rejecting: {e}",
                    log_name(user_raw),
                    nas.name
                ));
                Answer::reject(Reason::InternalError)
            }
        };
        let result = answer.outcome();
        let counter = match answer.code {
            Code::ACCESS_ACCEPT => &self.stats.accepted,
            Code::ACCESS_CHALLENGE => &self.stats.challenged,
            _ => &self.stats.rejected,
        };
        Stats::bump(counter);
        self.metrics
            .decisions
            .get_or_create(&DecisionLabels {
                outcome: result.to_string(),
                reason: answer.reason.code().to_string(),
            })
            .inc();
        // The rule a decision followed ends the line, where one matched.
        let rule = answer
            .rule
            .as_ref()
            .map(|r| format!(" rule={r:?}"))
            .unwrap_or_default();
        // The attributes an accept carries, by name (their values are in the configuration).
        let reply = answer
            .reply_for(&nas.settings)
            .map(|r| {
                let names: Vec<&str> = r.entries().iter().map(|(k, _)| k.attribute()).collect();
                format!(" reply={:?}", names.join(","))
            })
            .unwrap_or_default();
        self.log(
            &rt,
            &format!(
                "user={} client={:?} client_ip={} decision={result} reason={}{rule}{reply}",
                log_name(user_raw),
                nas.name,
                answer.client.unwrap_or(addr),
                answer.reason.code()
            ),
        );
        if !answer.delay.is_zero() {
            tokio::time::sleep(answer.delay).await;
        }
        match answer.encode(&pkt, &nas.secret, &nas.settings) {
            Ok(r) => Some(r),
            Err(e) => {
                self.warn(&format!("cannot encode the reply: {e}"));
                // Fail closed: a bare Reject always fits.
                answer::bare_reject(&pkt, &nas.secret)
            }
        }
    }

    /// Periodic housekeeping: expired challenges, deleted from the store (every node does
    /// it; a challenge past its time redeems nothing anyway). Blocks on the store: call it
    /// off the async threads.
    pub fn sweep(&self) {
        if let Err(e) = self.runtime().core.challenges().prune(challenge::now_ms()) {
            self.warn(&format!("cannot prune expired challenges: {e}"));
        }
    }

    /// Challenges issued and not yet redeemed or expired, by every node on the store;
    /// `None` where the store cannot say. Blocks on the store.
    pub fn pending_challenges(&self) -> Option<usize> {
        self.runtime()
            .core
            .challenges()
            .live(challenge::now_ms())
            .ok()
    }

    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Acquire)
    }
}

/// The daemon's [`ModeBackend`]: the store reader lane, the PAM lane and the writer of the
/// configuration generation `rt` the request started under, and the challenge table.
pub(crate) struct Live<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) rt: &'a Runtime,
}

impl Live<'_> {
    /// A read-only store call (the policy before the password check), on the reader pool.
    async fn read<R, F>(&self, f: F) -> Result<R, RequestError>
    where
        F: FnOnce(Login<'_>) -> Result<R, CoreError> + Send + 'static,
        R: Send + 'static,
    {
        self.read_core(move |core| f(core.login())).await
    }

    /// [`Live::read`] with the whole core (another service's reads: push).
    async fn read_core<R, F>(&self, f: F) -> Result<R, RequestError>
    where
        F: FnOnce(&Core) -> Result<R, CoreError> + Send + 'static,
        R: Send + 'static,
    {
        let core = self.rt.core.clone();
        Ok(self.shared.readers.run(move || f(&core)).await??)
    }
}

/// How long every refused LDAP bind takes before its answer, counted from the start of the
/// check: a wrong password, an unknown name and a disabled account alike (pam_unix's delay
/// is about as long).
pub(crate) const LDAP_REFUSAL_FLOOR: std::time::Duration = std::time::Duration::from_secs(2);

impl Live<'_> {
    /// `first_factor = "ldap"`: a bind as the user (`Directory::check_password`), on the PAM
    /// lane (it blocks). A directory that does not answer is an internal error: rejected
    /// and logged, never let in.
    async fn check_ldap_password(
        &self,
        user: &UserName,
        password: Zeroizing<Vec<u8>>,
    ) -> Result<PamCheck, RequestError> {
        let core = self.rt.core.clone();
        let user = user.clone();
        let start = std::time::Instant::now();
        let outcome = self
            .rt
            .pam
            .run(move || -> Result<bool, CoreError> {
                let Some(dir) = core.directory() else {
                    return Err(CoreError::Bug(
                        "first_factor = \"ldap\" without [directory]",
                    ));
                };
                // Not UTF-8: no directory password can match it.
                let Ok(text) = std::str::from_utf8(&password) else {
                    return Ok(false);
                };
                let text = Zeroizing::new(text.to_string());
                Ok(dir.check_password(user.as_str(), &text)?
                    == mfa_core::directory::BindOutcome::Accepted)
            })
            .await?
            .map_err(|e| RequestError::Internal(InternalError::Core(e)))?;
        Ok(PamCheck {
            ok: outcome,
            status: if outcome { 0 } else { 7 },
            fail_delay: if outcome {
                std::time::Duration::ZERO
            } else {
                LDAP_REFUSAL_FLOOR.saturating_sub(start.elapsed())
            },
            error: None,
        })
    }
}

impl ModeBackend for Live<'_> {
    fn config(&self) -> &Config {
        &self.rt.config
    }

    fn admit(&self, user: &UserName, by: Voucher) -> Result<Admission, CoreError> {
        self.rt.core.login().admit_name(user, by)
    }

    async fn user_name(&self, raw: &str) -> Result<Option<UserName>, RequestError> {
        // Where the name is checked against the stored ones (look-alikes, under `[users]
        // unicode = "allow"`), on a store reader rather than on this thread.
        if self.rt.core.user_name_reads_store() {
            let raw = raw.to_string();
            return self
                .read(move |l| match l.user_name(&raw) {
                    Err(CoreError::BadUserName { .. }) => Ok(None),
                    r => r.map(Some),
                })
                .await;
        }
        Ok(self.rt.core.user_name(raw).ok())
    }

    async fn issue_challenge(
        &self,
        p: PendingChallenge,
    ) -> Result<Option<WireState>, RequestError> {
        let limits = self.shared.challenge_limits;
        // A write: on the one writer, in order with the batches (SQLite's lock is never
        // waited for behind this process's own writer).
        Ok(self
            .rt
            .writer
            .call_core(move |c| challenge::issue(c, &p, &limits, challenge::now_ms()))
            .await?)
    }

    async fn redeem_challenge(
        &self,
        state: &[u8],
        asker: &Asker,
        service: &str,
        user: &str,
    ) -> Result<Redeem, RequestError> {
        let (state, asker) = (state.to_vec(), asker.clone());
        let (service, user) = (service.to_string(), user.to_string());
        Ok(self
            .rt
            .writer
            .call_core(move |c| {
                challenge::redeem(c, &state, &asker, &service, &user, challenge::now_ms())
            })
            .await?)
    }

    async fn look(&self, req: &Request) -> Result<(Decision, Vec<String>), RequestError> {
        let r2 = req.clone();
        self.read(move |a| {
            let groups = a.groups_for(&r2.user)?;
            let d = a.decide_with_groups(&r2, &groups)?;
            Ok((d, groups))
        })
        .await
    }

    async fn groups(&self, user: &UserName) -> Result<Vec<String>, RequestError> {
        let user = user.clone();
        self.read(move |a| a.groups_for(&user)).await
    }

    async fn check_password(
        &self,
        user: &UserName,
        password: Zeroizing<Vec<u8>>,
        addr: ClientAddr,
        how: FirstFactor,
    ) -> Result<PamCheck, RequestError> {
        let rt = self.rt;
        if how == FirstFactor::Ldap {
            return self.check_ldap_password(user, password).await;
        }
        let service = rt.config.radius.pam_service.clone();
        let user = user.to_string();
        let confdir = self.shared.options.pam_confdir.clone();
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

    async fn attempt(&self, attempt: Attempt) -> Result<Decision, RequestError> {
        Ok(self.rt.writer.attempt(attempt).await?)
    }

    async fn deny_first_factor(&self, req: Request) -> Result<Decision, RequestError> {
        Ok(self
            .rt
            .writer
            .call(move |l| l.deny_first_factor(&req))
            .await?)
    }

    async fn deny_request(&self, req: Request, reason: Reason) -> Result<(), RequestError> {
        self.rt
            .writer
            .call(move |l| l.deny_request(&req, reason))
            .await?;
        Ok(())
    }

    fn push_settings(&self, service: &Service) -> ClientPush {
        self.rt.core.push(ACTOR).settings_for(service)
    }

    async fn has_phone(&self, user: &UserName) -> Result<bool, RequestError> {
        let user = user.clone();
        self.read_core(move |c| Ok(!c.push(ACTOR).devices(&user)?.is_empty()))
            .await
    }

    async fn start_push(
        &self,
        req: Request,
        can_show_number: bool,
    ) -> Result<Result<PushStarted, PushRefusal>, RequestError> {
        Ok(self
            .rt
            .writer
            .call_core(move |c| match c.push(ACTOR).start(&req, can_show_number) {
                Ok(s) => Ok(Ok(s)),
                Err(CoreError::Refused(Refusal::Push(r))) => Ok(Err(r)),
                Err(e) => Err(e),
            })
            .await?)
    }

    async fn push_status(&self, id: PushId) -> Result<Option<PushState>, RequestError> {
        self.read_core(move |c| c.push(ACTOR).status(&id, mfa_core::login::now()))
            .await
    }

    async fn verify_push(&self, req: Request, id: PushId) -> Result<Decision, RequestError> {
        Ok(self
            .rt
            .writer
            .call(move |l| l.verify_push(&req, &id))
            .await?)
    }

    fn hold_slot(&self) -> Option<HoldSlot> {
        self.shared.held.clone().try_acquire_owned().ok()
    }

    fn push_poll_every(&self) -> Duration {
        PUSH_POLL_EVERY
    }
}
