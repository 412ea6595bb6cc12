//! The daemon's one writer to the store. Final decisions from concurrent requests are queued
//! and committed together through `Authenticator::authenticate_many`: one transaction, one
//! fsync, for as many logins as arrived meanwhile (group commit). No reply leaves before its
//! batch is committed, so nothing acknowledged can be lost; and with a single writer thread
//! this process never waits in SQLite's busy handler behind itself.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use mfa_common::auth::Attempt;
use mfa_common::{Authenticator, CoreError, Decision};
use tokio::sync::oneshot;

/// Most logins in one transaction; larger batches only add latency to the first one.
const MAX_BATCH: usize = 256;

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
        std::thread::Builder::new()
            .name("mfa-store".into())
            .spawn(move || run(&auth, &rx))?;
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

fn run(auth: &Authenticator, rx: &Receiver<Job>) {
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
                    commit(auth, &mut attempts, &mut replies);
                    f(auth);
                }
            }
            if attempts.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        commit(auth, &mut attempts, &mut replies);
    }
}

fn commit(auth: &Authenticator, attempts: &mut Vec<Attempt>, replies: &mut Vec<Reply>) {
    if attempts.is_empty() {
        return;
    }
    let result = auth.authenticate_many(attempts);
    attempts.clear();
    match result {
        Ok(decisions) if decisions.len() == replies.len() => {
            for (tx, d) in replies.drain(..).zip(decisions) {
                let _ = tx.send(Ok(d));
            }
        }
        // The whole batch was rolled back: every login in it is refused (fail closed).
        Ok(_) => fail_all(
            replies,
            "the store returned a different number of decisions",
        ),
        Err(e) => fail_all(replies, &e.to_string()),
    }
}

fn fail_all(replies: &mut Vec<Reply>, why: &str) {
    for tx in replies.drain(..) {
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
