//! A closed-loop RADIUS load generator: keeps a fixed number of Access-Requests in flight,
//! checks every reply (Response Authenticator, Message-Authenticator, expected code) and
//! reports requests/s and latency percentiles. radclient's `-p` batches cannot saturate a
//! fast server; this can.
//!
//!   radius-loadgen gen-users COUNT USERS.csv FREERADIUS_USERS|-
//!   radius-loadgen ga-files USERS.csv DIR       (pam_google_authenticator secret files)
//!   radius-loadgen wait --target ADDR --secret S [--timeout SECS]
//!   radius-loadgen run --target ADDR[,ADDR...] --secret S --users USERS.csv
//!       [--kind totp|pap|status] [--duration SECS] [--threads N] [--window N]
//!       [--mix ACCEPT,WRONG,TRUSTED] [--rate REQ_PER_S] [--state FILE] [--label NAME]
//!   radius-loadgen check --target ADDR --secret S --users USERS.csv [--kind totp|pap]
//!   radius-loadgen until-accept --target ADDR[,ADDR...] --secret S --users USERS.csv
//!       --since UNIX_NS [--every MS] [--timeout SECS]
//!   radius-loadgen replay --target ADDR --secret S --users USERS.csv --log ACCEPTS
//!       [--before UNIX_NS] [--window N]
//!
//! Several targets (two daemons on one store) share the threads round-robin and one user
//! picker, so no two servers are ever sent the same step of a user. `--rate` paces the
//! sends (open loop, for the soak) instead of answering each reply with a new request.
//! `check` shows one server a wrong code, a right one and the same right one again (Reject,
//! Accept, Reject for a TOTP server; a PAP server has no replay rule, so the third is not
//! judged there), with the probe user `gen-users` writes last. `until-accept` measures a
//! failover: a trusted-network login of the probe user (an Access-Accept only once the store
//! committed its audit row), one in flight, to the targets in turn, until one is accepted;
//! prints the seconds from `--since` (Unix nanoseconds: `date +%s%N` at the kill) to that
//! accept.
//!
//! `run --accept-log FILE` writes one line per accepted code (`unix_ns,user,code,step`: when
//! the Access-Accept arrived); `replay` sends each of those codes again (those accepted before
//! `--before`, e.g. a kill -9 of the server) and counts how many are accepted a second time:
//! after a crash and a restart on the same store, a durable store accepts none.
//!
//! `totp` sends TOTP codes as User-Password (mfa-radiusd in code-only mode): accepted codes
//! over the first 80% of users (each step used once per user), wrong codes over the other
//! 20%, and trusted-network logins (Calling-Station-Id in 10.0.0.0/8) without a code.
//! `pap` sends each user's fixed password (FreeRADIUS users file): right, wrong, and right
//! again for the "trusted" share, so both servers see the same packet sizes and mix.

use std::io::Write;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use mfa_radius_proto::{AttrType, Builder, Code, Packet, VerifyError, hide_password};
use sha1::Sha1;

const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn b32_encode(b: &[u8]) -> String {
    let (mut out, mut acc, mut bits) = (String::new(), 0u32, 0);
    for &x in b {
        acc = (acc << 8) | u32::from(x);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(B32[((acc >> bits) & 31) as usize]));
        }
    }
    out
}

fn b32_decode(s: &str) -> Option<Vec<u8>> {
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for c in s.bytes() {
        let v = B32.iter().position(|&a| a == c)? as u32;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// RFC 6238 with SHA1, 6 digits.
fn totp(key: &[u8], step: u64) -> String {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = usize::from(h[19] & 0xf);
    let bin = u32::from_be_bytes([h[off] & 0x7f, h[off + 1], h[off + 2], h[off + 3]]);
    format!("{:06}", bin % 1_000_000)
}

fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn now_step() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 30)
        .unwrap_or(0)
}

struct User {
    name: String,
    key: Vec<u8>,
    /// The FreeRADIUS password: fixed per user.
    pap: String,
}

fn load_users(path: &str) -> Vec<User> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| die(&format!("{path}: {e}")));
    text.lines()
        .filter(|l| !l.starts_with("user,") && !l.is_empty())
        .map(|l| {
            let (name, key) = l.split_once(',').unwrap_or_else(|| die("bad users line"));
            let raw = b32_decode(key).unwrap_or_else(|| die("bad base32"));
            User {
                name: name.into(),
                pap: key[..12].to_lowercase(),
                key: raw,
            }
        })
        .collect()
}

fn die(msg: &str) -> ! {
    eprintln!("radius-loadgen: {msg}");
    std::process::exit(2)
}

/// The user `check` probes with: written last, never handed out by a run.
const PROBE: &str = "probe";

