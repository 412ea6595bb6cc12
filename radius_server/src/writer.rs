//! The daemon's one writer to the store. Final decisions from concurrent requests are queued
//! and committed together through `Login::authenticate_many_deferred`: one transaction for
//! as many logins as arrived meanwhile (group commit). Where the engine offers group commit
//! (`Store::group_commit`: SQLite), the sync runs on a second thread, so the next batch is
//! computed while the disk writes the last ones, and one sync covers every batch committed
//! meanwhile; the engine's housekeeping runs on a third. A decision that consumed something
//! (a code, a one-time code, a push, a wrong code's counters, a refusal: `Ack::Durable`)
//! leaves only after the sync that covers its batch, so nothing of that kind acknowledged
//! can be lost; a decision that consumed nothing (a trusted network, an exempt user:
//! `Ack::Committed`) leaves at its commit, and the sync that follows at once makes its
//! statistics and audit row durable, at most [`MAX_UNSYNCED`] of them outstanding
//! (ARCHITECTURE.md, *Durability*). With a single writer thread this process never waits
//! in SQLite's busy handler behind itself. An engine without the capability commits each
//! batch itself (durably, or for a batch that consumed nothing as its `transact_light`
//! allows), and its replies leave at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{
    Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError, channel, sync_channel,
};
use std::time::{Duration, Instant};

use mfa_core::login::Login;
use mfa_core::{Ack, Attempt, Core, CoreError, Decision};
use tokio::sync::oneshot;

use crate::metrics::WriterMetrics;

/// Most logins in one transaction; larger batches only add latency to the first one.
const MAX_BATCH: usize = 256;
/// Most decisions answered before the sync that makes them durable (`Ack::Committed`):
/// what a power loss or a kernel crash may take from the audit trail and the login
/// statistics (a killed daemon loses none: their commit is in the kernel's hands). Past
/// it, such a decision waits for its sync like any other.
pub const MAX_UNSYNCED: usize = 1024;
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
            let unsynced = Arc::new(AtomicUsize::new(0));
            let (a, m, u) = (core.clone(), metrics.clone(), unsynced.clone());
            std::thread::Builder::new()
                .name("mfa-sync".into())
                .spawn(move || sync_loop(&a, &synced_rx, &poke_tx, &m, &u))?;
            Some((synced_tx, catch_up, unsynced))
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

/// A committed batch waiting for its fsync: the replies held for it, and how many of its
/// decisions were answered already (`Ack::Committed`).
type Committed = (Vec<(Reply, Decision)>, usize);

