//! Helpers of the portal's end-to-end tests (tests/tests/portal*.rs): a running mfa-portal,
//! a browser-like HTTP client (ureq), a site whose sign-in needs no root, and raw HTTP from
//! a chosen loopback source address (127.0.0.2, ...) for the flood tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Site, free_tcp_port, require_tool, text};

/// A running mfa-portal; killed and reaped on drop.
pub struct Portal {
    pub child: Child,
    pub log: Arc<Mutex<String>>,
    pub url: String,
}

impl Portal {
    pub fn start(config: &Path, port: u16) -> Portal {
        Self::start_with(config, port, None)
    }

    /// With `--pam-confdir` where given (a PAM service file for the sign-in that needs no
    /// root).
    pub fn start_with(config: &Path, port: u16, confdir: Option<&Path>) -> Portal {
        Self::start_nofile(config, port, confdir, None)
    }

    /// With the open-file limit (soft) `nofile` where given, as a service gets it without
    /// `LimitNOFILE` (systemd's default soft limit is 1024).
    pub fn start_nofile(
        config: &Path,
        port: u16,
        confdir: Option<&Path>,
        nofile: Option<u32>,
    ) -> Portal {
        Self::start_in_zone(config, port, confdir, nofile, None)
    }

    /// With `TZ` set to `tz` where given: the server's time zone, as My account shows it.
    pub fn start_in_zone(
        config: &Path,
        port: u16,
        confdir: Option<&Path>,
        nofile: Option<u32>,
        tz: Option<&str>,
    ) -> Portal {
        let mut cmd = match nofile {
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -Sn {n} && exec \"$0\" \"$@\""))
                    .arg(crate::bin("mfa-portal"));
                c
            }
            None => Command::new(crate::bin("mfa-portal")),
        };
        cmd.arg("--config").arg(config);
        if let Some(tz) = tz {
            cmd.env("TZ", tz);
        }
        if let Some(d) = confdir {
            cmd.arg("--pam-confdir").arg(d);
        }
        let (child, log) = crate::spawn_logged(cmd);
        let start = Instant::now();
        while !log.lock().unwrap().contains("listening on") {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "mfa-portal did not start: {}",
                log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Portal {
            child,
            log,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// tests/browser, where the browser scripts and their npm packages are.
pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Runs a script of tests/browser in Debian's chromium with `args` (JSON); its one JSON
/// line, which must say `"ok": true`.
pub fn node(script: &str, args: &serde_json::Value) -> serde_json::Value {
    require_tool("node");
    require_tool("oathtool");
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is not installed: run scripts/test.sh as root once"
    );
    assert!(
        browser_dir().join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: scripts/test.sh runs `npm ci` in tests/browser"
    );
    let o = Command::new("node")
        .arg(browser_dir().join(script))
        .arg(args.to_string())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|_| panic!("{script} printed no result: {}", text(&o)));
    assert!(
        o.status.success() && v["ok"] == true,
        "{script} failed: {}",
        text(&o)
    );
    v
}

