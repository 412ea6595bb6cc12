//! A PAM host's view of its servers (remote mode, issue 24): when each last answered a
//! login's first request and when it last did not, and why; which one answered the last
//! login. pam_mfa writes it after each login's first round, `mfactl status` on that host
//! reads it, so an administrator at the host sees what the host saw (a firewall between the
//! two, a wrong secret) rather than what the servers say of themselves.
//!
//! The file is a few lines of text beside the offline queue ([`state_path`]), root's, 0600:
//!
//! ```text
//! last=1765000000 server=10.0.0.5:1812
//! server=10.0.0.5:1812 answered=1765000000 failed=1764990000 error=no answer within 3s (2 send(s))
//! server=10.0.0.6:1812 answered=- failed=1765000000 error=refused (ICMP port unreachable: is mfa-radiusd running?)
//! ```
//!
//! `last=` is the last login's first round and the server that answered it (`-`: none did).
//! Unreadable lines are skipped: the file is a report, never an input to a decision.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The file's name, in the offline queue's directory.
pub const FILE_NAME: &str = "remote-servers";
/// The longest error text kept.
const MAX_ERROR: usize = 240;

/// Where a host keeps its view: beside `[remote] offline_queue` (by default
/// `/var/lib/mfa/remote-servers`).
pub fn state_path(offline_queue: &Path) -> PathBuf {
    offline_queue.with_file_name(FILE_NAME)
}

/// One server as the host last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSeen {
    pub server: SocketAddr,
    /// Unix seconds: when it last answered (a verified reply).
    pub answered: Option<i64>,
    /// Unix seconds: when it last did not.
    pub failed: Option<i64>,
    /// Why, that last time.
    pub error: Option<String>,
}

/// The host's view of its servers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reachability {
    /// The last login's first round: when, and the server that answered it.
    pub last: Option<(i64, Option<SocketAddr>)>,
    pub servers: Vec<ServerSeen>,
}

fn time(s: &str) -> Option<Option<i64>> {
    if s == "-" {
        return Some(None);
    }
    s.parse().ok().map(Some)
}

fn word(t: Option<i64>) -> String {
    t.map_or_else(|| "-".into(), |t| t.to_string())
}

/// Text from an error as one bounded line.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_ERROR)
        .collect()
}

impl Reachability {
    /// Reads the file's text; lines that cannot be read are skipped.
    pub fn parse(text: &str) -> Self {
        let mut r = Reachability::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("last=") {
                let mut w = rest.splitn(2, ' ');
                let (Some(t), Some(s)) = (w.next(), w.next()) else {
                    continue;
                };
                let (Some(Some(t)), Some(s)) = (time(t), s.strip_prefix("server=")) else {
                    continue;
                };
                let server = if s == "-" { None } else { s.parse().ok() };
                r.last = Some((t, server));
            } else if let Some(rest) = line.strip_prefix("server=") {
                let mut w = rest.splitn(4, ' ');
                let parsed = (|| {
                    let server: SocketAddr = w.next()?.parse().ok()?;
                    let answered = time(w.next()?.strip_prefix("answered=")?)?;
                    let failed = time(w.next()?.strip_prefix("failed=")?)?;
                    let error = w
                        .next()
                        .and_then(|e| e.strip_prefix("error="))
                        .filter(|e| !e.is_empty())
                        .map(str::to_string);
                    Some(ServerSeen {
                        server,
                        answered,
                        failed,
                        error,
                    })
                })();
                r.servers.extend(parsed);
            }
        }
        r
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if let Some((t, server)) = &self.last {
            let server = server.map_or_else(|| "-".into(), |a| a.to_string());
            s.push_str(&format!("last={t} server={server}\n"));
        }
        for v in &self.servers {
            s.push_str(&format!(
                "server={} answered={} failed={} error={}\n",
                v.server,
                word(v.answered),
                word(v.failed),
                one_line(v.error.as_deref().unwrap_or_default())
            ));
        }
        s
    }

    /// What one login's first round saw at `now`: each server asked, in order, answered
    /// (`Ok`) or not (`Err` with why). Servers no longer in `configured` are forgotten.
    pub fn record(
        &mut self,
        now: i64,
        configured: &[SocketAddr],
        asked: &[(SocketAddr, Result<(), String>)],
    ) {
        self.servers.retain(|s| configured.contains(&s.server));
        for c in configured {
            if !self.servers.iter().any(|s| s.server == *c) {
                self.servers.push(ServerSeen {
                    server: *c,
                    answered: None,
                    failed: None,
                    error: None,
                });
            }
        }
        self.servers
            .sort_by_key(|s| configured.iter().position(|c| *c == s.server));
        let mut answered = None;
        for (server, result) in asked {
            let Some(s) = self.servers.iter_mut().find(|s| s.server == *server) else {
                continue;
            };
            match result {
                Ok(()) => {
                    s.answered = Some(now);
                    answered = Some(*server);
                }
                Err(why) => {
                    s.failed = Some(now);
                    s.error = Some(one_line(why));
                }
            }
        }
        self.last = Some((now, answered));
    }

    /// The server the last login used, where one answered it.
    pub fn in_use(&self) -> Option<SocketAddr> {
        self.last.and_then(|(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_round_is_recorded_and_reads_back() {
        let a: SocketAddr = "10.0.0.5:1812".parse().unwrap();
        let b: SocketAddr = "[2001:db8::6]:1812".parse().unwrap();
        let gone: SocketAddr = "10.0.0.9:1812".parse().unwrap();
        let mut r = Reachability::parse(&format!(
            "last=5 server={gone}\nserver={gone} answered=5 failed=- error=\nnonsense\n"
        ));
        assert_eq!(r.in_use(), Some(gone));
        r.record(
            100,
            &[a, b],
            &[(a, Err("no answer\nwithin 3s".into())), (b, Ok(()))],
        );
        assert_eq!(r.in_use(), Some(b));
        let text = r.render();
        let back = Reachability::parse(&text);
        assert_eq!(back, r, "{text}");
        assert_eq!(back.servers.len(), 2, "{text}");
        assert_eq!(back.servers[0].server, a);
        assert_eq!(back.servers[0].failed, Some(100));
        assert_eq!(back.servers[0].answered, None);
        assert_eq!(
            back.servers[0].error.as_deref(),
            Some("no answer within 3s")
        );
        assert_eq!(back.servers[1].answered, Some(100));
        r.record(
            200,
            &[a, b],
            &[(a, Err("refused".into())), (b, Err("x".into()))],
        );
        assert_eq!(r.in_use(), None);
        assert_eq!(r.servers[1].answered, Some(100));
        assert_eq!(r.servers[1].failed, Some(200));
        assert_eq!(
            state_path(Path::new("/var/lib/mfa/offline-queue")),
            Path::new("/var/lib/mfa/remote-servers")
        );
    }
}
