//! Reply attributes per rule (issue 23, item 3) and gateway presets (item 4) through the real
//! peers:
//!
//! - radclient (`-x` prints every attribute it received, named by FreeRADIUS's dictionaries)
//!   shows the configured Class, Filter-Id, Reply-Message and the vendor attributes
//!   (Fortinet-Group-Name, Cisco-AVPair) on the Access-Accept of a member of the mapped
//!   group, through a code-only client and a challenge-mode one; none for a non-member, none
//!   on a reject, none on the challenge;
//! - pyrad, with the small dictionary in `tests/pyrad/dictionary`, decodes the same reply's
//!   vendor attributes to the configured values;
//! - `mfactl config check` says what each preset set, warns where a gateway gives up before
//!   a held push is answered, and names a bad reply value by line and key.
//!
//! Group membership is real: groupadd and usermod, read through NSS as the rules read it.

use std::process::Command;

use mfa_e2e::pam::{UnixGroup, UnixUser, require_root};
use mfa_e2e::radius::{
    PASSWORD, Relay, Reply, SECRET, attrs, free_udp_port, spawn_daemon, write_pam,
};
use mfa_e2e::{Site, code_of, fresh_key, require_tool, text, totp, wrong_code};

/// Not an office address: every login types its code.
const OUTSIDE: &str = "198.51.100.7";

/// Three gateways: a FortiGate (preset, made code-only by its own key) on 127.0.0.1, an ASA
/// (its preset's challenge mode over `[radius]`'s code-only, the password through PAM) on
/// 127.0.0.3 and an RD Gateway (preset: code-only, the client's address read from
/// Tunnel-Client-Endpoint) on 127.0.0.4. Members of `admins` get the reply attributes of
/// their gateway's rule.
fn config(port: u16, admins: &str) -> String {
    format!(
        r#"[store]
path = "mfa.db"
key_file = "mfa.key"
[policy]
trusted_networks = ["10.0.0.0/8"]
[audit]
syslog = false
[radius]
listen = ["127.0.0.1:{port}"]
mode = "code-only"
first_factor = "none"
pam_service = "mfa-test"
[[radius.clients]]
name = "forti"
address = "127.0.0.1/32"
secret = "{SECRET}"
preset = "fortigate"
mode = "code-only"
[[radius.clients]]
name = "asa"
address = "127.0.0.3/32"
secret = "{SECRET}"
preset = "asa"
first_factor = "pam"
[[radius.clients]]
name = "rdg"
address = "127.0.0.4/32"
secret = "{SECRET}"
preset = "rd-gateway"

# Put the group {admins} into the FortiGate group "admins".
[[policy.rules]]
name = "forti-admins"
radius_clients = ["forti"]
groups = ["{admins}"]
action = "code"
reply = {{ class = "vpn-admins", filter_id = "acl-admins", reply_message = "Welcome, admin", fortinet_group = "admins" }}

# And into the ASA's group policy, with a privilege level and an address pool.
[[policy.rules]]
name = "asa-admins"
radius_clients = ["asa"]
groups = ["{admins}"]
action = "code"
reply = {{ class = "OU=Admins;", cisco_avpair = ["shell:priv-lvl=15", "ip:addr-pool=admins"] }}
"#
    )
}

/// The attribute lines of the reply radclient printed (`-x`), trimmed: `Class = 0x...`.
fn reply_lines(r: &Reply) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_reply = false;
    for line in r.output.lines() {
        if line.starts_with("Received ") {
            in_reply = true;
            continue;
        }
        if in_reply && line.starts_with('\t') {
            out.push(line.trim().to_string());
        } else if in_reply && !line.trim().is_empty() {
            in_reply = false;
        }
    }
    out
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// No reply attribute of any rule: no Class, Filter-Id or vendor attribute.
fn assert_bare(r: &Reply) {
    let lines = reply_lines(r);
    for name in [
        "Class",
        "Filter-Id",
        "Fortinet-Group-Name",
        "Cisco-AVPair",
        "PaloAlto-User-Group",
        "Vendor-Specific",
        "Attr-26",
    ] {
        assert!(
            !lines.iter().any(|l| l.starts_with(name)),
            "{name} where none belongs: {lines:#?}\n{}",
            r.output
        );
    }
    assert!(
        !r.messages.iter().any(|m| m.contains("Welcome, admin")),
        "{}",
        r.output
    );
}

/// pyrad (Debian's python3-pyrad) decodes `reply` with `tests/pyrad/dictionary`: each
/// attribute's name and its values, as text.
fn pyrad_decode(reply: &[u8]) -> serde_json::Value {
    let dict = concat!(env!("CARGO_MANIFEST_DIR"), "/pyrad/dictionary");
    let script = r#"
import json, sys
from pyrad.dictionary import Dictionary
from pyrad.packet import Packet
d = Dictionary(sys.argv[1])
p = Packet(packet=bytes.fromhex(sys.argv[2]), dict=d)
out = {}
for key in p.keys():
    name = key if isinstance(key, str) else d.attrindex.GetBackward(key)
    vals = p[key]
    out[name] = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in vals]
