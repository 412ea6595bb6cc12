//! The daemon's one writer to the store. Final decisions from concurrent requests are queued
//! and committed together through `Authenticator::authenticate_many_deferred`: one
//! transaction for as many logins as arrived meanwhile (group commit). The fsync runs on a
//! second thread, so the next batch is computed while the disk writes the last ones, and one
//! fsync covers every batch committed meanwhile. No reply leaves before the fsync that
//! covers its batch, so nothing acknowledged can be lost; and with a single writer thread
//! this process never waits in SQLite's busy handler behind itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{
    Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError, channel, sync_channel,
};
use std::time::Duration;

use mfa_common::auth::Attempt;
use mfa_common::{Authenticator, CoreError, Decision};
use tokio::sync::oneshot;

/// Most logins in one transaction; larger batches only add latency to the first one.
const MAX_BATCH: usize = 256;
/// WAL size (4 KiB pages) past which the writer lets the log start over.
const RESTART_FRAMES: u64 = 4096;
/// A checkpoint pass at least this often when no commit prompts one.
const CHECKPOINT_IDLE: Duration = Duration::from_secs(1);

type CallFn = Box<dyn FnOnce(&Authenticator) + Send>;

enum Job {
    Attempt(Box<Attempt>, Reply),
    /// Any other store call (e.g. auditing a refused password), run in queue order.
    Call(CallFn),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The queue is full: drop the request, the gateway retransmits.
    Overloaded,
    /// The store failed (or the writer is gone): reject.
    Failed(String),
}

impl From<CoreError> for StoreError {
    fn from(e: CoreError) -> Self {
        StoreError::Failed(e.to_string())
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
    pub fn start(auth: Arc<Authenticator>, queue: usize) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(queue.max(1));
        let (synced_tx, synced_rx) = channel();
        let (poke_tx, poke_rx) = sync_channel(1);
        let catch_up = Arc::new(AtomicBool::new(false));
        let (a, c) = (auth.clone(), catch_up.clone());
        std::thread::Builder::new()
            .name("mfa-checkpoint".into())
            .spawn(move || checkpoint_loop(&a, &poke_rx, &c))?;
        let a = auth.clone();
        std::thread::Builder::new()
            .name("mfa-sync".into())
            .spawn(move || sync_loop(&a, &synced_rx, &poke_tx))?;
        std::thread::Builder::new()
            .name("mfa-store".into())
            .spawn(move || run(&auth, &rx, &synced_tx, &catch_up))?;
        Ok(Self { tx })
    }

    fn submit(&self, job: Job) -> Result<(), StoreError> {
        self.tx.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => StoreError::Overloaded,
            TrySendError::Disconnected(_) => StoreError::Failed("store writer stopped".into()),
        })
    }

    /// Decides (and verifies the code, where one is needed and given) in the next batch.
    pub async fn attempt(&self, a: Attempt) -> Result<Decision, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Attempt(Box::new(a), tx))?;
        match rx.await {
            Ok(r) => r.map_err(StoreError::Failed),
            Err(_) => Err(StoreError::Failed("store writer stopped".into())),
        }
    }

    /// Runs any other store call on the writer thread, in order with the batches.
    pub async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Authenticator) -> Result<R, CoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Call(Box::new(move |a| {
            let _ = tx.send(f(a).map_err(StoreError::from));
        })))?;
        rx.await
            .unwrap_or_else(|_| Err(StoreError::Failed("store writer stopped".into())))
    }
}

type Reply = oneshot::Sender<Result<Decision, String>>;

/// A committed batch waiting for its fsync.
type Committed = Vec<(Reply, Decision)>;

fn run(
    auth: &Authenticator,
    rx: &Receiver<Job>,
    synced: &Sender<Committed>,
    catch_up: &AtomicBool,
) {
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
                    commit(auth, &mut attempts, &mut replies, synced);
                    f(auth);
                }
            }
            if attempts.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        commit(auth, &mut attempts, &mut replies, synced);
        if catch_up.swap(false, Ordering::AcqRel) {
            // The background pass copied most of the log; copy the rest here, between two
            // transactions, so the next one starts the WAL over.
            let _ = auth.checkpoint(true);
        }
    }
}

fn commit(
    auth: &Authenticator,
    attempts: &mut Vec<Attempt>,
    replies: &mut Vec<Reply>,
    synced: &Sender<Committed>,
) {
    if attempts.is_empty() {
        return;
    }
    let result = auth.authenticate_many_deferred(attempts);
    attempts.clear();
    match result {
        Ok(decisions) if decisions.len() == replies.len() => {
            let batch: Committed = replies.drain(..).zip(decisions).collect();
            if let Err(std::sync::mpsc::SendError(batch)) = synced.send(batch) {
                // The sync thread is gone: nothing can be made durable, so refuse.
                for (tx, _) in batch {
                    let _ = tx.send(Err("store sync thread stopped".into()));
                }
            }
        }
        // The whole batch was rolled back: every login in it is refused (fail closed).
        Ok(_) => fail_all(
            replies.drain(..),
            "the store returned a different number of decisions",
        ),
        Err(e) => fail_all(replies.drain(..), &e.to_string()),
    }
}