/// The sync thread's queue, the flag by which the housekeeping thread asks the writer to
/// finish its work between two batches, and how many answered decisions wait for a sync;
/// `None` without group commit.
type Pipeline = (Sender<Committed>, Arc<AtomicBool>, Arc<AtomicUsize>);

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
        if let Some((_, catch_up, _)) = pipeline
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
        Some(_) => login.authenticate_many_acked(attempts),
        // Committed by the engine itself: every reply may leave at once.
        None => login
            .authenticate_many(attempts)
            .map(|ds| ds.into_iter().map(|d| (d, Ack::Committed)).collect()),
    };
    metrics
        .commit_seconds
        .observe(started.elapsed().as_secs_f64());
    metrics.batch_size.observe(attempts.len() as f64);
    attempts.clear();
    match result {
        Ok(decisions) if decisions.len() == replies.len() => {
            let batch = replies.drain(..).zip(decisions);
            match pipeline {
                // Durable already (or allowed not to be): answer now.
                None => {
                    for (tx, (d, _)) in batch {
                        let _ = tx.send(Ok(d));
                    }
                }
                Some((synced, _, unsynced)) => {
                    let (held, early) = release_committed(batch, unsynced, metrics);
                    // Sent even when every reply left already: the sync that follows is
                    // what bounds their window.
                    if let Err(std::sync::mpsc::SendError((held, _))) = synced.send((held, early)) {
                        // The sync thread is gone: nothing can be made durable, so refuse.
                        fail_all(held.into_iter().map(|(tx, _)| tx), &WriterError::Stopped);
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

/// Answers the decisions of a committed batch that consumed nothing now, as long as no more
/// than [`MAX_UNSYNCED`] such answers wait for a sync; returns the replies that must wait
/// for the sync, and how many left now.
fn release_committed(
    batch: impl Iterator<Item = (Reply, (Decision, Ack))>,
    unsynced: &AtomicUsize,
    metrics: &WriterMetrics,
) -> (Vec<(Reply, Decision)>, usize) {
    let mut held = Vec::new();
    let mut now = Vec::new();
    let room = MAX_UNSYNCED.saturating_sub(unsynced.load(Ordering::Acquire));
    for (tx, (d, ack)) in batch {
        if ack == Ack::Committed && now.len() < room {
            now.push((tx, d));
        } else {
            held.push((tx, d));
        }
    }
    // Counted before any of them leaves.
    let early = now.len();
    unsynced.fetch_add(early, Ordering::AcqRel);
    metrics.answered_before_sync.inc_by(early as u64);
    for (tx, d) in now {
        let _ = tx.send(Ok(d));
    }
    (held, early)
}

/// Waits for committed batches, makes all that are waiting durable with one sync, then
/// releases their decisions. A failed sync refuses them (fail closed): their effects may
/// or may not survive a power loss, so none may be acknowledged as a success.
fn sync_loop(
    core: &Core,
    rx: &Receiver<Committed>,
    poke: &SyncSender<()>,
    metrics: &WriterMetrics,
    unsynced: &AtomicUsize,
) {
    let mut waiting: Vec<(Reply, Decision)> = Vec::new();
    while let Ok((first, mut early)) = rx.recv() {
        waiting.extend(first);
        while let Ok((more, e)) = rx.try_recv() {
            waiting.extend(more);
            early += e;
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
        // Answered already: this sync made them durable, or (failed) the store is failing
        // and the decisions held below are refused; either way they leave the window.
        unsynced.fetch_sub(early, Ordering::AcqRel);
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

    /// The disk held back: a sync waits while the gate is shut; the syncs begun and done.
    #[derive(Default)]
    struct Gate {
        shut: std::sync::Mutex<bool>,
        opened: std::sync::Condvar,
        begun: AtomicUsize,
        done: AtomicUsize,
    }

    impl Gate {
        fn set(&self, shut: bool) {
            *self.shut.lock().unwrap() = shut;
            self.opened.notify_all();
        }
        fn hook(self: &Arc<Self>) -> mfa_store::testing::SyncHook {
            let gate = self.clone();
            Box::new(move |after| {
                if after {
                    gate.done.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                gate.begun.fetch_add(1, Ordering::SeqCst);
                let mut shut = gate.shut.lock().unwrap();
                while *shut {
                    shut = gate.opened.wait(shut).unwrap();
                }
            })
        }
    }

    /// A writer on SQLite whose syncs go through `gate`; an enrolled alice and her code.
    fn gated(
        gate: &Arc<Gate>,
        now: i64,
    ) -> (tempfile::TempDir, Arc<Core>, Writer, String, WriterMetrics) {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = mfa_config::Config::default();
        cfg.store.path = dir.path().join("mfa.db");
        cfg.policy.trusted_networks = vec!["10.0.0.0/8".parse().unwrap()];
        // No grace period starts (a trusted allow that starts one is durable first).
        cfg.policy.enforce_from = mfa_config::GoLive::Never;
        cfg.audit.syslog = false;
        let store = mfa_store_open::open(&cfg.store, OpenMode::Create).unwrap();
        let store = Box::new(Delegate::new(store).with_sync_hook(gate.hook()));
        let auth =
            Arc::new(Core::open(Arc::new(cfg.clone()), store, OpenMode::Create, "test").unwrap());
        let secret = TotpSecret::generate().unwrap();
        let alice = UserName::parse("alice").unwrap();
        auth.enrolment()
            .enroll(&alice, &secret, None, false, "test", now)
            .unwrap();
        let code = code_at_step(&secret, &cfg.totp.params(), now / 30);
        let metrics = WriterMetrics::default();
        let w = Writer::start(auth.clone(), 4096, metrics.clone()).unwrap();
        (dir, auth, w, code.to_string(), metrics)
    }

    fn reasons_of(auth: &Core, reason: &str) -> usize {
        let events = auth.store().audit(&Default::default()).unwrap();
        events
            .iter()
            .filter(|e| e.reason.as_str() == reason)
            .count()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_trusted_allow_is_answered_before_the_disk_and_an_accepted_code_after_it() {
        let now = 1_800_000_000;
        let gate = Arc::new(Gate::default());
        gate.set(true);
        let (_dir, auth, w, code, metrics) = gated(&gate, now);
        // The disk is held: a trusted allow is answered all the same, committed.
        let trusted = w.attempt(attempt(&auth, "bob", "10.1.2.3", None, now));
        let d = tokio::time::timeout(Duration::from_secs(10), trusted)
            .await
            .expect("a trusted allow waited for the disk")
            .unwrap();
        assert_eq!(d.reason.code(), "trusted_network");
        assert_eq!(
            reasons_of(&auth, "trusted_network"),
            1,
            "committed before the reply"
        );
        assert_eq!(metrics.answered_before_sync.get(), 1);
        // ... and its sync begins with no further request.
        for _ in 0..500 {
            if gate.begun.load(Ordering::SeqCst) >= 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(gate.begun.load(Ordering::SeqCst) >= 1, "no sync followed");
        // An accepted code is not answered while its sync cannot finish.
        let w2 = w.clone();
        let a = attempt(&auth, "alice", "192.0.2.1", Some(&code), now);
        let accepted = tokio::spawn(async move { w2.attempt(a).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !accepted.is_finished(),
            "an accepted code left before its fdatasync"
        );
        assert_eq!(gate.done.load(Ordering::SeqCst), 0);
        gate.set(false);
        let d = accepted.await.unwrap().unwrap();
        assert_eq!(d.reason.code(), "valid_code");
        assert_eq!(
            metrics.answered_before_sync.get(),
            1,
            "the code was counted"
        );
        // By then the syncs that cover both commits are done.
        assert!(gate.done.load(Ordering::SeqCst) >= 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_trusted_allows_audit_row_reaches_the_disk_without_another_request() {
        let now = 1_800_000_000;
        let gate = Arc::new(Gate::default());
        let (_dir, auth, w, _code, _) = gated(&gate, now);
        let d = w
            .attempt(attempt(&auth, "bob", "10.1.2.3", None, now))
            .await
            .unwrap();
        assert_eq!(d.reason.code(), "trusted_network");
        // Nothing else is sent: the sync that makes the row durable follows by itself.
        for _ in 0..500 {
            if gate.done.load(Ordering::SeqCst) >= 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            gate.done.load(Ordering::SeqCst) >= 1,
            "the row was never synced"
        );
        assert_eq!(reasons_of(&auth, "trusted_network"), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_max_unsynced_trusted_allows_are_answered_before_their_sync() {
        let now = 1_800_000_000;
        let gate = Arc::new(Gate::default());
        gate.set(true);
        let (_dir, auth, w, _code, _) = gated(&gate, now);
        let total = MAX_UNSYNCED + 200;
        let answered = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..total {
            let (w, n) = (w.clone(), answered.clone());
            let a = attempt(&auth, &format!("user{i}"), "10.1.2.3", None, now);
            tasks.push(tokio::spawn(async move {
                let d = w.attempt(a).await;
                n.fetch_add(1, Ordering::SeqCst);
                d
            }));
        }
        // Every attempt is committed while the disk is held (the audit rows are there) ...
        for _ in 0..1000 {
            if reasons_of(&auth, "trusted_network") == total {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(reasons_of(&auth, "trusted_network"), total);
        tokio::time::sleep(Duration::from_millis(200)).await;
        // ... but no more than the window is answered before a sync.
        assert_eq!(answered.load(Ordering::SeqCst), MAX_UNSYNCED);
        gate.set(false);
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().reason.code(), "trusted_network");
        }
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