pub fn invite(site: &Site, user: &str) -> String {
    let o = site.mfactl(&["invite", user]);
    assert!(o.status.success(), "invite: {}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let url = out
        .split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        .unwrap_or_else(|| panic!("no URL in {out:?}"))
        .to_string();
    assert!(
        out.starts_with(&url),
        "the link is the first thing printed: {out:?}"
    );
    url
}

/// The text a QR code in an SVG file holds: drawn by rsvg-convert, read by zbarimg.
pub fn zbar_svg(svg: &Path) -> String {
    require_tool("rsvg-convert");
    require_tool("zbarimg");
    let png = svg.with_extension("png");
    let o = Command::new("rsvg-convert")
        .arg(svg)
        .arg("-o")
        .arg(&png)
        .output()
        .unwrap();
    assert!(o.status.success(), "rsvg-convert: {}", text(&o));
    let o = Command::new("zbarimg")
        .args(["-q", "--raw"])
        .arg(&png)
        .output()
        .unwrap();
    assert!(o.status.success(), "zbarimg: {}", text(&o));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

pub fn sqlite(db: &Path, sql: &str) -> String {
    require_tool("sqlite3");
    // A busy portal (push delivery, the writer) may hold the write lock a moment.
    let o = Command::new("sqlite3")
        .args(["-cmd", ".timeout 5000"])
        .arg(db)
        .arg(sql)
        .output()
        .unwrap();
    assert!(o.status.success(), "sqlite3: {}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// One answer: status, headers (names lower case), body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of the hidden `csrf` field.
    pub fn csrf(&self) -> String {
        between(&self.body, "name=\"csrf\" value=\"", "\"")
            .unwrap_or_else(|| panic!("no CSRF token on the page: {}", self.body))
    }

    /// The key shown (`id="key"`), without its spaces.
    pub fn key(&self) -> String {
        between(&self.body, "id=\"key\">", "<")
            .unwrap_or_else(|| panic!("no key on the page: {}", self.body))
            .replace(' ', "")
    }
}

pub fn between(s: &str, start: &str, end: &str) -> Option<String> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(s[i..j].to_string())
}

/// `application/x-www-form-urlencoded`, every byte but unreserved ones escaped.
pub fn form(fields: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A browser-like client of one portal: keeps the session cookie it was given, and sends
/// `X-Forwarded-For` where set (the portal believes it from a trusted proxy only).
pub struct Client {
    pub agent: ureq::Agent,
    pub base: String,
    pub cookie: Option<String>,
    pub forwarded: Option<String>,
}

impl Client {
    pub fn new(base: &str) -> Client {
        Self::with_agent(base, ureq::Agent::config_builder())
    }

    /// HTTPS with `ca_pem` as the only trust root.
    pub fn tls(base: &str, ca_pem: &[u8]) -> Client {
        let ca = ureq::tls::Certificate::from_pem(ca_pem).unwrap();
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![ca])))
            .build();
        Self::with_agent(base, ureq::Agent::config_builder().tls_config(tls))
    }

    pub fn with_agent(
        base: &str,
        b: ureq::config::ConfigBuilder<ureq::typestate::AgentScope>,
    ) -> Client {
        let agent = b
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .new_agent();
        Client {
            agent,
            base: base.to_string(),
            cookie: None,
            forwarded: None,
        }
    }

    pub fn from(mut self, ip: &str) -> Client {
        self.forwarded = Some(ip.to_string());
        self
    }

    pub fn try_get(&mut self, path: &str) -> Result<Reply, ureq::Error> {
        let mut r = self.agent.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            r = r.header("Cookie", c);
        }
        if let Some(f) = &self.forwarded {
            r = r.header("X-Forwarded-For", f);
        }
        let resp = r.call()?;
        Ok(self.reply(resp))
    }

    pub fn get(&mut self, path: &str) -> Reply {
        self.try_get(path).unwrap()
    }

    pub fn post_raw(&mut self, path: &str, body: &str) -> Reply {
        let mut r = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded");
        if let Some(c) = &self.cookie {
            r = r.header("Cookie", c);
        }
        if let Some(f) = &self.forwarded {
            r = r.header("X-Forwarded-For", f);
        }
        let resp = r.send(body.as_bytes()).unwrap();
        self.reply(resp)
    }

    pub fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        self.post_raw(path, &form(fields))
    }

    pub fn reply(&mut self, mut resp: ureq::http::Response<ureq::Body>) -> Reply {
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        for (k, v) in &headers {
            if k == "set-cookie" {
                self.cookie = v.split(';').next().map(str::to_string);
            }
        }
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().unwrap();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Signs in to My account (the PAM service of the site lets any password in).
    pub fn sign_in(&mut self, user: &str, code: &str) -> Reply {
        let csrf = self.get("/account").csrf();
        self.post(
            "/account",
            &[
                ("action", "signin"),
                ("user", user),
                ("password", "any"),
                ("code", code),
                ("csrf", &csrf),
            ],
        )
    }
}

/// A PAM configuration directory whose service `name` lets every password in (pam_permit):
/// the sign-in's password step without root or a Unix account; the code is still checked.
pub fn permit_confdir(dir: &Path, name: &str) -> PathBuf {
    let d = dir.join("pam.d");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join(name),
        "auth required pam_permit.so\naccount required pam_permit.so\n",
    )
    .unwrap();
    d
}

/// A site with a portal on a free loopback port, its sign-in through [`permit_confdir`]
/// and no trusted network. `policy` goes into `[policy]`, `extra` into `[portal]`.
pub fn http_site(extra: &str, policy: &str) -> (Site, Portal) {
    portal_site(&SiteSpec {
        portal: extra,
        policy,
        ..SiteSpec::default()
    })
}

