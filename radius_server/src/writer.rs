//! The daemon's one writer to the store. Final decisions from concurrent requests are queued
//! and committed together through `Login::authenticate_many_deferred`: one transaction for
//! as many logins as arrived meanwhile (group commit). Where the engine offers group commit
//! (`Store::group_commit`: SQLite), the sync runs on a second thread, so the next batch is
//! computed while the disk writes the last ones, and one sync covers every batch committed
//! meanwhile; the engine's housekeeping runs on a third. No reply leaves before the sync
//! that covers its batch, so nothing acknowledged can be lost; and with a single writer
//! thread this process never waits in SQLite's busy handler behind itself. An engine
//! without the capability commits each batch durably, and its replies leave at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{
    Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError, channel, sync_channel,
};
use std::time::{Duration, Instant};

use mfa_core::login::Login;
use mfa_core::{Attempt, Core, CoreError, Decision};
use tokio::sync::oneshot;

use crate::metrics::WriterMetrics;

/// Most logins in one transaction; larger batches only add latency to the first one.
const MAX_BATCH: usize = 256;
/// A housekeeping pass at least this often when no commit prompts one.
const HOUSEKEEPING_IDLE: Duration = Duration::from_secs(1);

type CallFn = Box<dyn FnOnce(&Core) + Send>;

enum Job {
    Attempt(Box<Attempt>, Reply),
    /// Any other store call (e.g. auditing a refused password), run in queue order.
    Call(CallFn),
}

/// Why the writer gave no decision.
#[derive(Debug, Clone)]
pub enum WriterError {
    /// The queue is full: drop the request, the gateway retransmits.
    Overloaded,
    /// The writer thread (or its sync thread) is gone: reject.
    Stopped,
    /// The store failed, the whole batch was rolled back: reject.
    Failed(Arc<CoreError>),
}

impl std::fmt::Display for WriterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriterError::Overloaded => f.write_str("the store writer's queue is full"),
            WriterError::Stopped => f.write_str("the store writer stopped"),
            WriterError::Failed(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for WriterError {}

impl From<CoreError> for WriterError {
    fn from(e: CoreError) -> Self {
        WriterError::Failed(Arc::new(e))
    }
}

/// Handle to the writer thread; the thread ends when the last handle is dropped (on reload,
/// once the old configuration's requests are done).
#[derive(Debug, Clone)]
pub struct Writer {
    tx: SyncSender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Job::Attempt(..) => "Attempt",
            Job::Call(_) => "Call",
        })
    }
}

impl Writer {
    pub fn start(core: Arc<Core>, queue: usize, metrics: WriterMetrics) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(queue.max(1));
        let synced = if core.durability().is_some() {
            let (synced_tx, synced_rx) = channel();
            let (poke_tx, poke_rx) = sync_channel(1);
            let catch_up = Arc::new(AtomicBool::new(false));
            let (a, c) = (core.clone(), catch_up.clone());
            std::thread::Builder::new()
                .name("mfa-housekeep".into())
                .spawn(move || housekeeping_loop(&a, &poke_rx, &c))?;
            let (a, m) = (core.clone(), metrics.clone());
            std::thread::Builder::new()
                .name("mfa-sync".into())
                .spawn(move || sync_loop(&a, &synced_rx, &poke_tx, &m))?;
            Some((synced_tx, catch_up))
        } else {
            None
        };
        std::thread::Builder::new()
            .name("mfa-store".into())
            .spawn(move || run(&core, &rx, synced.as_ref(), &metrics))?;
        Ok(Self { tx })
    }

    fn submit(&self, job: Job) -> Result<(), WriterError> {
        self.tx.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => WriterError::Overloaded,
            TrySendError::Disconnected(_) => WriterError::Stopped,
        })
    }

    /// Decides (and verifies the code, where one is needed and given) in the next batch.
    pub async fn attempt(&self, a: Attempt) -> Result<Decision, WriterError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Attempt(Box::new(a), tx))?;
        rx.await.unwrap_or(Err(WriterError::Stopped))
    }

    /// Runs any other store call on the writer thread, in order with the batches.
    pub async fn call<R, F>(&self, f: F) -> Result<R, WriterError>
    where
        F: FnOnce(Login<'_>) -> Result<R, CoreError> + Send + 'static,
        R: Send + 'static,
    {
        self.call_core(move |core| f(core.login())).await
    }

    /// [`Writer::call`] with the whole core, for a write of another service (a push's
    /// sign-in request): still one writer in this process.
    pub async fn call_core<R, F>(&self, f: F) -> Result<R, WriterError>
    where
        F: FnOnce(&Core) -> Result<R, CoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Call(Box::new(move |core| {
            let _ = tx.send(f(core).map_err(WriterError::from));
        })))?;
        rx.await.unwrap_or(Err(WriterError::Stopped))
    }
}