fn gen_users(count: usize, csv: &str, fr: &str) {
    let create = |p: &str| {
        std::io::BufWriter::new(
            std::fs::File::create(p).unwrap_or_else(|e| die(&format!("{p}: {e}"))),
        )
    };
    let mut c = create(csv);
    let mut f = (fr != "-").then(|| create(fr));
    let _ = writeln!(c, "user,secret");
    for i in 0..=count {
        let mut k = [0u8; 20];
        getrandom::fill(&mut k).unwrap_or_else(|_| die("no randomness"));
        let key = b32_encode(&k);
        let name = if i == count {
            PROBE.to_string()
        } else {
            format!("user{i:06}")
        };
        let _ = writeln!(c, "{name},{key}");
        if let Some(f) = f.as_mut() {
            let _ = writeln!(
                f,
                "{name}\tCleartext-Password := \"{}\"\n",
                key[..12].to_lowercase()
            );
        }
    }
}

/// One pam_google_authenticator secret file per user of USERS.csv, in the format its
/// `google-authenticator -t -d -w 3` writes: TOTP, DISALLOW_REUSE, one step of skew either
/// side (pam_mfa's default). Mode 0400: the module refuses a file others could read.
fn ga_files(csv: &str, dir: &str) {
    use std::os::unix::fs::PermissionsExt;
    let text = std::fs::read_to_string(csv).unwrap_or_else(|e| die(&format!("{csv}: {e}")));
    for l in text
        .lines()
        .filter(|l| !l.starts_with("user,") && !l.is_empty())
    {
        let (name, key) = l.split_once(',').unwrap_or_else(|| die("bad users line"));
        let path = format!("{dir}/{name}");
        let body = format!("{key}\n\" TOTP_AUTH\n\" DISALLOW_REUSE\n\" WINDOW_SIZE 3\n");
        std::fs::write(&path, body).unwrap_or_else(|e| die(&format!("{path}: {e}")));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400))
            .unwrap_or_else(|e| die(&format!("{path}: {e}")));
    }
}

/// Sends Status-Server every 10 ms until the server answers; prints the seconds it took
/// (the daemon's start time, measured from the caller's start). Exits 2 after --timeout.
fn wait_ready(args: &[String]) {
    let target = arg(args, "--target").unwrap_or_else(|| die("--target"));
    let secret = arg(args, "--secret")
        .unwrap_or_else(|| die("--secret"))
        .into_bytes();
    let timeout: f64 = arg(args, "--timeout")
        .and_then(|s| s.parse().ok())
        .unwrap_or(120.0);
    let start = Instant::now();
    let sock = UdpSocket::bind("0.0.0.0:0").unwrap_or_else(|e| die(&e.to_string()));
    sock.connect(&target)
        .unwrap_or_else(|e| die(&e.to_string()));
    sock.set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap_or_else(|e| die(&e.to_string()));
    let mut buf = [0u8; 4096];
    let mut id = 0u8;
    while start.elapsed().as_secs_f64() < timeout {
        let mut auth = [0u8; 16];
        getrandom::fill(&mut auth).unwrap_or_else(|_| die("no randomness"));
        if let Ok(pkt) =
            Builder::request(Code::STATUS_SERVER, id, true).encode_request(&secret, &auth)
        {
            let _ = sock.send(&pkt);
        }
        id = id.wrapping_add(1);
        if let Ok(n) = sock.recv(&mut buf)
            && Packet::parse(&buf[..n]).is_ok()
        {
            println!("{:.3}", start.elapsed().as_secs_f64());
            return;
        }
    }
    die(&format!("{target} did not answer within {timeout} s"));
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Accept,
    Wrong,
    Trusted,
}

struct Opts {
    /// Thread i sends to targets[i % len].
    targets: Vec<String>,
    secret: Vec<u8>,
    totp: bool,
    /// Status-Server only: the protocol path without the store or PAP.
    status: bool,
    duration: Duration,
    threads: usize,
    window: usize,
    mix: [u32; 3],
    /// Total sends per second over all threads (open loop); None: closed loop.
    rate: Option<f64>,
    /// Keep each accepted code for `--accept-log`.
    accept_log: bool,
}

/// Hands out users: accepted codes walk the first 80% round-robin, each user's steps in
/// increasing order (the replay rule allows each step once); wrong codes and trusted logins
/// pick from their own ranges.
struct Picker {
    users: Vec<User>,
    split: usize,
    next_accept: AtomicUsize,
    next_wrong: AtomicUsize,
    next_trusted: AtomicUsize,
    /// Next step each accept-pool user may use.
    steps: Vec<std::sync::atomic::AtomicU64>,
}

struct Job {
    kind: Kind,
    user: usize,
    password: Option<String>,
    csi: &'static str,
    /// The TOTP step of an accepted-code job's code (for `--accept-log`).
    step: u64,
}