/// What a test's site differs in; [`http_site`] is the default.
pub struct SiteSpec<'a> {
    /// Lines of `[portal]`.
    pub portal: &'a str,
    /// Lines of `[policy]`.
    pub policy: &'a str,
    /// `public_url`; `None`: `http://` and the portal's address.
    pub public_url: Option<&'a str>,
    /// 127.0.0.1 is a trusted proxy (its X-Forwarded-For is believed).
    pub proxy: bool,
    /// The PAM service of the sign-in: `None` is a pam_permit service of the site's own
    /// (through `--pam-confdir`); `Some` a service in /etc/pam.d.
    pub pam_service: Option<&'a str>,
    /// The portal's soft open-file limit.
    pub nofile: Option<u32>,
    /// Whole sections after `[portal]` (`[push]`).
    pub extra: &'a str,
    /// The `[store]` table; `None`: SQLite in the site's directory.
    pub store: Option<&'a str>,
    /// The portal's `TZ` (the server's time zone); `None`: the machine's.
    pub tz: Option<&'a str>,
}

impl Default for SiteSpec<'_> {
    fn default() -> Self {
        SiteSpec {
            portal: "",
            policy: "",
            public_url: None,
            proxy: true,
            pam_service: None,
            nofile: None,
            extra: "",
            store: None,
            tz: None,
        }
    }
}

pub fn portal_site(spec: &SiteSpec) -> (Site, Portal) {
    let port = free_tcp_port();
    let url = spec
        .public_url
        .map_or(format!("http://127.0.0.1:{port}"), str::to_string);
    let service = spec.pam_service.unwrap_or("mfa-portal-e2e");
    let proxies = if spec.proxy { "[\"127.0.0.1\"]" } else { "[]" };
    let store = spec
        .store
        .unwrap_or("[store]\npath = \"mfa.db\"\nkey_file = \"mfa.key\"\n");
    let site = Site::with_config(&format!(
        "{store}[totp]\nissuer = \"Test\"\n[policy]\n{}\n[audit]\nsyslog = false\n[portal]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"{url}\"\npam_service = \"{service}\"\ntrusted_proxies = {proxies}\n{}\n{}",
        spec.policy, spec.portal, spec.extra
    ));
    assert!(site.mfactl(&["init"]).status.success());
    let confdir = spec
        .pam_service
        .is_none()
        .then(|| permit_confdir(site.path(), service));
    let portal =
        Portal::start_in_zone(&site.config, port, confdir.as_deref(), spec.nofile, spec.tz);
    (site, portal)
}

pub fn audit_reasons(site: &Site) -> String {
    String::from_utf8(site.mfactl(&["log", "--format", "csv"]).stdout).unwrap()
}

pub fn invite_unused(site: &Site, user: &str) -> bool {
    sqlite(
        &site.db(),
        &format!("SELECT count(*) FROM invites WHERE user = '{user}' AND used IS NULL"),
    )
    .trim()
        == "1"
}

pub fn has_key(site: &Site, user: &str) -> bool {
    sqlite(
        &site.db(),
        &format!("SELECT count(*) FROM users WHERE name = '{user}' AND secret IS NOT NULL"),
    )
    .trim()
        == "1"
}

/// A TCP connection to the portal from loopback source address `from` (127.0.0.2, ...), so
/// a test can be another client than the flood it makes from 127.0.0.1.
pub fn connect_from(from: Ipv4Addr, port: u16) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    s.connect(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into())
        .unwrap();
    s.into()
}

/// One `GET path` on a new connection from `from`, with `Connection: close`; the status and
/// the whole answer, or the error (a reset, a timeout after `wait`).
pub fn raw_get(
    from: Ipv4Addr,
    port: u16,
    path: &str,
    wait: Duration,
) -> Result<(u16, String), String> {
    let mut s = connect_from(from, port);
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no HTTP answer: {text:?}"))?;
    Ok((status, text))
}

/// Whether the server closed `s` (end of file or a reset) before `deadline`; what was read
/// on the way is returned too.
pub fn closed_by(s: &mut TcpStream, deadline: Instant) -> (bool, String) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (false, String::from_utf8_lossy(&seen).into_owned());
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return (true, String::from_utf8_lossy(&seen).into_owned()),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (false, String::from_utf8_lossy(&seen).into_owned());
            }
            Err(_) => return (true, String::from_utf8_lossy(&seen).into_owned()),
        }
    }
}
