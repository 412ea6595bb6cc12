//! Helpers of the push approval tests (tests/tests/push_portal.rs): `web-push-testing`
//! (npm) as an independent push service, a site whose portal delivers to it, and the
//! `push-request` helper that starts and settles sign-in requests through the core as a
//! front end would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::portal::{Portal, SiteSpec, browser_dir, portal_site};
use crate::{Site, free_tcp_port, require_tool};

/// A running web-push-testing on loopback (`tests/browser/push-service.mjs`); it stops
/// when dropped (killed), and by itself when the test process goes (its stdin closes).
pub struct PushService {
    child: Child,
    pub port: u16,
    pub log: Arc<Mutex<String>>,
    agent: ureq::Agent,
}

/// A subscription made at the push service, as a browser's `PushSubscription.toJSON()`
/// and the service's handle for it.
#[derive(Debug, Clone)]
pub struct ServiceSubscription {
    pub endpoint: String,
    pub client_hash: String,
    /// `{"endpoint":..,"expirationTime":null,"keys":{"p256dh":..,"auth":..}}`
    pub json: String,
}

impl PushService {
    pub fn start() -> PushService {
        require_tool("node");
        let dir = browser_dir();
        assert!(
            dir.join("node_modules/web-push-testing").exists(),
            "web-push-testing is not installed: scripts/test.sh runs `npm ci` in tests/browser"
        );
        let port = free_tcp_port();
        let mut child = Command::new("node")
            .arg(dir.join("push-service.mjs"))
            .arg(port.to_string())
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let start = Instant::now();
        while !log.lock().unwrap().contains("Server running on port") {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "web-push-testing did not start: {}",
                log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .new_agent();
        PushService {
            child,
            port,
            log,
            agent,
        }
    }

    /// The origin its endpoints are on, for `[push] services`.
    pub fn origin(&self) -> String {
        format!("http://localhost:{}", self.port)
    }

    fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let mut r = self
            .agent
            .post(format!("http://127.0.0.1:{}{path}", self.port))
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes())
            .unwrap();
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or_default())
    }

    /// A subscription for a page whose VAPID public key is `application_server_key`
    /// (base64url), as `pushManager.subscribe` makes one.
    pub fn subscribe(&self, application_server_key: &str) -> ServiceSubscription {
        let (status, v) = self.post(
            "/subscribe",
            &serde_json::json!({
                "applicationServerKey": application_server_key,
                "userVisibleOnly": "true",
            }),
        );
        assert_eq!(status, 200, "subscribe: {v}");
        let d = &v["data"];
        let json = serde_json::json!({
            "endpoint": d["endpoint"],
            "expirationTime": null,
            "keys": d["keys"],
        });
        ServiceSubscription {
            endpoint: d["endpoint"].as_str().unwrap().to_string(),
            client_hash: d["clientHash"].as_str().unwrap().to_string(),
            json: json.to_string(),
        }
    }

    /// The payloads the service received and decrypted for `client_hash`, oldest first.
    pub fn notifications(&self, client_hash: &str) -> Vec<String> {
        let (status, v) = self.post(
            "/get-notifications",
            &serde_json::json!({ "clientHash": client_hash }),
        );
        assert_eq!(status, 200, "get-notifications: {v}");
        v["data"]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_string())
            .collect()
    }

    /// Waits until `client_hash` holds `count` payloads (or fails after `wait`).
    pub fn wait_for(&self, client_hash: &str, count: usize, wait: Duration) -> Vec<String> {
        let start = Instant::now();
        loop {
            let got = self.notifications(client_hash);
            if got.len() >= count {
                return got;
            }
            assert!(
                start.elapsed() < wait,
                "{count} push(es) did not arrive in {wait:?}; got {got:?}; service log: {}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The subscription ends: later pushes to it get 410.
    pub fn expire(&self, client_hash: &str) {
        let (status, v) = self.post(
            &format!("/expire-subscription/{client_hash}"),
            &serde_json::json!({}),
        );
        assert_eq!(status, 200, "expire-subscription: {v}");
    }
}

impl Drop for PushService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `[push]` of a test site whose pushes go to `service` (timeout `timeout`, e.g. "60s"),
/// with room for the requests one test makes for one user (`rate`).
pub fn push_toml(service: &PushService, timeout: &str) -> String {
    format!(
        "[push]\nenabled = true\nsubscriber = \"mailto:it@example.com\"\nvapid_key_file = \"vapid.key\"\ntimeout = \"{timeout}\"\nrate = \"50/10m\"\nservices = [\"{}\"]\n",
        service.origin()
    )
}

/// A portal site with push approval delivering to `service`, its metrics on
/// `metrics_port`; `mfactl init` made its VAPID key.
pub fn push_site(service: &PushService, metrics_port: u16) -> (Site, Portal) {
    let push = push_toml(service, "60s");
    let metrics = format!("metrics_listen = \"127.0.0.1:{metrics_port}\"");
    portal_site(&SiteSpec {
        portal: &metrics,
        extra: &push,
        ..SiteSpec::default()
    })
}

/// The site's VAPID public key (base64url), as the registration page hands it to
/// `pushManager.subscribe`.
pub fn vapid_public(site: &Site) -> String {
    mfa_core::push::VapidKey::read(&site.path().join("vapid.key"))
        .unwrap()
        .public_key_base64url()
}

/// Runs the `push-request` helper on `site`: its one JSON line and whether it exited 0.
pub fn push_request(site: &Site, args: &[&str]) -> (bool, serde_json::Value) {
    let o = Command::new(crate::bin("push-request"))
        .arg(&site.config)
        .args(args)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let v = serde_json::from_str(out.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("push-request printed no JSON: {}", crate::text(&o)));
    (o.status.success(), v)
}

/// A sign-in request for `user` to `service` from `ip`, as a PAM front end starts one once
/// the policy asked for a code: its id and number (`None`: no number matching).
pub fn start_request(site: &Site, user: &str, service: &str, ip: &str) -> (String, Option<u64>) {
    let (ok, v) = push_request(site, &["start", user, service, ip]);
    assert!(ok, "push-request start: {v}");
    (v["id"].as_str().unwrap().to_string(), v["number"].as_u64())
}