impl Picker {
    fn job(&self, kind: Kind, totp_mode: bool, rnd: u64) -> Option<Job> {
        let n = self.users.len();
        match kind {
            Kind::Accept => {
                // A bounded search: when every user has used its steps (the run outlasted
                // the codes 80% of the users can supply), give up quickly instead of
                // stalling this thread, and count it as exhausted.
                for _ in 0..self.split.min(64) {
                    let u = self.next_accept.fetch_add(1, Ordering::Relaxed) % self.split;
                    if !totp_mode {
                        return Some(Job {
                            kind,
                            user: u,
                            password: Some(self.users[u].pap.clone()),
                            csi: "198.51.100.7",
                            step: 0,
                        });
                    }
                    let now = now_step();
                    // The current step first, then the next: a code of the step before would
                    // turn invalid when the 30 s boundary passes while it waits in a queue
                    // (seen: 10% of a slow server's accepted codes refused in one run).
                    // Claimed atomically: two threads on the same user must not send the
                    // same step (the second would be a replay).
                    let claimed =
                        self.steps[u].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                            let want = s.max(now);
                            (want <= now + 1).then_some(want + 1)
                        });
                    let Ok(prev) = claimed else { continue };
                    let want = prev.max(now);
                    return Some(Job {
                        kind,
                        user: u,
                        password: Some(totp(&self.users[u].key, want)),
                        csi: "198.51.100.7",
                        step: want,
                    });
                }
                None
            }
            Kind::Wrong => {
                let u = self.split
                    + self.next_wrong.fetch_add(1, Ordering::Relaxed) % (n - self.split).max(1);
                let u = u.min(n - 1);
                let pw = if totp_mode {
                    let now = now_step();
                    let valid: Vec<String> = (now - 1..=now + 1)
                        .map(|s| totp(&self.users[u].key, s))
                        .collect();
                    let mut c = rnd % 1_000_000;
                    loop {
                        let s = format!("{c:06}");
                        if !valid.contains(&s) {
                            break s;
                        }
                        c = (c + 1) % 1_000_000;
                    }
                } else {
                    format!("wrong{}", rnd % 1000)
                };
                Some(Job {
                    kind,
                    user: u,
                    password: Some(pw),
                    csi: "198.51.100.8",
                    step: 0,
                })
            }
            Kind::Trusted => {
                let u = self.next_trusted.fetch_add(7919, Ordering::Relaxed) % self.split;
                let password = if totp_mode {
                    None
                } else {
                    Some(self.users[u].pap.clone())
                };
                Some(Job {
                    kind,
                    user: u,
                    password,
                    csi: "10.1.2.3:1194",
                    step: 0,
                })
            }
        }
    }
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    replies: [u64; 3],
    unexpected: u64,
    /// Reply-Messages of the first unexpected answers, to tell a bug from a step boundary.
    unexpected_msgs: Vec<String>,
    bad_reply: u64,
    /// Replies right but for a missing Message-Authenticator: Debian 12's FreeRADIUS 3.2.1
    /// predates its BlastRADIUS fix and sends these. Measured, and counted so it shows.
    no_message_authenticator: u64,
    lost: u64,
    sent: u64,
    exhausted: u64,
    /// Access-Accepts for an accepted-code request: the work the TOTP comparison counts.
    accepted_codes: u64,
    /// Paced sends more than 1 ms behind their schedule (the generator itself was late).
    late: u64,
    /// Paced sends skipped because every one of the window's slots was still waiting.
    window_full: u64,
    /// Sends the socket refused (e.g. ICMP port unreachable while the server restarts).
    send_errors: u64,
    /// `--accept-log`: (arrival in Unix ns, user index, code, step) of each accepted code.
    accepts: Vec<(u128, usize, String, u64)>,
}

