//! Helpers for the end-to-end tests: find the built binaries, make a throw-away site
//! (config + store in a temp dir), get codes from `oathtool` (an independent TOTP
//! implementation), and keep clear of 30-second step boundaries.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// `[directory]`'s peers: a Samba AD DC and slapd on loopback addresses of their own.
pub mod directory;
/// Network namespaces, veth pairs and processes inside them (real VPN peers).
pub mod netns;
/// PAM: pamtester, service files, test users, syslog capture.
pub mod pam;
/// Push approval as the front ends meet it: the portal's sender loop and a registered phone,
/// through the core.
pub mod phone;
/// The self-service portal: a running mfa-portal and an HTTP client for it.
pub mod portal;
/// Push approval: web-push-testing as the push service, sign-in requests through the core.
pub mod push;
/// RADIUS: a running mfa-radiusd, radclient, the test site's RADIUS config.
pub mod radius;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The directory holding the workspace's built binaries (`target/debug`), found from the
/// running test executable (`target/debug/deps/<test>`). The test script builds the
/// workspace before running the tests.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_path_buf()
}

/// Path of a built binary; fails with a clear message when it was not built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is not built: run `cargo build --workspace` before the tests (scripts/test.sh does)",
        p.display()
    );
    p
}

/// Fails loudly when a peer tool is missing: a test that cannot run must not pass.
pub fn require_tool(name: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is not installed: run scripts/test.sh as root once to install the test peers"
    );
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Sleeps into a fresh 30 s step when fewer than `margin` seconds are left in this one, so a
/// test that computes codes for neighbouring steps verifies them in the same step.
pub fn avoid_step_boundary(margin: i64) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let into = (now.as_secs() % 30) as i64;
    if 30 - into <= margin {
        let wait = Duration::from_secs((30 - into) as u64)
            - Duration::from_nanos(now.subsec_nanos() as u64)
            + Duration::from_millis(200);
        std::thread::sleep(wait);
    }
}

/// `oathtool --totp -b KEY -N @time`: the code for `time` from an independent implementation.
pub fn oathtool(key: &str, time: i64) -> String {
    oathtool_window(key, time, 0).remove(0)
}

/// The code for now + `steps` 30 s steps (negative: earlier), from oathtool.
pub fn totp(key: &str, steps: i64) -> String {
    oathtool(key, unix_now() + steps * 30)
}

