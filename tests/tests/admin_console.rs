//! The administrator's console in mfa-portal (issue 22), against the built binaries with
//! real peers: PAM (pam_unix, a Unix user with a password, Unix groups for `[admin]
//! groups`), oathtool's codes, Debian's chromium through playwright-core
//! (tests/browser/admin.mjs), zbarimg reading the QR code the console shows, and mfactl
//! checking every change from the side.
//!
//! - In the browser: an administrator signs in, finds a user among 10,000, unlinks the
//!   user (then `mfactl auth` with the old key is refused), links a new key (the QR code
//!   decodes to a key `mfactl auth` accepts), gives temporary access (its code works
//!   once), sees every action in the log with themself as the actor, and reads the
//!   roll-out's counts, which are `mfactl report --format json`'s.
//! - Over HTTP, one test each: a user in no admin group gets 403 and no session; a
//!   help-desk member cannot change the go-live, the networks or the exemptions; no
//!   action works without the CSRF token; nobody acts on their own account, and a
//!   user-page session does not open the console. Each checks its refusals (and actions)
//!   in `mfactl log` with the administrator as the actor.
//! - `[admin] listen`: the console on its own address and not on the portal's; without
//!   `[admin] groups` no console at all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use mfa_e2e::pam::{PamService, UnixGroup, UnixUser, require_root};
use mfa_e2e::portal::{Client, Portal, Reply, node, permit_confdir, zbar_svg};
use mfa_e2e::{Site, free_tcp_port, fresh_key, text, totp, unique};

/// A site whose console lets the members of `admin` and `helpdesk` in, with the password
/// through the PAM service `pam_service` (in /etc/pam.d, or `confdir`), MFA enforced from
/// now (no grace). `admin_extra` goes into `[admin]`.
fn console_site(pam_service: &str, admin: &str, helpdesk: &str, admin_extra: &str) -> (Site, u16) {
    let port = free_tcp_port();
    let site = Site::with_config(&format!(
        r#"[store]
path = "mfa.db"
key_file = "mfa.key"
[totp]
issuer = "Test"
[audit]
syslog = false
[portal]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
pam_service = "{pam_service}"
trusted_proxies = ["127.0.0.1"]
[admin]
groups = {{ admin = ["{admin}"], helpdesk = ["{helpdesk}"] }}
{admin_extra}
"#
    ));
    let o = site.mfactl(&["init"]);
    assert!(o.status.success(), "{}", text(&o));
    (site, port)
}

/// The PAM service of the sign-in: the system's passwords (pam_unix).
fn unix_service() -> PamService {
    PamService::new(
        &unique("mfa-admin-e2e-"),
        "auth required pam_unix.so\naccount required pam_unix.so\n",
    )
}

/// Signs in to the console: the form's CSRF token, the password, the current code.
fn sign_in(c: &mut Client, user: &str, password: &str, key: &str) -> Reply {
    let csrf = c.get("/admin").csrf();
    c.post(
        "/admin",
        &[
            ("action", "signin"),
            ("user", user),
            ("password", password),
            ("code", &totp(key, 0)),
            ("csrf", &csrf),
        ],
    )
}

fn log_csv(site: &Site) -> String {
    String::from_utf8(site.mfactl(&["log", "--format", "csv"]).stdout).unwrap()
}

/// Whether the audit trail has an event about `user` with `reason` by `actor`.
fn logged(log: &str, user: &str, actor: &str, reason: &str) -> bool {
    log.lines().any(|l| {
        let f: Vec<&str> = l.split(',').collect();
        f.len() >= 6 && f[1] == user && f[2] == actor && f[5] == reason
    })
}