type Reply = oneshot::Sender<Result<Decision, WriterError>>;

/// A committed batch waiting for its fsync.
type Committed = Vec<(Reply, Decision)>;

/// The sync thread's queue and the flag by which the housekeeping thread asks the writer
/// to finish its work between two batches; `None` without group commit.
type Pipeline = (Sender<Committed>, Arc<AtomicBool>);

fn run(core: &Core, rx: &Receiver<Job>, pipeline: Option<&Pipeline>, metrics: &WriterMetrics) {
    let mut attempts: Vec<Attempt> = Vec::with_capacity(MAX_BATCH);
    let mut replies: Vec<Reply> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Attempt(a, tx) => {
                    attempts.push(*a);
                    replies.push(tx);
                }
                Job::Call(f) => {
                    commit(core, &mut attempts, &mut replies, pipeline, metrics);
                    f(core);
                }
            }
            if attempts.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        commit(core, &mut attempts, &mut replies, pipeline, metrics);
        if let Some((_, catch_up)) = pipeline
            && catch_up.swap(false, Ordering::AcqRel)
            && let Some(gc) = core.durability()
        {
            // The background pass did most of the work; the rest is done here, between two
            // transactions (SQLite: so the next one starts the WAL over).
            let _ = gc.writer_housekeeping();
        }
    }
}

fn commit(
    core: &Core,
    attempts: &mut Vec<Attempt>,
    replies: &mut Vec<Reply>,
    pipeline: Option<&Pipeline>,
    metrics: &WriterMetrics,
) {
    if attempts.is_empty() {
        return;
    }
    let login = core.login();
    let started = Instant::now();
    let result = match pipeline {
        Some(_) => login.authenticate_many_deferred(attempts),
        None => login.authenticate_many(attempts),
    };
    metrics
        .commit_seconds
        .observe(started.elapsed().as_secs_f64());
    metrics.batch_size.observe(attempts.len() as f64);
    attempts.clear();
    match result {
        Ok(decisions) if decisions.len() == replies.len() => {
            let batch: Committed = replies.drain(..).zip(decisions).collect();
            match pipeline {
                // Durable already: answer now.
                None => {
                    for (tx, d) in batch {
                        let _ = tx.send(Ok(d));
                    }
                }
                Some((synced, _)) => {
                    if let Err(std::sync::mpsc::SendError(batch)) = synced.send(batch) {
                        // The sync thread is gone: nothing can be made durable, so refuse.
                        fail_all(batch.into_iter().map(|(tx, _)| tx), &WriterError::Stopped);
                    }
                }
            }
        }
        // The whole batch was rolled back: every login in it is refused (fail closed).
        Ok(_) => fail_all(
            replies.drain(..),
            &WriterError::from(CoreError::Bug(
                "the store returned a different number of decisions",
            )),
        ),
        Err(e) => fail_all(replies.drain(..), &WriterError::from(e)),
    }
}

/// Waits for committed batches, makes all that are waiting durable with one sync, then
/// releases their decisions. A failed sync refuses them (fail closed): their effects may
/// or may not survive a power loss, so none may be acknowledged as a success.
fn sync_loop(
    core: &Core,
    rx: &Receiver<Committed>,
    poke: &SyncSender<()>,
    metrics: &WriterMetrics,
) {
    let mut waiting: Committed = Vec::new();
    while let Ok(first) = rx.recv() {
        waiting.extend(first);
        while let Ok(more) = rx.try_recv() {
            waiting.extend(more);
        }
        let started = Instant::now();
        let synced = match core.durability() {
            Some(gc) => gc.sync(),
            None => Err(CoreError::Bug("a sync thread without group commit")),
        };
        metrics
            .sync_seconds
            .observe(started.elapsed().as_secs_f64());
        let _ = poke.try_send(());
        match synced {
            Ok(()) => {
                for (tx, d) in waiting.drain(..) {
                    let _ = tx.send(Ok(d));
                }
            }
            Err(e) => fail_all(waiting.drain(..).map(|(tx, _)| tx), &WriterError::from(e)),
        }
    }
}

/// The engine's housekeeping beside the writer (SQLite: the WAL is copied back into the
/// database here, instead of by SQLite's automatic checkpoint in the writer's commit, which
/// stalled every batch behind a copy and two fsyncs). When the engine says so, the writer is
/// asked to finish between two batches (SQLite: so the WAL starts over instead of growing
/// without end).
fn housekeeping_loop(core: &Core, poke: &Receiver<()>, catch_up: &AtomicBool) {
    let Some(gc) = core.durability() else {
        return;
    };
    loop {
        match poke.recv_timeout(HOUSEKEEPING_IDLE) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        match gc.housekeeping() {
            Ok(true) => catch_up.store(true, Ordering::Release),
            Ok(false) => {}
            // Nothing is lost: the log only grows until a later pass succeeds.
            Err(_) => std::thread::sleep(HOUSEKEEPING_IDLE),
        }
    }
}