struct Slot {
    sent_at: Instant,
    authenticator: [u8; 16],
    kind: Kind,
    /// An accepted-code job's user, code and step, kept for `--accept-log`.
    code: Option<(usize, String, u64)>,
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn worker(o: Arc<Opts>, p: Arc<Picker>, index: usize, seed: u64, start: Instant) -> Tally {
    let target = &o.targets[index % o.targets.len()];
    let sock = UdpSocket::bind(if target.starts_with('[') {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    })
    .unwrap_or_else(|e| die(&e.to_string()));
    sock.connect(target).unwrap_or_else(|e| die(&e.to_string()));
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap_or_else(|e| die(&e.to_string()));
    let mut rng = Rng(seed | 1);
    let mut slots: Vec<Option<Slot>> = (0..256).map(|_| None).collect();
    let mut t = Tally::default();
    let total: u32 = o.mix.iter().sum();
    let end = start + o.duration;
    let send = |id: u8, rng: &mut Rng, t: &mut Tally| -> Option<Slot> {
        let r = (rng.next() % u64::from(total)) as u32;
        let kind = if r < o.mix[0] {
            Kind::Accept
        } else if r < o.mix[0] + o.mix[1] {
            Kind::Wrong
        } else {
            Kind::Trusted
        };
        if o.status {
            let mut auth = [0u8; 16];
            auth[..8].copy_from_slice(&rng.next().to_le_bytes());
            auth[8..].copy_from_slice(&rng.next().to_le_bytes());
            let pkt = Builder::request(Code::STATUS_SERVER, id, true)
                .encode_request(&o.secret, &auth)
                .ok()?;
            sock.send(&pkt).ok()?;
            t.sent += 1;
            return Some(Slot {
                sent_at: Instant::now(),
                authenticator: auth,
                kind: Kind::Trusted,
                code: None,
            });
        }
        let Some(job) = p.job(kind, o.totp, rng.next()) else {
            t.exhausted += 1;
            return None;
        };
        let mut auth = [0u8; 16];
        auth[..8].copy_from_slice(&rng.next().to_le_bytes());
        auth[8..].copy_from_slice(&rng.next().to_le_bytes());
        let mut b = Builder::request(Code::ACCESS_REQUEST, id, true);
        let _ = b.add(AttrType::USER_NAME, p.users[job.user].name.as_bytes());
        if let Some(pw) = &job.password {
            let hidden = hide_password(pw.as_bytes(), &o.secret, &auth).ok()?;
            let _ = b.add(AttrType::USER_PASSWORD, &hidden);
        }
        let _ = b.add(AttrType::CALLING_STATION_ID, job.csi.as_bytes());
        let _ = b.add(AttrType::NAS_IDENTIFIER, b"loadgen");
        let pkt = b.encode_request(&o.secret, &auth).ok()?;
        if sock.send(&pkt).is_err() {
            t.send_errors += 1;
            return None;
        }
        t.sent += 1;
        let code = match (o.accept_log, job.kind, job.password) {
            (true, Kind::Accept, Some(pw)) => Some((job.user, pw, job.step)),
            _ => None,
        };
        Some(Slot {
            sent_at: Instant::now(),
            authenticator: auth,
            kind: job.kind,
            code,
        })
    };
    let window = o.window.min(256);
    let interval = o
        .rate
        .map(|r| Duration::from_secs_f64(o.threads as f64 / r.max(1.0)));
    // Paced: the slots free to send on; closed loop: every slot is refilled on its reply.
    let mut free: Vec<usize> = Vec::new();
    if interval.is_some() {
        free = (0..window).rev().collect();
    } else {
        for (id, slot) in slots.iter_mut().enumerate().take(window) {
            *slot = send(id as u8, &mut rng, &mut t);
        }
    }
    let mut next_send = Instant::now();
    let mut buf = [0u8; 4096];
    let mut last_sweep = Instant::now();
    loop {
        let now = Instant::now();
        let running = now < end;
        if !running && slots.iter().all(Option::is_none) {
            break;
        }
        if now > end + Duration::from_secs(3) {
            t.lost += slots.iter().filter(|s| s.is_some()).count() as u64;
            break;
        }
        if let Some(iv) = interval {
            while running && next_send <= now {
                if now.duration_since(next_send) > Duration::from_millis(1) {
                    t.late += 1;
                }
                next_send += iv;
                match free.pop() {
                    Some(id) => {
                        slots[id] = send(id as u8, &mut rng, &mut t);
                        if slots[id].is_none() {
                            free.push(id);
                        }
                    }
                    None => t.window_full += 1,
                }
            }
            let wait = next_send.saturating_duration_since(Instant::now());
            let _ = sock.set_read_timeout(Some(
                wait.clamp(Duration::from_micros(20), Duration::from_millis(50)),
            ));
        }
        if let Ok(n) = sock.recv(&mut buf) {
            let Ok(reply) = Packet::parse(&buf[..n]) else {
                t.bad_reply += 1;
                continue;
            };
            let id = usize::from(reply.identifier);
            let Some(slot) = slots[id].take() else {
                continue;
            };
            let ok = match reply.verify_reply(&o.secret, &slot.authenticator) {
                Ok(()) => true,
                // verify_reply checks the Response Authenticator first, so this means
                // only the Message-Authenticator is missing.
                Err(VerifyError::MissingMessageAuthenticator) => {
                    t.no_message_authenticator += 1;
                    true
                }
                Err(_) => false,
            };
            if !ok {
                t.bad_reply += 1;
            } else {
                let us = slot.sent_at.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                t.latencies_us.push(us);
                let accepted = reply.code == Code::ACCESS_ACCEPT;
                let idx = slot.kind as usize;
                t.replies[idx] += 1;
                if accepted && slot.kind == Kind::Accept {
                    t.accepted_codes += 1;
                    if let Some((u, code, step)) = slot.code {
                        t.accepts.push((unix_ns(), u, code, step));
                    }
                }
                if accepted != (slot.kind != Kind::Wrong) {
                    t.unexpected += 1;
                    if t.unexpected_msgs.len() < 3 {
                        let m = reply.attr(AttrType::REPLY_MESSAGE).unwrap_or_default();
                        t.unexpected_msgs.push(format!(
                            "{:?}: {}",
                            slot.kind,
                            String::from_utf8_lossy(m)
                        ));
                    }
                }
            }
            if running && interval.is_none() {
                slots[id] = send(id as u8, &mut rng, &mut t);
            } else if interval.is_some() {
                free.push(id);
            }
        }
        if now.duration_since(last_sweep) > Duration::from_millis(200) {
            last_sweep = now;
            for (id, s) in slots.iter_mut().enumerate() {
                if s.as_ref()
                    .is_some_and(|s| now.duration_since(s.sent_at) > Duration::from_secs(2))
                {
                    t.lost += 1;
                    *s = if running && interval.is_none() {
                        send(id as u8, &mut rng, &mut t)
                    } else {
                        None
                    };
                    if interval.is_some() {
                        free.push(id);
                    }
                } else if s.is_none() && running && interval.is_none() && id < window {
                    // Left empty when every accept-pool user had used its steps: try again.
                    *s = send(id as u8, &mut rng, &mut t);
                }
            }
        }
    }
    t
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("gen-users") => {
            let n: usize = args
                .get(2)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| die("gen-users COUNT CSV FR_USERS"));
            let (Some(csv), Some(fr)) = (args.get(3), args.get(4)) else {
                die("gen-users COUNT CSV FR_USERS|-")
            };
            gen_users(n, csv, fr);
        }
        Some("ga-files") => match (args.get(2), args.get(3)) {
            (Some(csv), Some(dir)) => ga_files(csv, dir),
            _ => die("ga-files USERS.csv DIR"),
        },
        Some("wait") => wait_ready(&args),
        Some("run") => run(&args),
        Some("check") => check(&args),
        Some("until-accept") => until_accept(&args),
        Some("replay") => replay(&args),
        _ => die(
            "usage: radius-loadgen gen-users COUNT USERS.csv FR_USERS|- | ga-files USERS.csv DIR | wait --target ADDR --secret S | check --target ADDR --secret S --users USERS.csv [--kind totp|pap] | run --target ADDR[,ADDR] --secret S --users USERS.csv [--kind totp|pap|status] [--duration S] [--threads N] [--window N] [--mix A,W,T] [--rate R] [--state F] [--label NAME]",
        ),
    }
}