fn totals(site: &Site) -> serde_json::Value {
    let o = site.mfactl(&["report", "--format", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["totals"].clone()
}

#[test]
fn an_administrator_finds_unlinks_links_and_gives_temporary_access_in_a_real_browser() {
    require_root("a Unix user with a password, a Unix group, and a PAM service in /etc/pam.d");
    let home = tempfile::tempdir().unwrap();
    let admin = UnixUser::new(home.path());
    let admins = UnixGroup::with_members(&[&admin.name]);
    let helpdesk = UnixGroup::with_members(&[]);
    let svc = unix_service();
    let (site, port) = console_site(&svc.name, &admins.name, &helpdesk.name, "");
    let admin_key = fresh_key();
    site.enroll(&admin.name, &admin_key);

    // 10,000 users (enrolled, through the store benchmark's helper), a few who are not, and
    // the one to find, who logged in once.
    let o = Command::new(env!("CARGO_BIN_EXE_bench-store"))
        .arg(&site.config)
        .args(["setup", "0", "10000"])
        .output()
        .unwrap();
    assert!(o.status.success(), "bench-store: {}", text(&o));
    for n in ["anna.devries", "bram.bakker", "chris.smit"] {
        let o = site.mfactl(&["temp-access", n, "--force"]);
        assert!(o.status.success(), "{}", text(&o));
    }
    // Two who logged in without a key after the go-live (overdue), two invited and never
    // seen; the enrolments spread over the last 60 days (what the chart per day shows).
    for n in ["dirk.mulder", "eva.peters"] {
        let o = site.mfactl(&[
            "auth",
            n,
            "--force",
            "--ip",
            "198.51.100.9",
            "--code",
            "000000",
        ]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    }
    for n in ["fleur.vos", "gijs.jong"] {
        mfa_e2e::portal::invite(&site, n);
    }
    mfa_e2e::portal::sqlite(
        &site.db(),
        "UPDATE users SET mfa_created = mfa_created - (abs(random()) % 60) * 86400 WHERE name LIKE 'bench%'",
    );
    let target = unique("tgt");
    let target_key = fresh_key();
    site.enroll(&target, &target_key);
    mfa_e2e::avoid_step_boundary(3);
    let o = site.mfactl(&[
        "auth",
        &target,
        "--ip",
        "198.51.100.1",
        "--code",
        &totp(&target_key, 0),
    ]);
    assert!(o.status.success(), "{}", text(&o));

    let portal = Portal::start(&site.config, port);
    let shots = std::env::var_os("MFA_ADMIN_SCREENSHOTS");
    let r = node(
        "admin.mjs",
        &serde_json::json!({
            "url": portal.url, "user": admin.name, "password": admin.password,
            "key": admin_key, "target": target, "targetKey": target_key, "search": "tgt",
            "mfactl": mfa_e2e::bin("mfactl"), "config": site.config,
            "out": site.path(),
            "shots": shots.as_ref().map(|s| s.to_string_lossy().into_owned()),
        }),
    );

    // After the unlink, the old key was refused: the user is not enrolled.
    assert_eq!(r["old"]["status"], 1, "{r}");
    assert!(
        r["old"]["out"].as_str().unwrap().contains("not_enrolled"),
        "{r}"
    );
    // The counts the console showed are the report's.
    let t = totals(&site);
    for (id, key) in [
        ("users", "users"),
        ("enrolled", "enrolled"),
        ("grace", "in_grace"),
        ("overdue", "overdue"),
        ("never-seen", "invited_not_seen"),
        ("locked", "locked"),
        ("exempt", "exempt"),
        ("invites-open", "invites_open"),
        ("invites-expired", "invites_expired"),
    ] {
        assert_eq!(r["counts"][id], t[key], "{id}: console {r}, mfactl {t}");
    }
    assert_eq!(t["users"], 10_000 + 7, "{t}");
    assert_eq!(t["overdue"], 2, "{t}");
    assert_eq!(t["invited_not_seen"], 2, "{t}");

    // The QR code shown decodes to the key shown, which `mfactl auth` accepts.
    let key = r["key"].as_str().unwrap().to_string();
    let uri = zbar_svg(&site.path().join("admin-qr.svg"));
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={key}")), "{uri} vs {key}");
    mfa_e2e::avoid_step_boundary(3);
    let o = site.mfactl(&[
        "auth",
        &target,
        "--ip",
        "198.51.100.1",
        "--code",
        &totp(&key, 0),
    ]);
    assert!(o.status.success(), "the linked key logs in: {}", text(&o));
    // The temporary access code works once.
    let temp = r["temp"].as_str().unwrap();
    let auth_temp = || site.mfactl(&["auth", &target, "--ip", "198.51.100.1", "--code", temp]);
    let o = auth_temp();
    assert!(o.status.success(), "temporary access: {}", text(&o));
    assert!(text(&o).contains("temporary_access"), "{}", text(&o));
    let o = auth_temp();
    assert_eq!(o.status.code(), Some(1), "used twice: {}", text(&o));

    // Every action in `mfactl log`, the administrator the actor.
    let log = log_csv(&site);
    let actor = format!("mfa-portal:admin:{}", admin.name);
    for reason in ["key_removed", "unconfirmed", "issued"] {
        assert!(
            logged(&log, &target, &actor, reason),
            "no {reason} by {actor}: {log}"
        );
    }
    assert!(
        logged(&log, &admin.name, "mfa-portal:admin", "valid_code"),
        "the console's sign-in: {log}"
    );
    // Nothing secret in the portal's log.
    let plog = portal.log();
    for s in [key.as_str(), temp, &admin.password] {
        assert!(!plog.contains(s), "the portal log holds a secret: {plog}");
    }
}

/// A running console with three signed-up people (an administrator, a help-desk member,
/// a user in no admin group: Unix users with passwords, enrolled), a user to act on who is
/// enrolled and one who is not.
struct Fixture {
    _home: tempfile::TempDir,
    admin: UnixUser,
    hd: UnixUser,
    outsider: UnixUser,
    _groups: (UnixGroup, UnixGroup),
    _svc: PamService,
    site: Site,
    portal: Portal,
    /// The TOTP keys of admin, hd, outsider.
    keys: [String; 3],
    target: String,
    idle: String,
    config_before: String,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with("")
    }

    /// [`Fixture::new`] with `extra` after `[admin]` (another table: `[push]`).
    fn with(extra: &str) -> Fixture {
        require_root("Unix users with passwords, Unix groups, and a PAM service in /etc/pam.d");
        let home = tempfile::tempdir().unwrap();
        let (admin, hd, outsider) = (
            UnixUser::new(home.path()),
            UnixUser::new(home.path()),
            UnixUser::new(home.path()),
        );
        let admins = UnixGroup::with_members(&[&admin.name]);
        let helpdesk = UnixGroup::with_members(&[&hd.name]);
        let svc = unix_service();
        let (site, port) = console_site(&svc.name, &admins.name, &helpdesk.name, extra);
        let keys = [fresh_key(), fresh_key(), fresh_key()];
        for (u, k) in [&admin, &hd, &outsider].iter().zip(&keys) {
            site.enroll(&u.name, k);
        }
        let (target, idle) = (unique("tgt"), unique("idle"));
        site.enroll(&target, &fresh_key());
        let o = site.mfactl(&["temp-access", &idle, "--force"]);
        assert!(o.status.success(), "{}", text(&o));
        let portal = Portal::start(&site.config, port);
        let config_before = std::fs::read_to_string(&site.config).unwrap();
        mfa_e2e::avoid_step_boundary(5);
        Fixture {
            _home: home,
            admin,
            hd,
            outsider,
            _groups: (admins, helpdesk),
            _svc: svc,
            site,
            portal,
            keys,
            target,
            idle,
            config_before,
        }
    }

    /// A client from its own address (so the posts of one test stay under the rate limits).
    fn client(&self, last_octet: u8) -> Client {
        Client::new(&self.portal.url).from(&format!("198.51.100.{last_octet}"))
    }

    fn config_unchanged(&self) {
        assert_eq!(
            std::fs::read_to_string(&self.site.config).unwrap(),
            self.config_before,
            "the configuration file changed"
        );
    }

    fn by(&self, u: &UnixUser) -> String {
        format!("mfa-portal:admin:{}", u.name)
    }
}

#[test]
fn a_user_outside_the_admin_groups_gets_403_and_no_session() {
    let f = Fixture::new();
    // The password and the code are right: 403 all the same, and no session.
    let mut out = f.client(1);
    let r = sign_in(&mut out, &f.outsider.name, &f.outsider.password, &f.keys[2]);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("not an administrator"), "{}", r.body);
    for page in [
        "/admin/users",
        "/admin/rollout",
        "/admin/log",
        "/admin/networks",
    ] {
        let r = out.get(page);
        assert!(r.body.contains("id=\"signin\""), "{page}: {}", r.body);
        assert!(!r.body.contains(&f.target), "{page}: {}", r.body);
    }
    // A wrong password: 401 and the form again.
    let mut nobody = f.client(2);
    let csrf = nobody.get("/admin").csrf();
    let r = nobody.post(
        "/admin",
        &[
            ("action", "signin"),
            ("user", &f.admin.name),
            ("password", "wrong"),
            ("code", "123456"),
            ("csrf", &csrf),
        ],
    );
    assert_eq!(r.status, 401, "{}", r.body);
    let log = log_csv(&f.site);
    assert!(
        logged(
            &log,
            &f.outsider.name,
            &f.by(&f.outsider),
            "not_administrator"
        ),
        "{log}"
    );
    assert!(
        logged(&log, &f.admin.name, "mfa-portal:admin", "wrong_password"),
        "{log}"
    );
}

#[test]
fn a_help_desk_member_cannot_change_the_go_live_networks_or_exemptions() {
    let f = Fixture::new();
    let mut help = f.client(3);
    let r = sign_in(&mut help, &f.hd.name, &f.hd.password, &f.keys[1]);
    assert_eq!(r.status, 303, "{}", r.body);
    let page = help.get("/admin/rollout");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("(help desk)"), "{}", page.body);
    assert!(
        !page.body.contains("go-live-form") && !page.body.contains("bulk-invites"),
        "the help desk sees no go-live form: {}",
        page.body
    );
    let csrf = page.csrf();
    for (path, fields) in [
        (
            "/admin/rollout",
            vec![("action", "go-live-set"), ("date", "2030-01-01")],
        ),
        ("/admin/rollout", vec![("action", "go-live-clear")]),
        ("/admin/rollout", vec![("action", "bulk-invites")]),
        (
            "/admin/networks",
            vec![("action", "trusted-add"), ("entry", "192.0.2.0/24")],
        ),
        (
            "/admin/networks",
            vec![("action", "exempt-user-add"), ("entry", "svc-x")],
        ),
    ] {
        let mut fields = fields.clone();
        fields.push(("csrf", &csrf));
        let r = help.post(path, &fields);
        assert_eq!(r.status, 403, "{path} {fields:?}: {}", r.body);
        assert!(
            r.body.contains("Your role does not allow this"),
            "{}",
            r.body
        );
    }
    f.config_unchanged();
    let invites = text(&f.site.mfactl(&["report", "--format", "json"]));
    assert!(invites.contains("\"invites_open\": 0"), "{invites}");
    // The help desk's own work goes through: temporary access for another user.
    let r = help.post(
        "/admin/user",
        &[
            ("action", "temp-access"),
            ("user", &f.idle),
            ("valid", "1h"),
            ("csrf", &csrf),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"temp-code\""), "{}", r.body);
    let log = log_csv(&f.site);
    assert!(logged(&log, "*", &f.by(&f.hd), "role_refused"), "{log}");
    assert!(logged(&log, &f.idle, &f.by(&f.hd), "issued"), "{log}");
}