fn fail_all(replies: impl Iterator<Item = Reply>, why: &WriterError) {
    for tx in replies {
        let _ = tx.send(Err(why.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfa_core::totp::code_at_step;
    use mfa_core::{ClientAddr, OpenMode, Request, Store, TotpSecret, UserName, Voucher};
    use mfa_store::testing::Delegate;
    use zeroize::Zeroizing;

    /// A login as the daemon sends it to the writer: past a first factor.
    fn attempt(core: &Core, user: &str, ip: &str, code: Option<&str>, now: i64) -> Attempt {
        let user = UserName::parse(user).unwrap();
        let mut req = Request::new(&user, ClientAddr::Remote(ip.parse().ok()), "test-gw");
        req.now = now;
        let admission = core
            .login()
            .admit_name(&user, Voucher::FirstFactor)
            .unwrap();
        Attempt {
            req: req.admit(&admission),
            code: code.map(|c| Zeroizing::new(c.to_string())),
            groups: Vec::new(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_logins_are_batched_and_each_sees_the_ones_before() {
        batched_logins(true).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_engine_without_group_commit_is_batched_too() {
        batched_logins(false).await;
    }

    async fn batched_logins(group_commit: bool) {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = mfa_config::Config::default();
        cfg.store.path = dir.path().join("mfa.db");
        cfg.policy.trusted_networks = vec!["10.0.0.0/8".parse().unwrap()];
        cfg.audit.syslog = false;
        let store = mfa_store_open::open(&cfg.store, OpenMode::Create).unwrap();
        let store: Box<dyn Store> = if group_commit {
            store
        } else {
            Box::new(Delegate::new(store).without_group_commit())
        };
        let auth =
            Arc::new(Core::open(Arc::new(cfg.clone()), store, OpenMode::Create, "test").unwrap());
        assert_eq!(auth.durability().is_some(), group_commit);
        let now = 1_800_000_000;
        let secret = TotpSecret::generate().unwrap();
        auth.enrolment()
            .enroll(
                &UserName::parse("alice").unwrap(),
                &secret,
                None,
                false,
                "test",
                now,
            )
            .unwrap();
        let code = code_at_step(&secret, &cfg.totp.params(), now / 30);
        let w = Writer::start(auth.clone(), 1024, WriterMetrics::default()).unwrap();

        let mut tasks = Vec::new();
        for i in 0..300 {
            let w = w.clone();
            let a = match i {
                // The same valid code twice, racing: exactly one may win.
                7 | 8 => attempt(&auth, "alice", "192.0.2.1", Some(&code), now),
                _ => attempt(&auth, &format!("user{i}"), "10.1.2.3", None, now),
            };
            tasks.push(tokio::spawn(async move { w.attempt(a).await }));
        }
        let mut reasons = Vec::new();
        for t in tasks {
            reasons.push(t.await.unwrap().unwrap().reason.code());
        }
        assert_eq!(
            reasons.iter().filter(|r| **r == "trusted_network").count(),
            298
        );
        assert_eq!(reasons.iter().filter(|r| **r == "valid_code").count(), 1);
        assert_eq!(reasons.iter().filter(|r| **r == "replayed_code").count(), 1);
        // Other calls run on the same thread, in order with the batches.
        let req = attempt(&auth, "alice", "192.0.2.1", None, now).req;
        let d = w.call(move |a| a.deny_first_factor(&req)).await.unwrap();
        assert_eq!(d.reason.code(), "wrong_password");
        let events = auth.store().audit(&Default::default()).unwrap();
        assert_eq!(
            events.len(),
            1 + 300 + 1,
            "enrol, 300 decisions, one wrong password"
        );
    }

    #[tokio::test]
    async fn a_full_queue_is_overload_not_failure() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = mfa_config::Config::default();
        cfg.store.path = dir.path().join("mfa.db");
        cfg.audit.syslog = false;
        let auth = Arc::new(
            mfa_store_open::open_core(
                Arc::new(cfg),
                OpenMode::Create,
                "t",
                mfa_core::NameCheck::IfRulesChanged,
            )
            .unwrap(),
        );
        let w = Writer::start(auth, 1, WriterMetrics::default()).unwrap();
        // Park the writer thread so the queue fills.
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        w.submit(Job::Call(Box::new(move |_| {
            let _ = hold_rx.recv();
        })))
        .unwrap();
        let mut saw_overload = false;
        for _ in 0..3 {
            if matches!(
                w.submit(Job::Call(Box::new(|_| {}))),
                Err(WriterError::Overloaded)
            ) {
                saw_overload = true;
            }
        }
        assert!(saw_overload);
        drop(hold_tx);
    }
}