/// The codes of the `1 + after` steps from `time` on, in one oathtool run (`-w after`).
fn oathtool_window(key: &str, time: i64, after: i64) -> Vec<String> {
    require_tool("oathtool");
    let out = Command::new("oathtool")
        .args(["--totp", "-b", key, "-N", &format!("@{time}")])
        .args(["-w", &after.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "oathtool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let codes: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    assert_eq!(codes.len() as i64, 1 + after, "oathtool printed {codes:?}");
    codes
}

/// How many steps either side of now [`wrong_code`] keeps clear of: the largest `[totp]
/// skew` the configuration accepts (10), plus one for a step boundary the test may cross
/// between picking the code and sending it.
const WRONG_CODE_STEPS: i64 = 11;

/// A 6-digit code that is wrong for `key`: none of the codes of the steps from now - 11 to
/// now + 11, so it is outside the window under any skew a site may configure, and a test
/// that sends it can never be let in by accident.
pub fn wrong_code(key: &str) -> String {
    let start = unix_now() - WRONG_CODE_STEPS * 30;
    let valid = oathtool_window(key, start, 2 * WRONG_CODE_STEPS);
    (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !valid.contains(c))
        .unwrap()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh random base32 key (160 bits), so every test case has its own user and key and
/// never waits for the next step.
pub fn fresh_key() -> String {
    let s = mfa_core::TotpSecret::generate().unwrap();
    s.to_base32().to_string()
}

/// A name (user, PAM service) that no other test of this run, nor of a run in another
/// process, uses: `prefix`, the process id and a counter.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A throw-away site: a temp dir with `mfa.toml` and the store in it.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

/// The configuration the tests start from; `extra` is appended (later keys in the same
/// table must not repeat these).
pub const BASE_CONFIG: &str = r#"# test site
[store]
path = "mfa.db"
key_file = "mfa.key"

[totp]
issuer = "Test"

[policy]
# office networks
trusted_networks = ["127.0.0.1/32", "10.0.0.0/8", "2001:db8:10::/48"]
"#;

impl Site {
    pub fn new(extra: &str) -> Self {
        Self::with_config(&format!("{BASE_CONFIG}{extra}"))
    }

    /// The config is written 0600, as an administrator keeps a file that may hold a RADIUS
    /// secret (the programs refuse one that others can read; later writes keep the mode).
    pub fn with_config(text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("mfa.toml");
        write_private(&config, text);
        Site { dir, config }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("mfa.db")
    }

    /// The store key file of [`BASE_CONFIG`] (and the default next to `mfa.db`).
    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("mfa.key")
    }

    /// Runs `mfactl --config <site> args...`.
    pub fn mfactl(&self, args: &[&str]) -> Output {
        Command::new(bin("mfactl"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap()
    }

    /// Enrols `user` with `key` as scripted provisioning does.
    pub fn enroll(&self, user: &str, key: &str) {
        let out = self.mfactl(&["enroll", user, "--secret", key, "--no-confirm"]);
        assert!(out.status.success(), "enroll failed: {}", text(&out));
    }
}

/// Writes a new file, mode 0600 (a config with an inline secret, a secret file).
pub fn write_private(path: &Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Sets a file's or directory's mode (`chmod`).
pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// stdout and stderr of a finished command, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn code_of(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// The 8-digit one-time codes `mfactl temp-access` and `backup-codes` print (`1234 5678` at
/// the end of a line), joined.
pub fn printed_codes(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            match words.as_slice() {
                [.., a, b]
                    if a.len() == 4
                        && b.len() == 4
                        && a.chars().chain(b.chars()).all(|c| c.is_ascii_digit()) =>
                {
                    Some(format!("{a}{b}"))
                }
                _ => None,
            }
        })
        .collect()
}

/// xorshift64: deterministic pseudo-random numbers for the tests that throw hostile input at
/// the daemon (seeded, so a failure can be run again).
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// A throw-away PostgreSQL cluster for the tests: `initdb` and `pg_ctl` from Debian's
/// `postgresql` package, in a temp dir, listening on 127.0.0.1 at a free port (and a Unix
/// socket in the temp dir), `trust` for every role on loopback except `pwuser`, who needs
/// its password (scram-sha-256). Run as root, the server runs as the `postgres` user
/// (initdb refuses root). Stopped on drop, also when the test panics.
pub struct PgCluster {
    dir: tempfile::TempDir,
    /// The store key file every node of [`PgCluster::store_toml`] shares (in a directory
    /// of the test's own user: the cluster's directory belongs to `postgres`).
    keys: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    /// `runuser -u postgres --` when run as root.
    as_user: Vec<String>,
    /// `-c fsync=off` and friends for the tests; durable settings for the benchmark.
    fast: bool,
    /// A primary or standby of a replicated pair ([`PgCluster::start_replicated`]):
    /// `synchronous_commit` is left to the cluster's configuration (not forced off), and
    /// the server names itself `cluster_name` (the standby's `application_name`).
    replicated: Option<String>,
}

/// The password of the `pwuser` role in every [`PgCluster`].
pub const PG_PASSWORD: &str = "s3cret-pw";

impl PgCluster {
    /// Where Debian puts the server binaries (the newest version installed).
    pub fn bin_dir() -> PathBuf {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
            .unwrap_or_default();
        versions.retain(|p| p.join("initdb").is_file());
        versions.sort();
        versions.pop().unwrap_or_else(|| {
            panic!(
                "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run scripts/test.sh as root once to install the test peers"
            )
        })
    }

    pub fn start() -> Self {
        Self::start_with(true)
    }

    /// `fast`: no fsync (tests); otherwise PostgreSQL's durable defaults (the benchmark).
    pub fn start_with(fast: bool) -> Self {
        Self::start_inner(fast, None)
    }

    /// The primary of a replicated pair: replication connections from loopback allowed,
    /// `synchronous_commit` as configured (see [`PgCluster::standby`] and
    /// [`PgCluster::require_sync_standby`]).
    pub fn start_replicated() -> Self {
        Self::start_inner(true, Some("mfa_primary".into()))
    }

    fn start_inner(fast: bool, replicated: Option<String>) -> Self {
        let bin = Self::bin_dir();
        let root = is_root();
        let dir = tempfile::Builder::new().prefix("mfa-pg").tempdir().unwrap();
        let as_user: Vec<String> = if root {
            ["runuser", "-u", "postgres", "--"]
                .map(String::from)
                .to_vec()
        } else {
            Vec::new()
        };
        if root {
            let st = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(st.success(), "chown of the cluster dir to postgres failed");
        }
        let data = dir.path().join("data");
        let out = Self::cmd(&as_user, &bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "mfa",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb failed: {}", text(&out));
        let hba = "local all all trust\nhost all pwuser 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 trust\nlocal replication all trust\nhost replication all 127.0.0.1/32 trust\n";
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        let port = free_tcp_port();
        let c = PgCluster {
            dir,
            keys: tempfile::Builder::new()
                .prefix("mfa-pg-key")
                .tempdir()
                .unwrap(),
            bin,
            port,
            as_user,
            fast,
            replicated,
        };
        c.pg_start();
        c.psql(
            "postgres",
            &format!("CREATE ROLE pwuser LOGIN PASSWORD '{PG_PASSWORD}'"),
        );
        c
    }

    fn cmd(as_user: &[String], prog: &Path) -> Command {
        match as_user.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(prog);
                c
            }
            None => Command::new(prog),
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `pg_ctl start` (again, after [`PgCluster::stop`]); waits until it accepts connections.
    pub fn pg_start(&self) {
        let mut opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        match (&self.replicated, self.fast) {
            (None, true) => {
                opts.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
            }
            // A kill -9 of the server keeps what it wrote in the OS's cache, so fsync stays
            // off; commits wait for the standby as configured.
            (Some(name), fast) => {
                opts.push_str(&format!(" -c cluster_name={name}"));
                if fast {
                    opts.push_str(" -c fsync=off");
                }
            }
            (None, false) => {}
        }
        let out = Self::cmd(&self.as_user, &self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "30", "-o", &opts, "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            text(&out),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    /// `pg_ctl stop -m fast`: every session is ended at once, as when the server goes down.
    pub fn stop(&self) {
        let out = Self::cmd(&self.as_user, &self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-m", "fast", "stop"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl stop failed: {}", text(&out));
    }

    /// Runs SQL through `psql` as the superuser `mfa`; panics with psql's words on error.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "mfa",
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "psql {sql:?} failed: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A new, empty database with a unique name; returns its name.
    pub fn create_db(&self) -> String {
        let name = unique("db");
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        name
    }

    /// The URL of `db` for the superuser `mfa` (trust on loopback).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://mfa@127.0.0.1:{}/{db}", self.port)
    }

    /// The store key file every node shares ([`PgCluster::store_toml`]); made by the first
    /// `mfactl init` (or daemon) that opens a store with it.
    pub fn key_file(&self) -> PathBuf {
        self.keys.path().join("mfa.key")
    }

    /// The `[store]` table for `db`, as the tests write it: no password, no TLS, the
    /// cluster's shared key file.
    pub fn store_toml(&self, db: &str) -> String {
        self.store_toml_keyed(db, &self.key_file())
    }

    /// [`PgCluster::store_toml`] with another key file.
    pub fn store_toml_keyed(&self, db: &str, key_file: &Path) -> String {
        format!(
            "[store]\nurl = \"{}\"\nsslmode = \"disable\"\nkey_file = \"{}\"\n",
            self.url(db),
            key_file.display()
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A streaming standby of this (replicated) cluster: `pg_basebackup -R` into a temp
    /// dir, started on its own port; its `cluster_name` (so its `application_name` on the
    /// primary) is `name`.
    pub fn standby(&self, name: &str) -> PgCluster {
        let dir = tempfile::Builder::new().prefix("mfa-pg").tempdir().unwrap();
        if !self.as_user.is_empty() {
            let st = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(st.success(), "chown of the standby dir to postgres failed");
        }
        let data = dir.path().join("data");
        let out = Self::cmd(&self.as_user, &self.bin.join("pg_basebackup"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "mfa"])
            .arg("-D")
            .arg(&data)
            .args(["-R", "-X", "stream", "--no-sync", "-c", "fast"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_basebackup failed: {}", text(&out));
        let c = PgCluster {
            dir,
            keys: tempfile::Builder::new()
                .prefix("mfa-pg-key")
                .tempdir()
                .unwrap(),
            bin: self.bin.clone(),
            port: free_tcp_port(),
            as_user: self.as_user.clone(),
            fast: self.fast,
            replicated: Some(name.into()),
        };
        c.pg_start();
        c
    }

    /// Makes every commit wait until the standby `name` has it
    /// (`synchronous_standby_names`, `synchronous_commit = on`), then waits until the
    /// primary reports that standby as `sync`.
    pub fn require_sync_standby(&self, name: &str) {
        self.psql(
            "postgres",
            &format!("ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 ({name})'"),
        );
        self.psql("postgres", "ALTER SYSTEM SET synchronous_commit = on");
        self.psql("postgres", "SELECT pg_reload_conf()");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let state = self.psql(
                "postgres",
                &format!(
                    "SELECT sync_state FROM pg_stat_replication WHERE application_name = '{name}'"
                ),
            );
            if state == "sync" {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "standby {name} never became synchronous ({state:?})"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// kill -9 of the postmaster and every process it started, as when the host dies.
    pub fn kill9(&self) {
        let pidfile = std::fs::read_to_string(self.data().join("postmaster.pid")).unwrap();
        let pid = pidfile.lines().next().unwrap_or("").trim().to_string();
        assert!(!pid.is_empty(), "no postmaster pid");
        let mut pids = vec![pid.clone()];
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            // pid (comm) state ppid ...: the fields after the last ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_string));
            if ppid.as_deref() == Some(pid.as_str()) {
                pids.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        let st = Command::new("kill").arg("-9").args(&pids).status().unwrap();
        assert!(st.success(), "kill -9 {pids:?} failed");
    }

    /// `pg_ctl promote -w`: the standby becomes a primary; returns once it accepts writes.
    pub fn promote(&self) {
        let out = Self::cmd(&self.as_user, &self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-t", "60", "promote"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl promote failed: {}",
            text(&out)
        );
    }

    /// Turns TLS on (a test CA made with `openssl`, a server certificate for 127.0.0.1 and
    /// localhost) and restarts the server; returns the CA's PEM file and another CA's.
    pub fn enable_tls(&self) -> (PathBuf, PathBuf) {
        require_tool("openssl");
        let d = self.dir.path().join("tls");
        std::fs::create_dir(&d).unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&d)
                .output()
                .unwrap();
            assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for ca in ["ca", "other-ca"] {
            let (key, pem, subj) = (
                format!("{ca}.key"),
                format!("{ca}.pem"),
                format!("/CN={ca}"),
            );
            let mut a = vec!["req", "-x509"];
            a.extend(ec);
            a.extend(["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj]);
            run(&a);
        }
        let mut a = vec!["req"];
        a.extend(ec);
        a.extend([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        run(&a);
        std::fs::write(
            d.join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ]);
        if !self.as_user.is_empty() {
            let st = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&d)
                .status()
                .unwrap();
            assert!(st.success());
        }
        let st = Command::new("chmod")
            .arg("600")
            .arg(d.join("server.key"))
            .status()
            .unwrap();
        assert!(st.success());
        let conf = format!(
            "\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            d.join("server.pem").display(),
            d.join("server.key").display()
        );
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data().join("postgresql.conf"))
            .unwrap();
        std::io::Write::write_all(&mut f, conf.as_bytes()).unwrap();
        self.stop();
        self.pg_start();
        (d.join("ca.pem"), d.join("other-ca.pem"))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = Self::cmd(&self.as_user, &self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-m", "immediate", "stop"])
            .output();
    }
}

/// Whether this process runs as root (from `id -u`, keeping this crate free of unsafe).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A free loopback TCP port (bound and released: the server under test takes it a moment
/// later).
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free loopback UDP port, the same way.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `cmd` (stdin and stdout closed) with its standard error collected, line by line,
/// into the returned buffer: how the tests read a daemon's log while it runs.
pub fn spawn_logged(
    mut cmd: std::process::Command,
) -> (
    std::process::Child,
    std::sync::Arc<std::sync::Mutex<String>>,
) {
    use std::io::BufRead;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    if let Some(err) = child.stderr.take() {
        let l2 = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                if let Ok(mut g) = l2.lock() {
                    g.push_str(&line);
                    g.push('\n');
                }
            }
        });
    }
    (child, log)
}