#[test]
fn no_action_of_the_console_works_without_its_csrf_token() {
    let f = Fixture::new();
    let mut adm = f.client(4);
    let r = sign_in(&mut adm, &f.admin.name, &f.admin.password, &f.keys[0]);
    assert_eq!(r.status, 303, "{}", r.body);
    let good = adm.get("/admin/users").csrf();
    // Another session's token is no token of this one.
    let mut help = f.client(3);
    let r = sign_in(&mut help, &f.hd.name, &f.hd.password, &f.keys[1]);
    assert_eq!(r.status, 303, "{}", r.body);
    let other_token = help.get("/admin/users").csrf();
    let (target, idle) = (f.target.as_str(), f.idle.as_str());
    let actions: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "/admin/user",
            vec![("action", "unlink-confirm"), ("user", target)],
        ),
        ("/admin/user", vec![("action", "link"), ("user", idle)]),
        (
            "/admin/user",
            vec![("action", "temp-access"), ("user", target)],
        ),
        ("/admin/user", vec![("action", "invite"), ("user", idle)]),
        ("/admin/user", vec![("action", "unlock"), ("user", target)]),
        (
            "/admin/user",
            vec![("action", "revoke-networks"), ("user", target)],
        ),
        (
            "/admin/user",
            vec![
                ("action", "remove-device"),
                ("user", target),
                ("device", "00112233445566778899aabbccddeeff"),
            ],
        ),
        (
            "/admin/rollout",
            vec![("action", "go-live-set"), ("date", "2030-01-01")],
        ),
        ("/admin/rollout", vec![("action", "go-live-clear")]),
        ("/admin/rollout", vec![("action", "bulk-invites")]),
        (
            "/admin/networks",
            vec![("action", "trusted-add"), ("entry", "192.0.2.0/24")],
        ),
        (
            "/admin/networks",
            vec![("action", "exempt-group-add"), ("entry", "svc")],
        ),
        ("/admin/prefs", vec![("tz", "Europe/Amsterdam")]),
        ("/admin", vec![("action", "signout")]),
    ];
    let events_before = log_csv(&f.site).lines().count();
    for (i, (path, fields)) in actions.iter().enumerate() {
        // An address of its own per action: the posts stay under the rate limit.
        adm.forwarded = Some(format!("198.51.100.{}", 100 + i));
        for token in [None, Some("x"), Some(other_token.as_str())] {
            let mut fields = fields.clone();
            if let Some(t) = token {
                fields.push(("csrf", t));
            }
            let r = adm.post(path, &fields);
            assert_eq!(r.status, 403, "{path} {fields:?}: {}", r.body);
            assert!(r.body.contains("did not come from this page"), "{}", r.body);
        }
    }
    // Nothing changed: the file, the key, the codes, the invites; the session still works.
    f.config_unchanged();
    adm.forwarded = Some("198.51.100.4".into());
    let page = adm.get(&format!("/admin/user?name={target}"));
    assert!(
        page.body.contains("<dd id=\"mfa\">MFA linked</dd>"),
        "{}",
        page.body
    );
    let page = adm.get(&format!("/admin/user?name={idle}"));
    assert!(page.body.contains("No MFA code linked"), "{}", page.body);
    assert!(page.body.contains("No open invite"), "{}", page.body);
    let log = log_csv(&f.site);
    let new: Vec<&str> = log.lines().skip(events_before).collect();
    let refused = new
        .iter()
        .filter(|l| l.ends_with(",deny,csrf_refused"))
        .count();
    assert_eq!(refused, actions.len() * 3, "each refusal audited: {log}");
    assert_eq!(refused, new.len(), "nothing else happened: {log}");
    // No user named: "-", written "'-" in the CSV (a cell that starts with "-" is
    // neutralised for spreadsheets); the administrator is the actor.
    assert!(logged(&log, "'-", &f.by(&f.admin), "csrf_refused"), "{log}");
    // Without a session at all: refused too.
    let mut bare = f.client(5);
    let r = bare.post(
        "/admin/user",
        &[
            ("action", "unlink-confirm"),
            ("user", target),
            ("csrf", &good),
        ],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(page_still_linked(&f, &mut adm));
}

