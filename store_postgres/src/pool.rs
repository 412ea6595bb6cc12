//! The store's connections: the URL and password file, a small pool of idle clients with
//! their prepared statements, and a reconnect after a broken one.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mfa_config::{SslMode, StoreConfig};
use mfa_store::{OpenMode, StoreError};
use postgres::error::SqlState;
use postgres::{Client, NoTls, Statement};

use crate::error::{Context, PgError, broken, describe, retryable};
use crate::rows::USER_COLUMNS;
use crate::tls::tls_connector;

/// The start of PostgreSQL's warning when a COMMIT stops waiting for the synchronous
/// standby (`SyncRepWaitForLSN`): "...; the transaction has already committed locally, but
/// might not have been replicated to the standby". English: the server's `lc_messages`.
pub(crate) const SYNC_WAIT_CANCELLED: &str = "canceling wait for synchronous replication";

/// Idle connections kept.
pub(crate) const POOL: usize = 16;

pub struct PgStore {
    pub(crate) config: postgres::Config,
    pub(crate) tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// `user@host:port/db` for messages: never a password.
    pub(crate) target: String,
    pub(crate) pool: Mutex<Vec<Conn>>,
    /// The connection that LISTENs for new push requests (`Store::wait_for_push`): the
    /// portal's delivery loop only.
    pub(crate) listener: Mutex<Option<Client>>,
    /// How many times the server said it stopped waiting for the synchronous standby
    /// (see [`crate::tx::commit_replicated`]).
    pub(crate) unconfirmed: Arc<AtomicU64>,
    /// `host:port` of the server the last new connection reached (of the URL's hosts),
    /// named in errors: after a failover, the one that failed.
    pub(crate) server: Mutex<Option<String>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// A connection and its prepared statements.
pub(crate) struct Conn {
    pub(crate) client: Client,
    pub(crate) st: Statements,
}

pub(crate) struct Statements {
    pub(crate) user: Statement,
    pub(crate) lock: Statement,
    pub(crate) lock_users: Statement,
    pub(crate) codes: Statement,
    pub(crate) sources: Statement,
    pub(crate) unlocks: Statement,
    pub(crate) upsert: Statement,
    pub(crate) delete_codes: Statement,
    pub(crate) insert_codes: Statement,
    pub(crate) delete_sources: Statement,
    pub(crate) insert_sources: Statement,
    pub(crate) delete_unlocks: Statement,
    pub(crate) insert_unlocks: Statement,
    pub(crate) insert_audit: Statement,
    pub(crate) store_key: Statement,
    pub(crate) names_checked: Statement,
}

impl PgStore {
    /// Connects to the database `cfg.url` names, creates the schema (`OpenMode::Create`,
    /// on an empty database) or checks it, and keeps the connection for the first call.
    pub fn open(cfg: &StoreConfig, mode: OpenMode) -> Result<Self, StoreError> {
        let url = cfg.url.as_deref().unwrap_or_default();
        let redacted = mfa_store::redact_url(url);
        let bad_url = |why: String| StoreError::Engine {
            context: format!("[store] url = {redacted:?}"),
            source: why.into(),
        };
        mfa_config::check_store_url(url).map_err(bad_url)?;
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| bad_url(describe(&e)))?;
        if config.get_hosts().is_empty() {
            return Err(bad_url("names no host".into()));
        }
        if config.get_user().is_none() {
            return Err(bad_url(
                "names no role (postgres://ROLE@host:port/database)".into(),
            ));
        }
        let target = target_of(&config);
        if let Some(pf) = &cfg.password_file {
            config.password(read_password(pf)?.as_slice());
        }
        // A COMMIT whose wait for the synchronous standby is cancelled (the statement
        // timeout below, while the standby is away) returns as if all went well, with only
        // this warning: counted, so the commit is refused (`tx::commit_replicated`).
        let unconfirmed = Arc::new(AtomicU64::new(0));
        let seen = unconfirmed.clone();
        config.notice_callback(move |n| {
            if n.message().starts_with(SYNC_WAIT_CANCELLED) {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        });
        let timeout = cfg.busy_timeout.0.max(Duration::from_secs(1));
        config
            .connect_timeout(timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .application_name("mfa")
            // A row lock held past the busy timeout fails the call (Busy) instead of
            // stalling every login behind it; a stuck statement is cancelled.
            .options(&format!(
                "-c lock_timeout={}ms -c statement_timeout={}ms -c idle_in_transaction_session_timeout={}ms",
                timeout.as_millis(),
                timeout.as_millis().saturating_mul(6),
                timeout.as_millis().saturating_mul(6),
            ));
        let tls = match cfg.sslmode {
            SslMode::Disable => {
                config.ssl_mode(postgres::config::SslMode::Disable);
                None
            }
            mode @ (SslMode::Require | SslMode::VerifyFull) => {
                config.ssl_mode(postgres::config::SslMode::Require);
                Some(tls_connector(mode, cfg.ca_file.as_deref())?)
            }
        };
        let store = Self {
            config,
            tls,
            target,
            pool: Mutex::new(Vec::new()),
            listener: Mutex::new(None),
            unconfirmed,
            server: Mutex::new(None),
        };
        let mut client = store.connect_client()?;
        store.migrate(&mut client, mode)?;
        let conn = store.prepare(client)?;
        store.put_back(conn);
        Ok(store)
    }

    /// `user@host:port/db`, for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    pub(crate) fn connect_client(&self) -> Result<Client, StoreError> {
        let mut r = match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(NoTls),
        };
        if let Ok(client) = &mut r {
            // Which of the URL's hosts took the connection: the postgres crate does not
            // say, the server does. Once per connection, never per login.
            if let Ok(row) = client.query_one(
                "SELECT host(inet_server_addr()) || ':' || inet_server_port()",
                &[],
            ) && let Ok(Some(server)) = row.try_get::<_, Option<String>>(0)
                && let Ok(mut s) = self.server.lock()
            {
                *s = Some(server);
            }
        }
        r.map_err(|e| {
            let hint = match e.code() {
                Some(c) if *c == SqlState::INVALID_PASSWORD => {
                    " (check [store] password_file and the role's password)"
                }
                Some(c) if *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
                    " (the server's pg_hba.conf does not let this role in from here)"
                }
                Some(c) if *c == SqlState::UNDEFINED_DATABASE => {
                    " (create it with createdb, owned by the role in the URL)"
                }
                _ => "",
            };
            StoreError::Engine {
                context: format!("connecting to the PostgreSQL store at {}", self.target),
                source: format!("{}{hint}", describe(&e)).into(),
            }
        })
    }

    pub(crate) fn prepare(&self, mut client: Client) -> Result<Conn, StoreError> {
        let st = prepare_statements(&mut client).map_err(|f| self.classify(f))?;
        Ok(Conn { client, st })
    }

    pub(crate) fn connect(&self) -> Result<Conn, StoreError> {
        let client = self.connect_client()?;
        self.prepare(client)
    }

    /// `user@hosts/db`, and the server of the last connection when known: what an error
    /// names.
    pub(crate) fn where_(&self) -> String {
        match self.server.lock().ok().and_then(|s| s.clone()) {
            Some(s) => format!("{} (server {s})", self.target),
            None => self.target.clone(),
        }
    }

    pub(crate) fn classify(&self, f: PgError) -> StoreError {
        match f {
            PgError::Store(e) => e,
            PgError::Pg(what, e) => {
                let text = describe(&e);
                match e.code() {
                    Some(c)
                        if *c == SqlState::LOCK_NOT_AVAILABLE
                            || *c == SqlState::QUERY_CANCELED
                            || retryable(&e) =>
                    {
                        StoreError::Busy {
                            source: format!("{what} on {}: {text}", self.where_()).into(),
                        }
                    }
                    _ => StoreError::Engine {
                        context: format!("{what} on the PostgreSQL store {}", self.where_()),
                        source: text.into(),
                    },
                }
            }
        }
    }

    /// Runs `f` on a pooled connection (or a new one); a connection that failed below the
    /// SQL level is dropped, so the next call connects afresh.
    pub(crate) fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, PgError>,
    ) -> Result<T, PgError> {
        let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
        let mut conn = match pooled {
            Some(c) if !c.client.is_closed() => c,
            _ => self.connect()?,
        };
        let out = f(&mut conn);
        let keep = match &out {
            Err(PgError::Pg(_, e)) => !broken(e),
            _ => true,
        };
        if keep && !conn.client.is_closed() {
            self.put_back(conn);
        }
        out
    }

    pub(crate) fn run<T>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, PgError>,
    ) -> Result<T, StoreError> {
        self.with_conn(f).map_err(|e| self.classify(e))
    }

    pub(crate) fn put_back(&self, conn: Conn) {
        if let Ok(mut p) = self.pool.lock()
            && p.len() < POOL
        {
            p.push(conn);
        }
    }
}

