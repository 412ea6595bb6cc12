//! The server in use and its replication, for `mfactl status` and mfa-radiusd's metrics
//! (docs/FAILOVER.md): read on demand on a pooled connection, never by a login.

use mfa_store::{StandbyHealth, StoreError, StoreHealth};

use crate::error::Context;
use crate::pool::PgStore;

impl PgStore {
    pub(crate) fn read_health(&self) -> Result<StoreHealth, StoreError> {
        self.run(|c| {
            let row = c
                .client
                .query_one(
                    "SELECT host(inet_server_addr()), inet_server_port(), pg_is_in_recovery()",
                    &[],
                )
                .ctx("reading the server's role")?;
            let host: Option<String> = row.try_get(0).ctx("reading the server's address")?;
            let port: Option<i32> = row.try_get(1).ctx("reading the server's port")?;
            let recovery: bool = row.try_get(2).ctx("reading the server's role")?;
            let server = match (host, port) {
                (Some(h), Some(p)) if h.contains(':') => format!("[{h}]:{p}"),
                (Some(h), Some(p)) => format!("{h}:{p}"),
                // A Unix socket: the URL's own words.
                _ => self.target.clone(),
            };
            let mut health = StoreHealth {
                server,
                primary: !recovery,
                standbys: Vec::new(),
                standbys_readable: true,
            };
            if health.primary {
                // Without pg_monitor (or superuser) the other columns read as NULL.
                let rows = c
                    .client
                    .query(
                        "SELECT application_name, sync_state,
                                EXTRACT(epoch FROM replay_lag)::float8,
                                pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8
                           FROM pg_stat_replication ORDER BY application_name",
                        &[],
                    )
                    .ctx("reading pg_stat_replication")?;
                for r in rows {
                    let sync_state: Option<String> =
                        r.try_get(1).ctx("reading pg_stat_replication")?;
                    if sync_state.is_none() {
                        health.standbys_readable = false;
                    }
                    health.standbys.push(StandbyHealth {
                        name: r.try_get(0).ctx("reading pg_stat_replication")?,
                        sync_state: sync_state.unwrap_or_default(),
                        replay_lag_seconds: r.try_get(2).ctx("reading pg_stat_replication")?,
                        lag_bytes: r.try_get(3).ctx("reading pg_stat_replication")?,
                    });
                }
            }
            Ok(health)
        })
    }
}