fn page_still_linked(f: &Fixture, c: &mut Client) -> bool {
    c.get(&format!("/admin/user?name={}", f.target))
        .body
        .contains("<dd id=\"mfa\">MFA linked</dd>")
}

#[test]
fn nobody_acts_on_their_own_account_and_user_sessions_stay_apart() {
    let f = Fixture::new();
    let mut adm = f.client(4);
    let r = sign_in(&mut adm, &f.admin.name, &f.admin.password, &f.keys[0]);
    assert_eq!(r.status, 303, "{}", r.body);
    let csrf = adm.get("/admin/users").csrf();
    // The own page offers no action; a forged one is refused by the core.
    let own = adm.get(&format!("/admin/user?name={}", f.admin.name));
    assert!(own.body.contains("id=\"own\""), "{}", own.body);
    assert!(!own.body.contains("id=\"unlink\""), "{}", own.body);
    for action in [
        "unlink-confirm",
        "link",
        "temp-access",
        "unlock",
        "revoke-networks",
    ] {
        let r = adm.post(
            "/admin/user",
            &[("action", action), ("user", &f.admin.name), ("csrf", &csrf)],
        );
        assert_eq!(r.status, 403, "{action}: {}", r.body);
        assert!(r.body.contains("your own account"), "{}", r.body);
    }
    let r = adm.get(&format!("/admin/user?name={}", f.admin.name));
    assert!(
        r.body.contains("<dd id=\"mfa\">MFA linked</dd>"),
        "{}",
        r.body
    );
    let log = log_csv(&f.site);
    assert!(
        logged(&log, &f.admin.name, &f.by(&f.admin), "own_account"),
        "{log}"
    );
    assert!(
        !logged(&log, &f.admin.name, &f.by(&f.admin), "issued"),
        "{log}"
    );

    // A user page's session does not open the console, nor the console's the user pages.
    let mut user = f.client(6);
    let csrf = user.get("/account").csrf();
    let r = user.post(
        "/account",
        &[
            ("action", "signin"),
            ("user", &f.hd.name),
            ("password", &f.hd.password),
            ("code", &totp(&f.keys[1], 0)),
            ("csrf", &csrf),
        ],
    );
    assert_eq!(r.status, 200, "My account: {}", r.body);
    assert!(
        user.cookie
            .as_deref()
            .unwrap_or("")
            .starts_with("mfa_session=")
    );
    let r = user.get("/admin/users");
    assert!(r.body.contains("id=\"signin\""), "{}", r.body);
    let mut c2 = f.client(7);
    c2.cookie = adm.cookie.clone();
    assert!(
        adm.cookie
            .as_deref()
            .unwrap_or("")
            .starts_with("mfa_admin=")
    );
    assert!(c2.get("/account").body.contains("id=\"signin\""));
}