/// `user@host:port[,host:port...]/db` of a parsed URL: every host of a multi-host URL, so
/// an error while none answers names all the servers that were tried.
pub(crate) fn target_of(c: &postgres::Config) -> String {
    let ports = c.get_ports();
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                postgres::config::Host::Tcp(h) => h.clone(),
                postgres::config::Host::Unix(p) => p.display().to_string(),
            };
            // One port for every host, or one per host (the postgres crate's rule).
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    format!(
        "{}@{}/{}",
        c.get_user().unwrap_or(""),
        hosts.join(","),
        c.get_dbname().or(c.get_user()).unwrap_or("")
    )
}

pub(crate) fn read_password(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, StoreError> {
    let raw = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| StoreError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(e.kind(), format!("cannot read [store] password_file: {e}")),
    })?);
    let line = raw.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(StoreError::Engine {
            context: format!("[store] password_file {}", path.display()),
            source: "is empty (the password is its first line)".into(),
        });
    }
    Ok(zeroize::Zeroizing::new(line.to_vec()))
}

pub(crate) fn prepare_statements(c: &mut Client) -> Result<Statements, PgError> {
    let p = |c: &mut Client, sql: &str| c.prepare(sql).ctx("preparing a statement");
    Ok(Statements {
        user: p(
            c,
            &format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1"),
        )?,
        lock: p(
            c,
            "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k",
        )?,
        lock_users: p(
            c,
            &format!(
                "SELECT {USER_COLUMNS} FROM users WHERE name = ANY($1::text[]) ORDER BY name FOR UPDATE"
            ),
        )?,
        codes: p(
            c,
            "SELECT \"user\", kind, salt, hash, created, expires, uses_left, scheme FROM one_time_codes WHERE \"user\" = ANY($1::text[]) ORDER BY \"user\", id",
        )?,
        sources: p(
            c,
            "SELECT \"user\", source, failures, first_failure, locked_until FROM source_failures WHERE \"user\" = ANY($1::text[]) ORDER BY \"user\", id",
        )?,
        unlocks: p(
            c,
            "SELECT \"user\", ip, created, expires FROM unlocks WHERE \"user\" = ANY($1::text[]) ORDER BY \"user\", id",
        )?,
        upsert: p(
            c,
            &format!(
                "INSERT INTO users ({USER_COLUMNS}, name_key) SELECT * FROM unnest($1::text[], $2::bytea[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::text[], $17::text[], $18::text[])
                 ON CONFLICT (name) DO UPDATE SET secret=excluded.secret, algorithm=excluded.algorithm, digits=excluded.digits,
                   period=excluded.period, mfa_created=excluded.mfa_created, mfa_changed=excluded.mfa_changed,
                   first_seen=excluded.first_seen, grace_started=excluded.grace_started, last_step=excluded.last_step,
                   failures=excluded.failures, first_failure=excluded.first_failure, locked_until=excluded.locked_until,
                   login_count=excluded.login_count, last_login=excluded.last_login, last_ip=excluded.last_ip,
                   last_outcome=excluded.last_outcome"
            ),
        )?,
        delete_codes: p(
            c,
            "DELETE FROM one_time_codes WHERE \"user\" = ANY($1::text[])",
        )?,
        insert_codes: p(
            c,
            "INSERT INTO one_time_codes (\"user\", kind, salt, hash, created, expires, uses_left, scheme) SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])",
        )?,
        delete_sources: p(
            c,
            "DELETE FROM source_failures WHERE \"user\" = ANY($1::text[])",
        )?,
        insert_sources: p(
            c,
            "INSERT INTO source_failures (\"user\", source, failures, first_failure, locked_until) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])",
        )?,
        delete_unlocks: p(c, "DELETE FROM unlocks WHERE \"user\" = ANY($1::text[])")?,
        insert_unlocks: p(
            c,
            "INSERT INTO unlocks (\"user\", ip, created, expires) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])",
        )?,
        insert_audit: p(
            c,
            "INSERT INTO audit (time, \"user\", service, client_ip, decision, reason, detail) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])",
        )?,
        store_key: p(c, "SELECT key_id FROM store_key WHERE id = 1")?,
        names_checked: p(c, "SELECT value FROM meta WHERE key = $1")?,
    })
}
