//! Bounded blocking pools. SQLite and PAM calls block; they run on tokio's blocking threads,
//! at most `workers` at once per lane, with at most `queue` more waiting. Past that the
//! request is dropped (the gateway retransmits), so a slow PAM stack or a busy disk can never
//! stall the UDP loop or grow memory without bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

#[derive(Debug)]
pub struct Lane {
    name: &'static str,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneError {
    /// Too many requests already waiting for this lane.
    Overloaded(&'static str),
    /// The blocking task panicked or was cancelled.
    Failed(&'static str),
}

impl std::fmt::Display for LaneError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LaneError::Overloaded(n) => write!(f, "{n} queue full"),
            LaneError::Failed(n) => write!(f, "{n} worker failed"),
        }
    }
}

/// The cause is the lane's state itself: `source()` is `None`.
impl std::error::Error for LaneError {}

impl Lane {
    pub fn new(name: &'static str, workers: usize, queue: usize) -> Self {
        Self {
            name,
            permits: Arc::new(Semaphore::new(workers.max(1))),
            waiting: AtomicUsize::new(0),
            queue,
        }
    }

    pub async fn run<F, R>(&self, f: F) -> Result<R, LaneError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let before = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _guard = Waiting(&self.waiting);
        if before >= self.queue {
            return Err(LaneError::Overloaded(self.name));
        }
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| LaneError::Failed(self.name))?;
        drop(_guard);
        let r = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await;
        r.map_err(|_| LaneError::Failed(self.name))
    }
}

struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bounded_concurrency_and_queue() {
        let lane = Arc::new(Lane::new("test", 2, 3));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        // The workers hold on until the test lets them go, so the counts below are not a
        // race against a sleep on a busy machine.
        let mut release = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let (go, wait) = tokio::sync::oneshot::channel::<()>();
            release.push(go);
            let (lane, running, peak) = (lane.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                lane.run(move || {
                    let n = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    let _ = wait.blocking_recv();
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        // Wait (bounded) until 2 run and 3 wait.
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while !(running.load(Ordering::SeqCst) == 2 && lane.waiting.load(Ordering::SeqCst) == 3) {
            assert!(std::time::Instant::now() < until, "the lane never filled");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // 5 admitted (2 running + 3 waiting); the 6th is refused at once.
        assert_eq!(lane.run(|| ()).await, Err(LaneError::Overloaded("test")));
        for go in release {
            let _ = go.send(());
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(()));
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }
}