#[test]
fn the_console_on_its_own_listener_and_off_without_admin_groups() {
    // root's group holds root: the sign-in's PAM service lets any password in (a site's own
    // pam.d), the code is checked.
    let console_port = free_tcp_port();
    let (site, port) = console_site(
        "mfa-admin-permit",
        "root",
        "nobody-group-x",
        &format!("listen = \"127.0.0.1:{console_port}\""),
    );
    let confdir = permit_confdir(site.path(), "mfa-admin-permit");
    let key = fresh_key();
    site.enroll("root", &key);
    let portal = Portal::start_with(&site.config, port, Some(&confdir));
    let start = std::time::Instant::now();
    while !portal.log().contains("console listening on") {
        assert!(start.elapsed().as_secs() < 10, "{}", portal.log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Not on the portal's listener.
    let mut main = Client::new(&portal.url);
    assert_eq!(main.get("/admin").status, 404);
    assert_eq!(main.get("/admin/users").status, 404);
    assert_eq!(main.get("/account").status, 200);
    // On its own: `/` leads there, the user pages are not there.
    let mut con = Client::new(&format!("http://127.0.0.1:{console_port}"));
    let r = con.get("/");
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), ["/admin"]);
    assert_eq!(con.get("/account").status, 404);
    let r = con.get("/admin?lang=nl");
    assert!(r.body.contains("Aanmelden"), "{}", r.body);
    mfa_e2e::avoid_step_boundary(3);
    let r = sign_in(&mut con, "root", "any", &key);
    assert_eq!(r.status, 303, "{}", r.body);
    let r = con.get("/admin/users");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<strong>root</strong>"), "{}", r.body);
    for h in [
        "content-security-policy",
        "x-frame-options",
        "cache-control",
    ] {
        assert!(!r.header(h).is_empty(), "{h}");
    }
    drop(portal);

    // Without [admin] groups there is no console.
    let port = free_tcp_port();
    let site = Site::new(&format!(
        "[audit]\nsyslog = false\n[portal]\nlisten = \"127.0.0.1:{port}\"\n"
    ));
    assert!(site.mfactl(&["init"]).status.success());
    let portal = Portal::start(&site.config, port);
    let mut c = Client::new(&portal.url);
    assert_eq!(c.get("/admin").status, 404);
}