fn run(args: &[String]) {
    let targets: Vec<String> = arg(args, "--target")
        .unwrap_or_else(|| die("--target"))
        .split(',')
        .map(str::to_string)
        .collect();
    let secret = arg(args, "--secret")
        .unwrap_or_else(|| die("--secret"))
        .into_bytes();
    let mut users = load_users(&arg(args, "--users").unwrap_or_else(|| die("--users")));
    users.retain(|u| u.name != PROBE);
    let totp_mode = arg(args, "--kind").as_deref() != Some("pap");
    let mix: Vec<u32> = arg(args, "--mix")
        .unwrap_or_else(|| "60,20,20".into())
        .split(',')
        .map(|s| s.parse().unwrap_or_else(|_| die("--mix A,W,T")))
        .collect();
    let [a, w, tr] = mix[..] else {
        die("--mix A,W,T")
    };
    let threads: usize = arg(args, "--threads")
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let o = Arc::new(Opts {
        threads: threads.max(targets.len()),
        targets,
        rate: arg(args, "--rate").and_then(|s| s.parse().ok()),
        secret,
        totp: totp_mode,
        status: arg(args, "--kind").as_deref() == Some("status"),
        duration: Duration::from_secs_f64(
            arg(args, "--duration")
                .and_then(|s| s.parse().ok())
                .unwrap_or(20.0),
        ),
        window: arg(args, "--window")
            .and_then(|s| s.parse().ok())
            .unwrap_or(128),
        mix: [a, w, tr],
        accept_log: arg(args, "--accept-log").is_some(),
    });
    let label = arg(args, "--label").unwrap_or_else(|| o.targets.join(","));
    let n = users.len();
    // Without wrong codes in the mix every user supplies accepted codes.
    let split = if o.mix[1] == 0 { n } else { n * 8 / 10 };
    let p = Arc::new(Picker {
        steps: (0..split)
            .map(|_| std::sync::atomic::AtomicU64::new(0))
            .collect(),
        users,
        split,
        next_accept: AtomicUsize::new(0),
        next_wrong: AtomicUsize::new(0),
        next_trusted: AtomicUsize::new(0),
    });
    // Steps already used by earlier runs (replay protection is per user and step).
    let state = arg(args, "--state");
    if let Some(f) = &state
        && let Ok(b) = std::fs::read(f)
    {
        for (s, c) in p.steps.iter().zip(b.chunks_exact(8)) {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            s.store(u64::from_le_bytes(a), Ordering::Relaxed);
        }
        p.next_accept
            .store(b.len() / 8 % split.max(1), Ordering::Relaxed);
    }
    let start = Instant::now();
    let handles: Vec<_> = (0..o.threads)
        .map(|i| {
            let (o, p) = (o.clone(), p.clone());
            std::thread::spawn(move || {
                worker(
                    o,
                    p,
                    i,
                    0x9e37_79b9_7f4a_7c15 ^ ((i as u64 + 1) * 0x1234_5678_9abc),
                    start,
                )
            })
        })
        .collect();
    let mut t = Tally::default();
    for h in handles {
        let x = h.join().unwrap_or_else(|_| die("worker panicked"));
        t.latencies_us.extend(x.latencies_us);
        for i in 0..3 {
            t.replies[i] += x.replies[i];
        }
        t.unexpected += x.unexpected;
        t.unexpected_msgs.extend(x.unexpected_msgs);
        t.bad_reply += x.bad_reply;
        t.no_message_authenticator += x.no_message_authenticator;
        t.lost += x.lost;
        t.sent += x.sent;
        t.exhausted += x.exhausted;
        t.accepted_codes += x.accepted_codes;
        t.late += x.late;
        t.window_full += x.window_full;
        t.send_errors += x.send_errors;
        t.accepts.extend(x.accepts);
    }
    if let Some(f) = arg(args, "--accept-log") {
        let mut w = std::io::BufWriter::new(
            std::fs::File::create(&f).unwrap_or_else(|e| die(&format!("{f}: {e}"))),
        );
        for (at, u, code, step) in &t.accepts {
            let _ = writeln!(w, "{at},{},{code},{step}", p.users[*u].name);
        }
        w.flush().unwrap_or_else(|e| die(&format!("{f}: {e}")));
    }
    if let Some(f) = &state {
        let b: Vec<u8> = p
            .steps
            .iter()
            .flat_map(|s| s.load(Ordering::Relaxed).to_le_bytes())
            .collect();
        let _ = std::fs::write(f, b);
    }
    t.latencies_us.sort_unstable();
    let pct = |q: f64| -> f64 {
        if t.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((t.latencies_us.len() as f64 - 1.0) * q).round() as usize;
        f64::from(t.latencies_us[i]) / 1000.0
    };
    let answered = t.latencies_us.len() as f64;
    let secs = o.duration.as_secs_f64();
    println!(
        "{label}: {:.0} req/s answered ({} in {:.1}s; accept/wrong/trusted {}/{}/{}), accepted codes {:.0}/s ({:.1}% of answered), p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms, unexpected {}, bad replies {}, lost {}, users exhausted {}, replies without Message-Authenticator {}{}",
        answered / secs,
        t.latencies_us.len(),
        secs,
        t.replies[0],
        t.replies[1],
        t.replies[2],
        t.accepted_codes as f64 / secs,
        100.0 * t.accepted_codes as f64 / answered.max(1.0),
        pct(0.5),
        pct(0.99),
        pct(0.999),
        pct(1.0),
        t.unexpected,
        t.bad_reply,
        t.lost,
        t.exhausted,
        t.no_message_authenticator,
        match o.rate {
            Some(r) => format!(
                ", paced at {r:.0}/s: sent {}, late sends {}, skipped (window full) {}, send errors {}",
                t.sent, t.late, t.window_full, t.send_errors
            ),
            None => String::new(),
        },
    );
    // The TOTP comparison counts accepted codes: a run where most requests did something
    // else (exhausted users, replays refused) compares nothing.
    if o.totp && !o.status && o.mix[0] >= 90 && (t.accepted_codes as f64) < 0.9 * answered {
        println!("  VOID: fewer than 90% of the answered requests were accepted codes");
    }
    for m in t.unexpected_msgs.iter().take(3) {
        println!("  unexpected: {m}");
    }
}

