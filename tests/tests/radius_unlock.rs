//! What an unlock made on the portal ("Unlock remote desktop from this network") reaches:
//! the logins `[policy] remember_for` names, by default only RADIUS clients in code-only
//! mode (a gateway that cannot ask for a code). From the unlocked address a code-only
//! client gets in without a code; a RADIUS client in append or challenge mode, and a PAM
//! login (the real module under pamtester), still need the code. `remember_for` extends it.
//! An unlock stamped in the future (another node's clock ahead) is not honoured.
//!
//! The unlock is written into the store as the portal writes it (the portal's own sign-in
//! and button are tested in tests/tests/portal.rs); every decision here is the daemon's and
//! the module's.

use std::process::Command;

use mfa_e2e::pam::{PamResult, PamService, pamtester, require_root};
use mfa_e2e::radius::{
    Daemon, PASSWORD, Relay, Reply, SECRET, attrs, free_udp_port, radclient, spawn_daemon,
    write_pam,
};
use mfa_e2e::{Site, fresh_key, require_tool, text, totp, unique, unix_now};

/// The address the user unlocked, as the gateways report it.
const UNLOCKED: &str = "198.51.100.7";

/// Four RADIUS clients: the code-only gateway on 127.0.0.1, an append-mode VPN on
/// 127.0.0.2, a challenge-mode gateway on 127.0.0.3, and PAM hosts in remote mode on ::1;
/// no trusted network.
fn config(port: u16, remember_for: &str) -> String {
    format!(
        r#"[store]
path = "mfa.db"
key_file = "mfa.key"
[totp]
issuer = "Test"
[policy]
remember = "8h"
{remember_for}
[audit]
syslog = false
[radius]
listen = ["127.0.0.1:{port}", "[::1]:{port}"]
mode = "code-only"
first_factor = "none"
pam_service = "mfa-test"
client_ip_attribute = "Calling-Station-Id"
[[radius.clients]]
name = "rd-gateway"
address = "127.0.0.1/32"
secret = "{SECRET}"
[[radius.clients]]
name = "vpn"
address = "127.0.0.2/32"
secret = "{SECRET}"
mode = "append"
first_factor = "pam"
[[radius.clients]]
name = "citrix"
address = "127.0.0.3/32"
secret = "{SECRET}"
mode = "challenge"
first_factor = "pam"
[[radius.clients]]
name = "pam-hosts"
address = "::1"
secret = "{SECRET}"
mode = "challenge"
first_factor = "none"
"#
    )
}

/// A PAM host in remote mode asking the daemon over ::1: its own mfa.toml with `[remote]`
/// alone, and a PAM service with pam_mfa. The daemon sees its PAM service (Called-Station-Id).
struct Host {
    _dir: tempfile::TempDir,
    svc: PamService,
}

impl Host {
    fn new(port: u16) -> Host {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("remote.secret");
        std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = dir.path().join("mfa.toml");
        std::fs::write(
            &config,
            format!(
                "[remote]\nservers = [\"[::1]:{port}\"]\nsecret_file = \"remote.secret\"\ntimeout = \"2s\"\noffline_queue = \"offline-queue\"\n"
            ),
        )
        .unwrap();
        let svc = PamService::mfa_only(&config, "");
        Host { _dir: dir, svc }
    }
}

fn sqlite(site: &Site, sql: &str) {
    require_tool("sqlite3");
    let o = Command::new("sqlite3")
        .arg(site.db())
        .arg(sql)
        .output()
        .unwrap();
    assert!(o.status.success(), "sqlite3: {}", text(&o));
}

/// An unlock of `ip` for `user`, as `Admin::remember_network` stores it: made `created`,
/// lasting 8 hours from then.
fn unlock(site: &Site, user: &str, ip: &str, created: i64) {
    sqlite(
        site,
        &format!(
            "INSERT INTO unlocks (user, ip, created, expires) VALUES ('{user}', '{ip}', {created}, {})",
            created + 8 * 3600
        ),
    );
}

struct Rig {
    daemon: Daemon,
    site: Site,
    port: u16,
}