/// A user's page lists their phones for push approval from the store (as `mfactl push
/// list` does), and the help desk removes one (a lost phone): through the core, audited
/// with the help-desk member as the actor, gone for `mfactl push list` too.
#[test]
fn a_users_phones_are_listed_and_the_help_desk_removes_one() {
    let f = Fixture::with(
        "[push]\nenabled = true\nsubscriber = \"mailto:it@example.com\"\nvapid_key_file = \"vapid.key\"\n",
    );
    let owner = unique("phone");
    let key = fresh_key();
    f.site.enroll(&owner, &key);
    let phone = mfa_e2e::phone::Phone::register(&f.site.config, &owner, &key);
    let id = phone.device.to_string();
    let listed = |f: &Fixture| {
        let o = f.site.mfactl(&["push", "list", &owner]);
        assert!(o.status.success(), "{}", text(&o));
        text(&o)
    };
    assert!(listed(&f).contains(&id), "{}", listed(&f));

    let mut help = f.client(6);
    let r = sign_in(&mut help, &f.hd.name, &f.hd.password, &f.keys[1]);
    assert_eq!(r.status, 303, "{}", r.body);
    let page = help.get(&format!("/admin/user?name={owner}"));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Phones for push approval"),
        "{}",
        page.body
    );
    assert!(page.body.contains("test phone"), "{}", page.body);
    assert!(
        page.body.contains(&format!("id=\"remove-device-{id}\"")),
        "{}",
        page.body
    );
    let csrf = page.csrf();
    let r = help.post(
        "/admin/user",
        &[
            ("action", "remove-device"),
            ("user", &owner),
            ("device", &id),
            ("csrf", &csrf),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("The phone is removed"), "{}", r.body);
    assert!(!r.body.contains("test phone"), "{}", r.body);
    assert!(r.body.contains("None registered."), "{}", r.body);
    assert!(!listed(&f).contains(&id), "{}", listed(&f));
    // Again: nothing to remove, said so; an id that is no id changes nothing either.
    for device in [id.as_str(), "not-an-id"] {
        let r = help.post(
            "/admin/user",
            &[
                ("action", "remove-device"),
                ("user", &owner),
                ("device", device),
                ("csrf", &csrf),
            ],
        );
        assert!(
            r.body.contains("That phone was not registered") || r.status == 400,
            "{device}: {} {}",
            r.status,
            r.body
        );
    }
    let log = log_csv(&f.site);
    assert!(
        logged(&log, &owner, &f.by(&f.hd), "device_removed"),
        "{log}"
    );
    // In Dutch, the list's words too.
    let page = help.get(&format!("/admin/user?name={}&lang=nl", f.target));
    assert!(
        page.body.contains("Telefoons voor goedkeuren via push"),
        "{}",
        page.body
    );
}