/// Wrong code, right code, the same right code again: Reject, Accept, Reject (a TOTP
/// server); a PAP server is shown a wrong and a right password. Exits 2 on any other answer.
fn check(args: &[String]) {
    let target = arg(args, "--target").unwrap_or_else(|| die("--target"));
    let secret = arg(args, "--secret")
        .unwrap_or_else(|| die("--secret"))
        .into_bytes();
    let users = load_users(&arg(args, "--users").unwrap_or_else(|| die("--users")));
    let probe = users
        .iter()
        .find(|u| u.name == PROBE)
        .unwrap_or_else(|| die("no probe user in the users file (gen-users writes it)"));
    let pap = arg(args, "--kind").as_deref() == Some("pap");
    let sock = UdpSocket::bind("0.0.0.0:0").unwrap_or_else(|e| die(&e.to_string()));
    sock.connect(&target)
        .unwrap_or_else(|e| die(&e.to_string()));
    sock.set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap_or_else(|e| die(&e.to_string()));
    let step = now_step();
    let right = if pap {
        probe.pap.clone()
    } else {
        totp(&probe.key, step)
    };
    let valid: Vec<String> = (step - 1..=step + 1).map(|s| totp(&probe.key, s)).collect();
    let wrong = (0..1_000_000u32)
        .map(|c| format!("{:06}", (c * 7919 + 123_457) % 1_000_000))
        .find(|c| !valid.contains(c))
        .unwrap_or_else(|| die("no wrong code"));
    let mut cases = vec![("wrong", wrong, false), ("right", right.clone(), true)];
    if !pap {
        cases.push(("same right again", right, false));
    }
    let mut ok = true;
    for (i, (what, pw, want)) in cases.iter().enumerate() {
        let mut auth = [0u8; 16];
        getrandom::fill(&mut auth).unwrap_or_else(|_| die("no randomness"));
        let mut b = Builder::request(Code::ACCESS_REQUEST, i as u8, true);
        let _ = b.add(AttrType::USER_NAME, probe.name.as_bytes());
        let hidden = hide_password(pw.as_bytes(), &secret, &auth).unwrap_or_else(|_| die("hide"));
        let _ = b.add(AttrType::USER_PASSWORD, &hidden);
        let _ = b.add(AttrType::CALLING_STATION_ID, b"198.51.100.9");
        let _ = b.add(AttrType::NAS_IDENTIFIER, b"loadgen-check");
        let pkt = b
            .encode_request(&secret, &auth)
            .unwrap_or_else(|_| die("encode"));
        sock.send(&pkt).unwrap_or_else(|e| die(&e.to_string()));
        let mut buf = [0u8; 4096];
        let got = match sock.recv(&mut buf) {
            Ok(n) => match Packet::parse(&buf[..n]) {
                Ok(r) if r.code == Code::ACCESS_ACCEPT => "Accept",
                Ok(r) if r.code == Code::ACCESS_REJECT => "Reject",
                Ok(_) => "another code",
                Err(_) => "a malformed reply",
            },
            Err(_) => "no reply",
        };
        let expect = if *want { "Accept" } else { "Reject" };
        println!("  check {target}: {what} -> {got} (expected {expect})");
        ok &= got == expect;
    }
    if !ok {
        die(&format!("{target} failed the wrong/right/replay check"));
    }
}

