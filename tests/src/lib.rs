//! Helpers for the end-to-end tests: find the built binaries, make a throw-away site
//! (config + store in a temp dir), get codes from `oathtool` (an independent TOTP
//! implementation), and keep clear of 30-second step boundaries.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

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
    let s = mfa_common::TotpSecret::generate().unwrap();
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