/// Waits for committed batches, makes all that are waiting durable with one fsync, then
/// releases their decisions. A failed fsync refuses them (fail closed): their effects may
/// or may not survive a power loss, so none may be acknowledged as a success.
fn sync_loop(auth: &Authenticator, rx: &Receiver<Committed>, poke: &SyncSender<()>) {
    let mut waiting: Committed = Vec::new();
    while let Ok(first) = rx.recv() {
        waiting.extend(first);
        while let Ok(more) = rx.try_recv() {
            waiting.extend(more);
        }
        let synced = auth.sync();
        let _ = poke.try_send(());
        match synced {
            Ok(()) => {
                for (tx, d) in waiting.drain(..) {
                    let _ = tx.send(Ok(d));
                }
            }
            Err(e) => fail_all(
                waiting.drain(..).map(|(tx, _)| tx),
                &format!("cannot make the decision durable: {e}"),
            ),
        }
    }
}

/// The WAL is copied back into the database here, beside the writer, instead of by SQLite's
/// automatic checkpoint in the writer's commit (which stalled every batch behind a copy and
/// two fsyncs). When the log has grown past `RESTART_FRAMES`, the writer is asked to finish
/// the copy between two batches, so the WAL starts over instead of growing without end.
fn checkpoint_loop(auth: &Authenticator, poke: &Receiver<()>, catch_up: &AtomicBool) {
    loop {
        match poke.recv_timeout(CHECKPOINT_IDLE) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        match auth.checkpoint(false) {
            Ok(frames) if frames >= RESTART_FRAMES => catch_up.store(true, Ordering::Release),
            Ok(_) => {}
            // Nothing is lost: the WAL only grows until a later pass succeeds.
            Err(_) => std::thread::sleep(CHECKPOINT_IDLE),
        }
    }
}

fn fail_all(replies: impl Iterator<Item = Reply>, why: &str) {
    for tx in replies {
        let _ = tx.send(Err(why.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfa_common::auth::Request;
    use mfa_common::totp::{TotpParams, code_at_step};
    use mfa_common::{ClientAddr, OpenMode, TotpSecret};
    use zeroize::Zeroizing;

    fn attempt(user: &str, ip: &str, code: Option<&str>, now: i64) -> Attempt {
        Attempt {
            req: Request {
                user: user.into(),
                client: ClientAddr::Remote(ip.parse().ok()),
                service: "test-gw".into(),
                now,
            },
            code: code.map(|c| Zeroizing::new(c.to_string())),
            groups: Vec::new(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_logins_are_batched_and_each_sees_the_ones_before() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = mfa_config::Config::default();
        cfg.store.path = dir.path().join("mfa.db");
        cfg.policy.trusted_networks = vec!["10.0.0.0/8".parse().unwrap()];
        cfg.audit.syslog = false;
        let auth =
            Arc::new(Authenticator::open(Arc::new(cfg.clone()), OpenMode::Create, "test").unwrap());
        let now = 1_800_000_000;
        let secret = TotpSecret::generate().unwrap();
        auth.enroll("alice", &secret, None, false, "test", now)
            .unwrap();
        let code = code_at_step(&secret, &TotpParams::from_config(&cfg.totp), now / 30);
        let w = Writer::start(auth.clone(), 1024).unwrap();

        let mut tasks = Vec::new();
        for i in 0..300 {
            let w = w.clone();
            let a = match i {
                // The same valid code twice, racing: exactly one may win.
                7 | 8 => attempt("alice", "192.0.2.1", Some(&code), now),
                _ => attempt(&format!("user{i}"), "10.1.2.3", None, now),
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
        let d = w
            .call(move |a| a.deny_first_factor(&attempt("alice", "192.0.2.1", None, now).req))
            .await
            .unwrap();
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
        let auth = Arc::new(Authenticator::open(Arc::new(cfg), OpenMode::Create, "t").unwrap());
        let w = Writer::start(auth, 1).unwrap();
        // Park the writer thread so the queue fills.
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        w.submit(Job::Call(Box::new(move |_| {
            let _ = hold_rx.recv();
        })))
        .unwrap();
        let mut saw_overload = false;
        for _ in 0..3 {
            if w.submit(Job::Call(Box::new(|_| {}))) == Err(StoreError::Overloaded) {
                saw_overload = true;
            }
        }
        assert!(saw_overload);
        drop(hold_tx);
    }
}