fn until_accept(args: &[String]) {
    let targets: Vec<String> = arg(args, "--target")
        .unwrap_or_else(|| die("--target"))
        .split(',')
        .map(str::to_string)
        .collect();
    let secret = arg(args, "--secret")
        .unwrap_or_else(|| die("--secret"))
        .into_bytes();
    let users = load_users(&arg(args, "--users").unwrap_or_else(|| die("--users")));
    let probe = users
        .iter()
        .find(|u| u.name == PROBE)
        .unwrap_or_else(|| die("no probe user in the users file (gen-users writes it)"));
    let since: u128 = arg(args, "--since")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| die("--since UNIX_NS"));
    let every = Duration::from_millis(
        arg(args, "--every")
            .and_then(|s| s.parse().ok())
            .unwrap_or(100),
    );
    let timeout = Duration::from_secs_f64(
        arg(args, "--timeout")
            .and_then(|s| s.parse().ok())
            .unwrap_or(120.0),
    );
    let start = Instant::now();
    let socks: Vec<UdpSocket> = targets
        .iter()
        .map(|t| {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap_or_else(|e| die(&e.to_string()));
            s.connect(t).unwrap_or_else(|e| die(&e.to_string()));
            s
        })
        .collect();
    let (mut sent, mut rejected) = (0u64, 0u64);
    let mut id = 0u8;
    while start.elapsed() < timeout {
        for (sock, target) in socks.iter().zip(&targets) {
            let mut auth = [0u8; 16];
            getrandom::fill(&mut auth).unwrap_or_else(|_| die("no randomness"));
            let mut b = Builder::request(Code::ACCESS_REQUEST, id, true);
            id = id.wrapping_add(1);
            let _ = b.add(AttrType::USER_NAME, probe.name.as_bytes());
            let _ = b.add(AttrType::CALLING_STATION_ID, b"10.9.9.9");
            let _ = b.add(AttrType::NAS_IDENTIFIER, b"loadgen-failover");
            let pkt = b
                .encode_request(&secret, &auth)
                .unwrap_or_else(|_| die("encode"));
            let _ = sock.send(&pkt);
            sent += 1;
            let sent_at = Instant::now();
            let mut buf = [0u8; 4096];
            // The answer to this request, or the next send once `every` has passed.
            while sent_at.elapsed() < every {
                let left = every
                    .saturating_sub(sent_at.elapsed())
                    .max(Duration::from_millis(1));
                let _ = sock.set_read_timeout(Some(left));
                let Ok(n) = sock.recv(&mut buf) else {
                    break;
                };
                let Ok(r) = Packet::parse(&buf[..n]) else {
                    continue;
                };
                if r.verify_reply(&secret, &auth).is_ok() && r.code == Code::ACCESS_ACCEPT {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos());
                    println!(
                        "{:.3} s from the kill to the first Access-Accept ({target}; {sent} probe(s) sent, {rejected} rejected before it)",
                        now.saturating_sub(since) as f64 / 1e9
                    );
                    return;
                }
                rejected += 1;
                break;
            }
        }
    }
    die(&format!(
        "no Access-Accept within {timeout:?} ({sent} probe(s) sent)"
    ));
}

/// A replayed code in flight: its job, the request's authenticator, when it was sent, tries.
type Replayed = (usize, [u8; 16], Instant, u32);