print(json.dumps(out))
"#;
    // Debian's own interpreter: python3-pyrad is installed for it, not for another python3
    // that may come first in PATH.
    let o = Command::new("/usr/bin/python3")
        .args(["-c", script, dict])
        .arg(reply.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .output()
        .expect("/usr/bin/python3 with python3-pyrad");
    assert!(o.status.success(), "pyrad: {}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
}

#[test]
fn a_member_of_the_mapped_group_gets_the_rules_attributes_and_nobody_else_does() {
    require_root("groupadd and useradd for real group membership");
    require_tool("radclient");
    if !std::path::Path::new("/usr/lib/python3/dist-packages/pyrad").exists() {
        panic!("python3-pyrad must be installed (scripts/test.sh installs it)");
    }
    let port = free_udp_port();
    let home = tempfile::tempdir().unwrap();
    let (admin, other) = (UnixUser::new(home.path()), UnixUser::new(home.path()));
    let admins = UnixGroup::new();
    admins.add(&admin);
    let site = Site::with_config(&config(port, &admins.name));
    let check = site.mfactl(&["config", "check"]);
    assert_eq!(code_of(&check), 0, "{}", text(&check));
    let pam = write_pam(site.path());
    let daemon = spawn_daemon(&site.config, Some(&pam));
    daemon.wait_log("listening on", 1);
    let (ka, ko) = (fresh_key(), fresh_key());
    site.enroll(&admin.name, &ka);
    site.enroll(&other.name, &ko);
    let addr = format!("127.0.0.1:{port}");
    let forti = Relay::bind("127.0.0.1:0", &addr);
    let asa = Relay::bind("127.0.0.3:0", &addr);

    // The FortiGate, code-only: a wrong code is refused with nothing attached.
    let (r, _, _) = forti.exchange(&attrs(
        &admin.name,
        Some(&wrong_code(&ka)),
        Some(OUTSIDE),
        true,
    ));
    assert!(r.is("Access-Reject"), "{}", r.output);
    assert_bare(&r);
    // The right code: Class, Filter-Id, Reply-Message and Fortinet-Group-Name, as configured.
    mfa_e2e::avoid_step_boundary(3);
    let (r, _, raw) = forti.exchange(&attrs(
        &admin.name,
        Some(&totp(&ka, 0)),
        Some(OUTSIDE),
        true,
    ));
    assert!(r.is("Access-Accept"), "{}", r.output);
    let lines = reply_lines(&r);
    for want in [
        format!("Class = 0x{}", hex("vpn-admins")),
        "Filter-Id = \"acl-admins\"".to_string(),
        "Reply-Message = \"Welcome, admin\"".to_string(),
        "Fortinet-Group-Name = \"admins\"".to_string(),
    ] {
        assert!(lines.contains(&want), "no {want:?} in {lines:#?}");
    }
    assert!(
        !lines.iter().any(|l| l.starts_with("Cisco-AVPair")),
        "{lines:#?}"
    );
    // pyrad's dictionary decodes the vendor attribute to the configured value.
    let decoded = pyrad_decode(&raw);
    assert_eq!(
        decoded["Fortinet-Group-Name"],
        serde_json::json!(["admins"]),
        "{decoded}"
    );
    assert_eq!(
        decoded["Filter-Id"],
        serde_json::json!(["acl-admins"]),
        "{decoded}"
    );
    assert_eq!(
        decoded["Class"],
        serde_json::json!(["vpn-admins"]),
        "{decoded}"
    );

    // Someone outside the group, the right code: let in, with nothing of the rule.
    let (r, _, raw) = forti.exchange(&attrs(
        &other.name,
        Some(&totp(&ko, 0)),
        Some(OUTSIDE),
        true,
    ));
    assert!(r.is("Access-Accept"), "{}", r.output);
    assert_bare(&r);
    let decoded = pyrad_decode(&raw);
    assert!(decoded.get("Fortinet-Group-Name").is_none(), "{decoded}");

    // The ASA, challenge mode: the password, then the code. The challenge carries none.
    let (r, _, _) = asa.exchange(&attrs(&admin.name, Some(PASSWORD), Some(OUTSIDE), true));
    assert!(r.is("Access-Challenge"), "{}", r.output);
    assert_bare(&r);
    let state = r.state.clone().unwrap();
    let answer = |user: &str, code: &str, state: &str| {
        asa.exchange(&format!(
            "User-Name = \"{user}\"\nUser-Password = \"{code}\"\nState = {state}\nMessage-Authenticator = 0x00\n"
        ))
    };
    let (r, _, raw) = answer(&admin.name, &totp(&ka, 1), &state);
    assert!(r.is("Access-Accept"), "{}", r.output);
    let lines = reply_lines(&r);
    for want in [
        format!("Class = 0x{}", hex("OU=Admins;")),
        "Cisco-AVPair = \"shell:priv-lvl=15\"".to_string(),
        "Cisco-AVPair = \"ip:addr-pool=admins\"".to_string(),
    ] {
        assert!(lines.contains(&want), "no {want:?} in {lines:#?}");
    }
    assert!(
        !lines.iter().any(|l| l.starts_with("Fortinet")),
        "{lines:#?}"
    );
    let decoded = pyrad_decode(&raw);
    assert_eq!(
        decoded["Cisco-AVPair"],
        serde_json::json!(["shell:priv-lvl=15", "ip:addr-pool=admins"]),
        "{decoded}"
    );
    // A wrong code in the second round: refused, bare.
    let (r, _, _) = asa.exchange(&attrs(&other.name, Some(PASSWORD), Some(OUTSIDE), true));
    assert!(r.is("Access-Challenge"), "{}", r.output);
    let state = r.state.clone().unwrap();
    let (r, _, _) = answer(&other.name, &wrong_code(&ko), &state);
    assert!(r.is("Access-Reject"), "{}", r.output);
    assert_bare(&r);
    let log = daemon.log();
    assert!(
        !log.lines()
            .any(|l| l.contains("reply=") && !l.contains("decision=accept")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains(&format!("user=\"{}\"", admin.name))
                && l.contains("decision=accept")
            && l.contains(
                "rule=\"policy.rules[1] \\\"asa-admins\\\"\" reply=\"Class,Cisco-AVPair,Cisco-AVPair\""
            )),
        "{log}"
    );
    // The RD Gateway preset reads the client's address from Tunnel-Client-Endpoint: from the
    // office (a trusted network) in without a code; the same address in Calling-Station-Id
    // only is no client address for this entry, so a code would be needed and none came.
    let rdg = Relay::bind("127.0.0.4:0", &addr);
    let (r, _, _) = rdg.exchange(&format!(
        "User-Name = \"{}\"\nTunnel-Client-Endpoint = \"10.1.2.3\"\nMessage-Authenticator = 0x00\n",
        other.name
    ));
    assert!(r.is("Access-Accept"), "{}", r.output);
    assert_bare(&r);
    let (r, _, _) = rdg.exchange(&attrs(&other.name, None, Some("10.1.2.3"), true));
    assert!(r.is("Access-Reject"), "{}", r.output);

    // mfactl auth, asking as the FortiGate: the rule and what its accept would carry (a
    // second member: the first one's codes of this window are spent).
    let admin2 = UnixUser::new(home.path());
    admins.add(&admin2);
    let k2 = fresh_key();
    site.enroll(&admin2.name, &k2);
    mfa_e2e::avoid_step_boundary(3);
    let auth = |code: &str| {
        let o = site.mfactl(&[
            "auth",
            &admin2.name,
            "--service",
            "radius:forti",
            "--ip",
            OUTSIDE,
            "--code",
            code,
        ]);
        (code_of(&o), text(&o))
    };
    let (rc, out) = auth(&totp(&k2, 0));
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.contains("rule: policy.rules[0] \"forti-admins\": action code")
            && out.contains(
                "reply attributes (to a RADIUS gateway): Class \"vpn-admins\", Filter-Id \
                 \"acl-admins\", Reply-Message \"Welcome, admin\", Fortinet-Group-Name \"admins\""
            ),
        "{out}"
    );
    // A wrong code: refused, no attributes.
    let (rc, out) = auth(&wrong_code(&k2));
    assert_eq!(rc, 1, "{out}");
    assert!(!out.contains("reply attributes"), "{out}");
}