impl Rig {
    fn start() -> Rig {
        require_tool("radclient");
        let port = free_udp_port();
        let site = Site::with_config(&config(port, ""));
        let pam = write_pam(site.path());
        let daemon = spawn_daemon(&site.config, Some(&pam));
        daemon.wait_log("listening on", 1);
        Rig { daemon, site, port }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The code-only gateway's code-less request for `user` at `ip`.
    fn gateway(&self, user: &str, ip: &str) -> Reply {
        radclient(
            &self.addr(),
            SECRET,
            "auth",
            &attrs(user, None, Some(&format!("{ip}:3391")), true),
            5,
        )
    }

    /// The append-mode VPN's request with the password and no code.
    fn vpn(&self, user: &str, ip: &str) -> Reply {
        let relay = Relay::bind("127.0.0.2:0", &self.addr());
        relay
            .exchange(&attrs(user, Some(PASSWORD), Some(ip), true))
            .0
    }

    /// The challenge-mode gateway's first round, the password.
    fn citrix(&self, user: &str, ip: &str) -> Reply {
        let relay = Relay::bind("127.0.0.3:0", &self.addr());
        relay
            .exchange(&attrs(user, Some(PASSWORD), Some(ip), true))
            .0
    }

    /// `[policy] remember_for` becomes `list`; the daemon reloads.
    fn remember_for(&self, list: &str, reloads: usize) {
        std::fs::write(
            &self.site.config,
            config(self.port, &format!("remember_for = {list}")),
        )
        .unwrap();
        self.daemon.signal("HUP");
        self.daemon.wait_log("configuration reloaded", reloads);
    }
}

#[test]
fn an_unlock_lets_in_only_code_only_gateways_unless_remember_for_names_more() {
    require_root("the PAM module under pamtester (a service file in /etc/pam.d)");
    let rig = Rig::start();
    let user = unique("ul");
    let key = fresh_key();
    rig.site.enroll(&user, &key);
    let pam = PamService::mfa_only(&rig.site.config, "");
    let host = Host::new(rig.port);
    // Nothing unlocked yet: every client needs the code.
    assert!(rig.gateway(&user, UNLOCKED).is("Access-Reject"));
    unlock(&rig.site, &user, UNLOCKED, unix_now());

    // The code-only gateway from that address: in, without a code.
    let r = rig.gateway(&user, UNLOCKED);
    assert!(r.is("Access-Accept"), "{}", r.output);
    rig.daemon.wait_log("reason=remembered_network", 1);
    // From another address: refused as before.
    assert!(rig.gateway(&user, "198.51.100.8").is("Access-Reject"));
    // The append-mode VPN and the challenge-mode gateway from that very address can ask for
    // a code, so they do: the password alone is not enough.
    let r = rig.vpn(&user, UNLOCKED);
    assert!(r.is("Access-Reject"), "append let in: {}", r.output);
    let r = rig.citrix(&user, UNLOCKED);
    assert!(r.is("Access-Challenge"), "challenge let in: {}", r.output);
    // A PAM login (SSH, sudo) from that address is asked for the code, and the code works.
    let run = pamtester(&pam.name, &user, Some(UNLOCKED), "\n", None);
    assert!(
        run.prompted(),
        "a PAM login skipped the code: {}",
        run.all()
    );
    assert_ne!(run.result, PamResult::Success, "{}", run.all());
    mfa_e2e::avoid_step_boundary(3);
    let run = pamtester(
        &pam.name,
        &user,
        Some(UNLOCKED),
        &format!("{}\n", totp(&key, 0)),
        None,
    );
    assert_eq!(run.result, PamResult::Success, "{}", run.all());
    // So is a PAM login on a PAM host in remote mode, decided by the daemon.
    let run = pamtester(&host.svc.name, &user, Some(UNLOCKED), "\n", None);
    assert!(
        run.prompted(),
        "a remote PAM login skipped the code: {}",
        run.all()
    );
    assert_ne!(run.result, PamResult::Success, "{}", run.all());

    // remember_for names the VPN and these PAM services (here and on the PAM host): they are
    // let in too; the challenge gateway, not named, still asks.
    rig.remember_for(
        &format!(
            "[\"code-only\", \"radius:vpn\", \"pam:{}\", \"pam:{}\"]",
            pam.name, host.svc.name
        ),
        1,
    );
    let check = text(&rig.site.mfactl(&["config", "check"]));
    assert!(
        check.contains("portal unlocks: 8h, for code-only, radius:vpn, pam:"),
        "{check}"
    );
    let run = pamtester(&host.svc.name, &user, Some(UNLOCKED), "", None);
    assert!(!run.prompted(), "{}", run.all());
    assert_eq!(run.result, PamResult::Success, "{}", run.all());
    let r = rig.vpn(&user, UNLOCKED);
    assert!(r.is("Access-Accept"), "{}", r.output);
    let run = pamtester(&pam.name, &user, Some(UNLOCKED), "", None);
    assert!(!run.prompted(), "{}", run.all());
    assert_eq!(run.result, PamResult::Success, "{}", run.all());
    assert!(rig.citrix(&user, UNLOCKED).is("Access-Challenge"));
    assert!(rig.gateway(&user, UNLOCKED).is("Access-Accept"));
    // Not from another address, whatever the list says.
    assert!(rig.vpn(&user, "198.51.100.8").is("Access-Reject"));

    // An empty list: an unlock lets nothing in.
    rig.remember_for("[]", 2);
    assert!(rig.gateway(&user, UNLOCKED).is("Access-Reject"));
    let log = text(&rig.site.mfactl(&["log", "--format", "csv"]));
    assert!(
        log.contains("rd-gateway") && log.contains("remembered_network"),
        "{log}"
    );
}

/// An unlock stamped ten days ahead (made on a node whose clock runs fast) is not honoured
/// now: from its stamp it would last ten days and eight hours. An unlock of now is.
#[test]
fn an_unlock_from_the_future_is_not_honoured() {
    let rig = Rig::start();
    let user = unique("uf");
    rig.site.enroll(&user, &fresh_key());
    let now = unix_now();
    unlock(&rig.site, &user, UNLOCKED, now + 10 * 86_400);
    let r = rig.gateway(&user, UNLOCKED);
    assert!(
        r.is("Access-Reject"),
        "a future unlock was honoured: {}",
        r.output
    );
    unlock(&rig.site, &user, "198.51.100.9", now);
    assert!(rig.gateway(&user, "198.51.100.9").is("Access-Accept"));
    // That login wrote the record: the future stamp became an unlock of now, lasting
    // `remember` from now at most, not ten days and eight hours (as mfactl lists it).
    let list = text(&rig.site.mfactl(&["unlocks", &user]));
    let line = list
        .lines()
        .find(|l| l.contains(UNLOCKED))
        .unwrap_or_else(|| panic!("{list}"));
    let until = line.rsplit("until ").next().unwrap().trim();
    let (earliest, latest) = (
        mfa_config::format_utc(now + 8 * 3600),
        mfa_config::format_utc(unix_now() + 8 * 3600),
    );
    assert!(
        earliest.as_str() <= until && until <= latest.as_str(),
        "{until} not within remember of now: {list}"
    );
}