/// Sends every code of an `--accept-log` (those accepted before `--before`, if given) once
/// more, up to `--window` in flight, each retried up to 3 times when unanswered; prints how
/// many were accepted again (a store that lost a used code after a crash), rejected, and
/// unanswered, and how many of the codes were still inside the ±1 step window when replayed
/// (a replay outside it is refused for its age alone and proves nothing). Exits 3 if any was
/// accepted again.
fn replay(args: &[String]) {
    let target = arg(args, "--target").unwrap_or_else(|| die("--target"));
    let secret = arg(args, "--secret")
        .unwrap_or_else(|| die("--secret"))
        .into_bytes();
    let log = arg(args, "--log").unwrap_or_else(|| die("--log ACCEPTS"));
    let before: u128 = arg(args, "--before")
        .and_then(|s| s.parse().ok())
        .unwrap_or(u128::MAX);
    let window: usize = arg(args, "--window")
        .and_then(|s| s.parse().ok())
        .unwrap_or(128)
        .clamp(1, 256);
    let text = std::fs::read_to_string(&log).unwrap_or_else(|e| die(&format!("{log}: {e}")));
    // (user, code, step)
    let mut jobs: Vec<(String, String, u64)> = Vec::new();
    let mut after = 0u64;
    for l in text.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = l.split(',').collect();
        let [at, user, code, step] = f[..] else {
            die(&format!("{log}: bad line"))
        };
        let at: u128 = at.parse().unwrap_or_else(|_| die("bad time"));
        if at >= before {
            after += 1;
            continue;
        }
        let step = step.parse().unwrap_or_else(|_| die("bad step"));
        jobs.push((user.to_string(), code.to_string(), step));
    }
    let sock = UdpSocket::bind("0.0.0.0:0").unwrap_or_else(|e| die(&e.to_string()));
    sock.connect(&target)
        .unwrap_or_else(|e| die(&e.to_string()));
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap_or_else(|e| die(&e.to_string()));
    let started = Instant::now();
    let (mut accepted, mut rejected, mut unanswered, mut live) = (0u64, 0u64, 0u64, 0u64);
    let mut accepted_users: Vec<String> = Vec::new();
    let mut slots: Vec<Option<Replayed>> = vec![None; 256];
    let mut next = 0usize;
    let mut buf = [0u8; 4096];
    let send = |j: usize, id: u8, tries: u32| -> Option<Replayed> {
        let (user, code, _) = &jobs[j];
        let mut auth = [0u8; 16];
        getrandom::fill(&mut auth).ok()?;
        let mut b = Builder::request(Code::ACCESS_REQUEST, id, true);
        let _ = b.add(AttrType::USER_NAME, user.as_bytes());
        let hidden = hide_password(code.as_bytes(), &secret, &auth).ok()?;
        let _ = b.add(AttrType::USER_PASSWORD, &hidden);
        let _ = b.add(AttrType::CALLING_STATION_ID, b"198.51.100.7");
        let _ = b.add(AttrType::NAS_IDENTIFIER, b"loadgen-replay");
        let pkt = b.encode_request(&secret, &auth).ok()?;
        let _ = sock.send(&pkt);
        Some((j, auth, Instant::now(), tries))
    };
    loop {
        for (id, s) in slots.iter_mut().enumerate().take(window) {
            if s.is_none() && next < jobs.len() {
                let step = jobs[next].2;
                let now = now_step();
                if step + 1 >= now && step <= now + 1 {
                    live += 1;
                }
                *s = send(next, id as u8, 1);
                next += 1;
            }
        }
        if next >= jobs.len() && slots.iter().all(Option::is_none) {
            break;
        }
        if let Ok(n) = sock.recv(&mut buf)
            && let Ok(r) = Packet::parse(&buf[..n])
            && let Some((j, auth, _, _)) = slots[usize::from(r.identifier)]
            && r.verify_reply(&secret, &auth).is_ok()
        {
            slots[usize::from(r.identifier)] = None;
            if r.code == Code::ACCESS_ACCEPT {
                accepted += 1;
                if accepted_users.len() < 5 {
                    accepted_users.push(jobs[j].0.clone());
                }
            } else {
                rejected += 1;
            }
        }
        for (id, s) in slots.iter_mut().enumerate() {
            if let Some((j, _, at, tries)) = *s
                && at.elapsed() > Duration::from_secs(1)
            {
                *s = if tries < 3 {
                    send(j, id as u8, tries + 1)
                } else {
                    unanswered += 1;
                    None
                };
            }
        }
    }
    println!(
        "replay: {} accepted code(s) sent again in {:.1} s ({live} still inside their step window): accepted again {accepted}, rejected {rejected}, unanswered {unanswered}; {after} accepted after --before not replayed",
        jobs.len(),
        started.elapsed().as_secs_f64()
    );
    if accepted > 0 {
        println!("  ACCEPTED AGAIN, e.g. users {accepted_users:?}");
        std::process::exit(3);
    }
}