/// `mfactl config check` says what each preset set (and what the entry set itself), warns
/// where NetScaler's 4 s ends before a push held in append mode is answered (gone once the
/// entry says the gateway waits long enough), warns about a vendor attribute the preset's
/// gateway does not read, and names bad reply values and presets by line and key.
#[test]
fn config_check_explains_presets_and_refuses_bad_reply_values() {
    let push = mfa_e2e::phone::push_toml("");
    let clients = |gateway_timeout: &str| {
        format!(
            r#"{push}
[radius]
mode = "challenge"
[[radius.clients]]
name = "ns"
address = "192.0.2.1"
secret = "0123456789abcdef0123"
preset = "netscaler"
mode = "append"
{gateway_timeout}
[[radius.clients]]
name = "gp"
address = "192.0.2.2"
secret = "0123456789abcdef0123"
preset = "globalprotect"

[[policy.rules]]
name = "gp-staff"
radius_clients = ["gp"]
groups = ["root"]
action = "code"
reply = {{ paloalto_user_group = "staff", fortinet_group = "staff" }}
"#
        )
    };
    let site = Site::new(&clients(""));
    let file = site.config.display().to_string();
    let o = site.mfactl(&["config", "check"]);
    let out = text(&o);
    assert_eq!(code_of(&o), 0, "{out}");
    let written = std::fs::read_to_string(&site.config).unwrap();
    let line = |prefix: &str, nth: usize| {
        written
            .lines()
            .enumerate()
            .filter(|(_, l)| l.starts_with(prefix))
            .nth(nth)
            .map(|(i, _)| i + 1)
            .unwrap()
    };
    assert!(
        out.contains(&format!(
            "warning: {file}:{}: radius.clients[0].preset: client \"ns\": the gateway waits 4s",
            line("preset", 0)
        )) && out.contains("[push] timeout (1m)")
            && out.contains("gateway_timeout = \"1m\""),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "warning: {file}:{}: policy.rules[0].reply.fortinet_group: client \"gp\" is preset \"globalprotect\"",
            line("reply", 0)
        )),
        "{out}"
    );
    assert!(
        !out.contains("reply.paloalto_user_group"),
        "GlobalProtect reads its own: {out}"
    );
    assert!(
        out.contains("client \"ns\": preset \"netscaler\" (NetScaler): mode append (this entry's own), client_ip_attribute Calling-Station-Id (from the preset); the gateway waits 4s"),
        "{out}"
    );
    assert!(
        out.contains("client \"gp\": preset \"globalprotect\" (GlobalProtect): mode challenge (from the preset)")
            && out.contains("3s (PAN-OS's RADIUS server profile default, 3 retries)")
            && out.contains("reads PaloAlto-User-Group"),
        "{out}"
    );
    // The gateway's timeout raised and said: no timeout warning.
    let site = Site::new(&clients("gateway_timeout = \"90s\""));
    let o = site.mfactl(&["config", "check"]);
    let out = text(&o);
    assert_eq!(code_of(&o), 0, "{out}");
    assert!(!out.contains("the gateway waits 4s"), "{out}");
    assert!(
        out.contains("the gateway waits 90s (gateway_timeout)"),
        "{out}"
    );

    // Bad values: an error naming the line and key each, and nothing else is accepted.
    let site = Site::new(
        "[[radius.clients]]\nname = \"x\"\naddress = \"192.0.2.1\"\nsecret = \"0123456789abcdef0123\"\npreset = \"sonicwall\"\n\n[[policy.rules]]\nradius_clients = [\"x\"]\naction = \"code\"\nreply = { filter_id = \"\", cisco_avpair = [\"priv-lvl\"], class = \"a\\tb\" }\n\n[[policy.rules]]\nradius_clients = [\"x\"]\naction = \"deny\"\nreply = { class = \"refused\" }\n",
    );
    let file = site.config.display().to_string();
    let written = std::fs::read_to_string(&site.config).unwrap();
    let line = |prefix: &str, nth: usize| {
        written
            .lines()
            .enumerate()
            .filter(|(_, l)| l.starts_with(prefix))
            .nth(nth)
            .map(|(i, _)| i + 1)
            .unwrap()
    };
    let o = site.mfactl(&["config", "check"]);
    let out = text(&o);
    assert_ne!(code_of(&o), 0, "{out}");
    assert!(
        out.contains(&format!(
            "{file}:{}: radius.clients[0].preset",
            line("preset", 0)
        )) && out.contains("sonicwall"),
        "{out}"
    );
    // A file with a bad preset stops at the type check; without it the values are checked.
    let fixed = written.replace("preset = \"sonicwall\"\n", "preset = \"asa\"\n");
    std::fs::write(&site.config, &fixed).unwrap();
    let o = site.mfactl(&["config", "check"]);
    let out = text(&o);
    assert_ne!(code_of(&o), 0, "{out}");
    let at = line("reply", 0);
    for (key, word) in [
        ("policy.rules[0].reply.filter_id", "empty"),
        ("policy.rules[0].reply.cisco_avpair[0]", "AV pair"),
        ("policy.rules[0].reply.class", "printable ASCII"),
    ] {
        assert!(
            out.contains(&format!("{file}:{at}: {key}: ")) && out.contains(word),
            "{key}: {out}"
        );
    }
    assert!(
        out.contains(&format!(
            "{file}:{}: policy.rules[1].reply: ",
            line("reply", 1)
        )) && out.contains("no reply attributes"),
        "{out}"
    );
}
