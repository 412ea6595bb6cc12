//! The database server in use, for the metrics (docs/FAILOVER.md): which host, whether it
//! is the primary, its standbys' synchronous state and lag. A thread of its own reads it
//! every [`REFRESH`] and the scrape shows the last reading, so neither a login nor a scrape
//! ever waits for the database on its account. Only engines with a server (PostgreSQL)
//! have one; on SQLite the thread ends at once and nothing is shown.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mfa_core::store::StoreHealth;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::server::Shared;

/// How often the reading is refreshed.
pub const REFRESH: Duration = Duration::from_secs(3);

/// The last reading: `None` before the first, or on an engine without a server.
pub type Reading = Arc<Mutex<Option<Result<StoreHealth, String>>>>;

/// Starts the reader thread (through the runtime of the moment, so a reload's new store is
/// the one read); returns the reading it keeps.
pub fn spawn(shared: Arc<Shared>) -> Reading {
    let reading: Reading = Arc::new(Mutex::new(None));
    let out = reading.clone();
    let spawned = std::thread::Builder::new()
        .name("store-health".into())
        .spawn(move || {
            loop {
                let runtime = shared.runtime();
                let Some(now) = runtime.core.store().health() else {
                    return;
                };
                drop(runtime);
                *out.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(now.map_err(|e| e.to_string()));
                std::thread::sleep(REFRESH);
            }
        });
    if let Err(e) = spawned {
        // No reading is shown (mfa_store_up absent), which a scrape's alert notices.
        eprintln!("mfa-radiusd: cannot start the store health thread: {e}");
    }
    reading
}

/// The reading, at each scrape.
#[derive(Debug)]
pub struct HealthCollector(pub Reading);

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: i64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(v);
    let e = encoder.encode_descriptor(name, help, None, g.metric_type())?;
    g.encode(e)
}

impl Collector for HealthCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let reading = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(reading) = reading else {
            return Ok(());
        };
        let h = reading.as_ref().ok();
        gauge(
            &mut encoder,
            "mfa_store_up",
            "1 when the last reading of the database server (every few seconds) succeeded",
            i64::from(h.is_some()),
        )?;
        gauge(
            &mut encoder,
            "mfa_store_primary",
            "1 when the database server in use is a primary (takes writes; pg_is_in_recovery() false)",
            i64::from(h.is_some_and(|h| h.primary)),
        )?;
        let Some(h) = h else { return Ok(()) };
        let mut fam = encoder.encode_descriptor(
            "mfa_store_server",
            "The database server in use (host:port), as last read",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(1i64).encode(fam.encode_family(&[("server", h.server.as_str())])?)?;
        if h.standbys.is_empty() {
            return Ok(());
        }
        let mut fam = encoder.encode_descriptor(
            "mfa_store_standby",
            "A standby streaming from the primary in use, by name and synchronous state (sync, quorum, potential, async; empty when the role may not read it)",
            None,
            MetricType::Gauge,
        )?;
        for s in &h.standbys {
            ConstGauge::new(1i64).encode(fam.encode_family(&[
                ("standby", s.name.as_str()),
                ("sync_state", s.sync_state.as_str()),
            ])?)?;
        }
        let mut fam = encoder.encode_descriptor(
            "mfa_store_standby_replay_lag_seconds",
            "Time from a commit on the primary to its replay on the standby (pg_stat_replication.replay_lag)",
            None,
            MetricType::Gauge,
        )?;
        for s in &h.standbys {
            if let Some(l) = s.replay_lag_seconds {
                ConstGauge::new(l).encode(fam.encode_family(&[("standby", s.name.as_str())])?)?;
            }
        }
        let mut fam = encoder.encode_descriptor(
            "mfa_store_standby_lag_bytes",
            "WAL bytes the standby has not replayed yet",
            None,
            MetricType::Gauge,
        )?;
        for s in &h.standbys {
            if let Some(b) = s.lag_bytes {
                ConstGauge::new(b).encode(fam.encode_family(&[("standby", s.name.as_str())])?)?;
            }
        }
        Ok(())
    }
}