/// An administrator signs in with the password and the phone's approval instead of a code
/// (issue 22, "push where that exists"): the real portal delivers the request to a push
/// service (web-push-testing), the phone approves with the number the waiting page shows,
/// and the console opens; the approval lets one sign-in in. A denial on the phone, and a
/// wrong password on the push path, sign in no one. Audited as every sign-in.
#[test]
fn an_administrator_signs_in_with_password_and_push() {
    use mfa_e2e::phone::{OnPhone, Phone};
    use mfa_e2e::push::{PushService, push_toml, vapid_public};
    let service = PushService::start();
    let f = Fixture::with(&push_toml(&service, "60s"));
    let sub = service.subscribe(&vapid_public(&f.site));
    let phone = Phone::register_with(&f.site.config, &f.admin.name, &f.keys[0], &sub.json);

    let push_sign_in = |c: &mut Client, password: &str| {
        let form = c.get("/admin");
        assert!(form.body.contains("id=\"signin-push\""), "{}", form.body);
        let csrf = form.csrf();
        c.post(
            "/admin",
            &[
                ("action", "signin"),
                ("user", &f.admin.name),
                ("password", password),
                ("code", ""),
                ("with", "push"),
                ("csrf", &csrf),
            ],
        )
    };
    // A wrong password: no push, the push path's one refusal.
    let mut c = f.client(7);
    let r = push_sign_in(&mut c, "wrong");
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("no phone of yours"), "{}", r.body);
    assert!(service.notifications(&sub.client_hash).is_empty());

    // The right password: the waiting page, with the number; not signed in yet.
    let r = push_sign_in(&mut c, &f.admin.password);
    assert_eq!(r.status, 303, "{}", r.body);
    let wait = c.get("/admin/push");
    assert_eq!(wait.status, 200, "{}", wait.body);
    assert!(
        wait.headers.iter().any(|(k, v)| k == "refresh" && v == "3"),
        "{:?}",
        wait.headers
    );
    let number: u8 = wait
        .body
        .split("Enter ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number: {}", wait.body));
    assert!(c.get("/admin/users").body.contains("id=\"signin\""));
    let got = service.wait_for(&sub.client_hash, 1, std::time::Duration::from_secs(10));
    let p: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(p["service"], "mfa-portal:admin");
    let id = mfa_core::PushId::parse_hex(p["id"].as_str().unwrap()).unwrap();
    phone.decide(&id, OnPhone::Approve(Some(number)));
    let r = c.get("/admin/push");
    assert_eq!(r.status, 303, "{}", r.body);
    let users = c.get("/admin/users");
    assert_eq!(users.status, 200, "{}", users.body);
    assert!(users.body.contains("(administrator)"), "{}", users.body);
    // The approval is used up: the waiting page has nothing more to give.
    let again = c.get("/admin/push");
    assert!(again.body.contains("id=\"signin\""), "{}", again.body);

    // Denied on the phone: refused, not signed in.
    let mut d = f.client(8);
    let r = push_sign_in(&mut d, &f.admin.password);
    assert_eq!(r.status, 303, "{}", r.body);
    let got = service.wait_for(&sub.client_hash, 2, std::time::Duration::from_secs(10));
    let p: serde_json::Value = serde_json::from_str(&got[1]).unwrap();
    let id = mfa_core::PushId::parse_hex(p["id"].as_str().unwrap()).unwrap();
    phone.decide(&id, OnPhone::Deny);
    let r = d.get("/admin/push");
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("not approved on the phone"), "{}", r.body);
    assert!(d.get("/admin/users").body.contains("id=\"signin\""));

    // Someone with no phone: the same refusal as a wrong password, audited.
    let mut h = f.client(9);
    let csrf = h.get("/admin").csrf();
    let r = h.post(
        "/admin",
        &[
            ("action", "signin"),
            ("user", &f.hd.name),
            ("password", &f.hd.password),
            ("code", ""),
            ("with", "push"),
            ("csrf", &csrf),
        ],
    );
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("no phone of yours"), "{}", r.body);

    let log = log_csv(&f.site);
    assert!(
        logged(&log, &f.hd.name, "mfa-portal:admin", "push_no_device"),
        "{log}"
    );
    assert!(
        logged(&log, &f.admin.name, "mfa-portal:admin", "push_approved"),
        "{log}"
    );
    assert!(
        logged(&log, &f.admin.name, "mfa-portal:admin", "push_denied"),
        "{log}"
    );
}
