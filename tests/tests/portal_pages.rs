//! The portal's user pages as a first-time user meets them (issue 21):
//! - every page in Dutch is in Dutch: each page a user can reach (sign-in, the invite's
//!   steps, linked, its refusals, My account and each of its actions, Replace key, the push
//!   pages, the web app's manifest) is fetched with `?lang=nl` and its visible words (text,
//!   `alt`, `title`, `aria-label`, the scripts' `data-` words) are checked against a list of
//!   common English words;
//! - after Save the page says what happens at the next sign-in and offers the key to
//!   another device;
//! - Replace key's new entry has a name of its own in the app (read back from the QR code
//!   with zbar), and the page names the entry to delete;
//! - "Make new backup codes" asks first: one POST changes nothing, the old codes still work;
//! - `[portal] organisation` and `logo` head every page, the logo served by the portal
//!   itself; a logo that is no image, too large or missing stops the start and is named by
//!   `mfactl config check`;
//! - every page passes axe-core (serious and critical rules) in chromium, in English and
//!   Dutch (tests/browser/pages.mjs), which also takes the screenshots of docs/ when
//!   MFA_PORTAL_SCREENSHOTS names a directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use data_encoding::BASE64URL_NOPAD;
use mfa_core::push::testing::PhoneKey;
use mfa_e2e::portal::{
    Client, Portal, Reply, SiteSpec, between, http_site, invite, node, portal_site, sqlite,
};
use mfa_e2e::push::{PushService, push_toml, start_request, vapid_public};
use mfa_e2e::{
    Site, avoid_step_boundary, fresh_key, printed_codes, require_tool, text, totp, unique,
    wrong_code,
};

/// Common English words that are not Dutch words too (so no "in", "is", "of", "we", "me",
/// "was", "app", "code", "codes", "account", "link", "status", "gateway", "browser",
/// "token", "cookie").
const ENGLISH: &[&str] = &[
    "the",
    "and",
    "your",
    "you",
    "with",
    "every",
    "seconds",
    "second",
    "digits",
    "digit",
    "time",
    "based",
    "this",
    "that",
    "these",
    "those",
    "not",
    "from",
    "for",
    "are",
    "were",
    "has",
    "have",
    "had",
    "will",
    "can",
    "cannot",
    "could",
    "should",
    "would",
    "must",
    "please",
    "enter",
    "sign",
    "signed",
    "save",
    "saved",
    "new",
    "old",
    "phone",
    "phones",
    "key",
    "keys",
    "backup",
    "next",
    "device",
    "devices",
    "remote",
    "desktop",
    "network",
    "networks",
    "unlock",
    "unlocked",
    "allow",
    "allowed",
    "deny",
    "denied",
    "never",
    "yes",
    "no",
    "to",
    "it",
    "its",
    "on",
    "at",
    "by",
    "be",
    "been",
    "or",
    "if",
    "when",
    "what",
    "which",
    "who",
    "how",
    "here",
    "there",
    "then",
    "now",
    "only",
    "also",
    "again",
    "still",
    "more",
    "some",
    "any",
    "all",
    "after",
    "before",
    "they",
    "them",
    "their",
    "our",
    "my",
    "up",
    "out",
    "about",
    "into",
    "than",
    "other",
    "another",
    "same",
    "each",
    "first",
    "last",
    "minutes",
    "hours",
    "days",
    "wait",
    "try",
    "ask",
    "administrator",
    "approve",
    "approved",
    "register",
    "registered",
    "notification",
    "number",
    "request",
    "requests",
    "expired",
    "expires",
    "used",
    "valid",
    "invalid",
    "wrong",
    "right",
    "page",
    "user",
    "name",
    "password",
    "login",
    "logins",
    "outcome",
    "address",
    "security",
    "form",
    "remove",
    "cancel",
    "confirm",
    "replace",
    "make",
    "show",
    "shown",
    "service",
    "done",
    "skip",
    "content",
    "happens",
    "office",
    "optional",
    "entry",
    "delete",
];

/// The words a user sees or hears on `html`: text outside the QR code's SVG, the key
/// (random letters), and elements marked `lang="en"` (the link to the English page), and the attributes read out
/// or shown (`alt`, `title`, `aria-label`, `placeholder`, the scripts' `data-` words but
/// not their ids and keys, a visible input's `value`).
fn visible_words(html: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut push_text = |s: &str| {
        let s = s
            .replace("&#39;", "'")
            .replace("&amp;", "&")
            .replace("&quot;", "\"");
        for w in s.split(|c: char| !c.is_alphabetic() && c != '\'') {
            let w = w.trim_matches('\'').to_lowercase();
            if !w.is_empty() {
                words.push(w);
            }
        }
    };
    let mut rest = html;
    // The element whose text is skipped (the SVG, an element in English), by tag name.
    let mut skip: Option<String> = None;
    while let Some(open) = rest.find('<') {
        if skip.is_none() {
            push_text(&rest[..open]);
        }
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let tag = &rest[open + 1..open + close];
        rest = &rest[open + close + 1..];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if let Some(s) = &skip {
            if tag.starts_with('/') && &name == s {
                skip = None;
            }
            continue;
        }
        if tag.starts_with('/') || tag.starts_with('!') {
            continue;
        }
        let attrs = attributes(tag);
        let attr = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        // The QR code, the English link, and the key itself (random letters and digits).
        if name == "svg"
            || (name != "html" && attr("lang") == Some("en"))
            || attr("id") == Some("key")
        {
            skip = Some(name);
            continue;
        }
        for (k, v) in &attrs {
            let shown = matches!(k.as_str(), "alt" | "title" | "aria-label" | "placeholder")
                || (k.starts_with("data-")
                    && !matches!(
                        k.as_str(),
                        "data-vapid" | "data-user" | "data-request" | "data-lang" | "data-decision"
                    ))
                || (k == "value" && name == "input" && attr("type") != Some("hidden"));
            if shown {
                push_text(v);
            }
        }
    }
    words
}

/// The `name="value"` pairs of a tag's text.
fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = tag;
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq]
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let after = &rest[eq + 2..];
        let end = after.find('"').unwrap_or(after.len());
        out.push((name, after[..end].to_string()));
        rest = &after[(end + 1).min(after.len())..];
    }
    out
}

/// The English words on each page: `(page, words)` for every page that has any.
fn english_on(pages: &[(String, String)]) -> Vec<(String, BTreeSet<String>)> {
    let english: BTreeSet<&str> = ENGLISH.iter().copied().collect();
    pages
        .iter()
        .filter_map(|(name, html)| {
            let found: BTreeSet<String> = visible_words(html)
                .into_iter()
                .filter(|w| english.contains(w.as_str()))
                .collect();
            (!found.is_empty()).then(|| (name.clone(), found))
        })
        .collect()
}

/// "Last logins" is another item of issue 21 (its raw reason codes, `allow (valid_code)`,
/// become sentences there): left out of this check until that lands, so this test holds
/// what this change owns.
fn without_last_logins(html: &str) -> String {
    match (html.find("<table id=\"logins\""), html.find("</table>")) {
        (Some(a), Some(b)) if b > a => format!("{}{}", &html[..a], &html[b + 8..]),
        _ => html.to_string(),
    }
}

/// A site with push approval (so its pages can be walked too), `remember` on, a trusted
/// network; a user enrolled with `key`, signed in, with a phone registered over HTTP and a
/// sign-in request waiting for it.
struct Walk {
    site: Site,
    portal: Portal,
    _service: PushService,
    user: String,
    key: String,
    request: String,
}

fn push_walk_site(portal_lines: &str) -> Walk {
    let service = PushService::start();
    let push = push_toml(&service, "60s");
    let (site, portal) = portal_site(&SiteSpec {
        portal: portal_lines,
        policy: "remember = \"8h\"\ntrusted_networks = [\"10.0.0.0/8\"]",
        extra: &push,
        ..SiteSpec::default()
    });
    let (user, key) = (unique("nlw"), fresh_key());
    site.enroll(&user, &key);
    // A phone registered the way the registration page's script does.
    avoid_step_boundary(3);
    let mut c = Client::new(&portal.url).from("198.51.100.150");
    assert_eq!(c.sign_in(&user, &totp(&key, 0)).status, 200);
    let sub = service.subscribe(&vapid_public(&site));
    let phone = PhoneKey::generate();
    let csrf = c.get("/account/phone").csrf();
    let r = c.post(
        "/account/phone",
        &[
            ("csrf", &csrf),
            ("name", "Telefoon"),
            ("subscription", &sub.json),
            ("public_key", &BASE64URL_NOPAD.encode(&phone.public())),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (request, _) = start_request(&site, &user, "vpn", "192.0.2.20");
    Walk {
        site,
        portal,
        _service: service,
        user,
        key,
        request,
    }
}

/// A page's name, the status it got and the one it should have.
type Status = (String, u16, u16);

/// Every page a user can reach, in `lang`, as `(name, html)`; the statuses each should
/// have are checked after the words (so a page in the wrong language is the failure).
fn walk(w: &Walk, lang: &str) -> (Vec<(String, String)>, Vec<Status>) {
    let q = format!("?lang={lang}");
    let mut pages = Vec::new();
    let mut statuses = Vec::new();
    let mut keep = |name: &str, r: &Reply, want: u16| {
        pages.push((name.to_string(), without_last_logins(&r.body)));
        statuses.push((name.to_string(), r.status, want));
    };
    let site = &w.site;
    let base = &w.portal.url;
    let mut c = Client::new(base).from("198.51.100.151");
    keep("home", &c.get(&format!("/{q}")), 200);
    keep("not found", &c.get(&format!("/nothing{q}")), 404);
    let form = c.get(&format!("/account{q}"));
    keep("sign-in", &form, 200);
    // An invite: the steps, a wrong code, linked, then used; an expired and an unknown one.
    let newbie = unique("nlv");
    let link = invite(site, &newbie);
    let path = format!("{}{q}", link.trim_start_matches(base.as_str()));
    let mut e = Client::new(base).from("198.51.100.152");
    let page = e.get(&path);
    keep("enrol", &page, 200);
    let (csrf, key) = (page.csrf(), page.key());
    keep(
        "enrol, no CSRF token",
        &e.post(&path, &[("code", &totp(&key, 0))]),
        403,
    );
    keep(
        "enrol, wrong code",
        &e.post(&path, &[("code", &wrong_code(&key)), ("csrf", &csrf)]),
        422,
    );
    keep(
        "enrol, linked",
        &e.post(&path, &[("code", &totp(&key, 0)), ("csrf", &csrf)]),
        200,
    );
    keep("enrol, used", &e.get(&path), 410);
    let late = unique("nll");
    let expired = invite(site, &late);
    sqlite(
        &site.db(),
        &format!("UPDATE invites SET created = 0, expires = 1 WHERE user = '{late}'"),
    );
    keep(
        "enrol, expired",
        &e.get(&format!("{}{q}", expired.trim_start_matches(base.as_str()))),
        410,
    );
    keep("enrol, unknown", &e.get(&format!("/enrol/nothing{q}")), 404);
    // My account, for a user of its own (a code signs in once): a wrong sign-in, the
    // sign-in, then each action.
    let (user, ukey) = (unique("nlu"), fresh_key());
    site.enroll(&user, &ukey);
    let acct = format!("/account{q}");
    let signin = |c: &mut Client, code: &str| {
        let csrf = c.get(&acct).csrf();
        c.post(
            &acct,
            &[
                ("action", "signin"),
                ("user", &user),
                ("password", "any"),
                ("code", code),
                ("csrf", &csrf),
            ],
        )
    };
    keep(
        "sign-in, wrong code",
        &signin(&mut c, &wrong_code(&ukey)),
        401,
    );
    let pad = "x".repeat(5000);
    keep(
        "form too large",
        &c.post_raw(&acct, &format!("action=signin&pad={pad}")),
        413,
    );
    avoid_step_boundary(3);
    let r = signin(&mut c, &totp(&ukey, 0));
    keep("my account", &r, 200);
    let csrf = r.csrf();
    let act = |c: &mut Client, action: &str, extra: &[(&str, &str)]| {
        let mut f = vec![("action", action), ("csrf", csrf.as_str())];
        f.extend_from_slice(extra);
        c.post(&acct, &f)
    };
    keep("unlock", &act(&mut c, "unlock", &[]), 200);
    keep(
        "backup codes, asked",
        &act(&mut c, "backup-codes", &[]),
        200,
    );
    keep(
        "backup codes, made",
        &act(&mut c, "backup-codes-confirm", &[]),
        200,
    );
    keep(
        "backup codes, asked again",
        &act(&mut c, "backup-codes", &[]),
        200,
    );
    let start = act(&mut c, "replace-start", &[]);
    keep("replace key", &start, 200);
    let new = start.key();
    keep(
        "replace key, wrong code",
        &act(&mut c, "replace-confirm", &[("code", &wrong_code(&new))]),
        422,
    );
    keep(
        "replace key, cancelled",
        &act(&mut c, "replace-cancel", &[]),
        200,
    );
    keep(
        "replace key, nothing waiting",
        &act(&mut c, "replace-confirm", &[("code", "123456")]),
        200,
    );
    keep("phones", &c.get(&format!("/account/phone{q}")), 200);
    keep("sign-in requests", &c.get(&format!("/push{q}")), 200);
    keep("approval", &c.get(&format!("/push/{}{q}", w.request)), 200);
    keep(
        "approval, unknown",
        &c.get(&format!("/push/{}{q}", "0".repeat(32))),
        404,
    );
    // The web app's manifest: the words the phone shows for the installed app.
    let mut m = c.get(&format!("/manifest.webmanifest{q}"));
    let v: serde_json::Value = serde_json::from_str(&m.body).unwrap();
    m.body = ["name", "short_name", "description"]
        .iter()
        .map(|k| format!("<p>{}</p>", v[k].as_str().unwrap_or_default()))
        .collect();
    keep("manifest", &m, 200);
    keep("signed out", &act(&mut c, "signout", &[]), 200);
    // A form from a session that is gone.
    keep("session gone", &act(&mut c, "unlock", &[]), 400);
    (pages, statuses)
}

#[test]
fn the_dutch_pages_say_nothing_in_english() {
    let w = push_walk_site("");
    let (pages, statuses) = walk(&w, "nl");
    let english = english_on(&pages);
    assert!(
        english.is_empty(),
        "English words on the Dutch pages: {english:#?}"
    );
    for (name, got, want) in &statuses {
        assert_eq!(got, want, "{name}");
    }
    assert!(pages.len() >= 25, "{}", pages.len());
    // The check sees English where there is English: the same walk in English is full of it.
    let (en, _) = walk(&w, "en");
    let flagged = english_on(&en);
    assert!(flagged.len() + 2 >= en.len(), "{flagged:#?}");
    // The enrolment's key facts in Dutch, as the issue found them in English.
    let enrol = &pages.iter().find(|(n, _)| n == "enrol").unwrap().1;
    assert!(
        enrol.contains("tijdgebaseerd, SHA1, 6 cijfers, elke 30 seconden"),
        "{enrol}"
    );
}

/// After Save: what the next sign-in asks (from outside the office, where the site has
/// trusted networks; at every sign-in where it has none), the same key offered to another
/// device, the way on to My account.
#[test]
fn after_save_the_page_says_what_happens_next_and_offers_another_device() {
    for (policy, says) in [
        (
            "trusted_networks = [\"10.0.0.0/8\"]",
            "Next time you sign in from outside the office",
        ),
        ("", "Next time you sign in (the VPN"),
    ] {
        let (site, portal) = http_site("", policy);
        let user = unique("nx");
        let link = invite(&site, &user);
        let path = link.trim_start_matches(&portal.url).to_string();
        let mut c = Client::new(&portal.url).from("198.51.100.160");
        let page = c.get(&path);
        assert!(!page.body.contains("id=\"next\""), "{}", page.body);
        let key = page.key();
        let r = c.post(&path, &[("code", &totp(&key, 0)), ("csrf", &page.csrf())]);
        assert_eq!(r.status, 200, "{}", r.body);
        let next = between(&r.body, "<section id=\"next\"", "</section>").unwrap();
        assert!(
            next.contains("What happens next") && next.contains(says),
            "{next}"
        );
        assert!(
            next.contains("asked for a code after your password")
                && next.contains("every 30 seconds")
                && next.contains("Replace key"),
            "{next}"
        );
        let another = between(&r.body, "<section id=\"another\"", "</section>").unwrap();
        assert!(another.contains("Link another device"), "{another}");
        assert!(
            another.contains("id=\"qr\"")
                && another.contains(&format!("id=\"key\">{}", grouped(&key))),
            "{another}"
        );
        assert!(
            r.body.contains("id=\"done\" href=\"/account?lang=en\""),
            "{}",
            r.body
        );
        assert!(!r.body.contains("<form"), "no form after Save: {}", r.body);
        drop(portal);
    }
}

/// `ABCD EFGH ...`, as the page shows a key.
fn grouped(key: &str) -> String {
    key.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The text of the QR code of `page` (rsvg-convert, zbarimg).
fn qr_text(page: &Reply, dir: &Path) -> String {
    require_tool("rsvg-convert");
    require_tool("zbarimg");
    let svg = between(&page.body, "<svg", "</svg>").unwrap();
    let svg = format!("<svg{svg}</svg>");
    let svg = if svg.contains("xmlns=") {
        svg
    } else {
        svg.replacen("<svg ", "<svg xmlns=\"http://www.w3.org/2000/svg\" ", 1)
    };
    let (file, png) = (dir.join("qr.svg"), dir.join("qr.png"));
    std::fs::write(&file, svg).unwrap();
    let o = Command::new("rsvg-convert")
        .arg(&file)
        .arg("-o")
        .arg(&png)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = Command::new("zbarimg")
        .args(["-q", "--raw"])
        .arg(&png)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// The label of an `otpauth://totp/LABEL?...` URI, percent-decoded.
fn otpauth_label(uri: &str) -> String {
    let label = uri
        .strip_prefix("otpauth://totp/")
        .and_then(|r| r.split('?').next())
        .unwrap_or_else(|| panic!("not an otpauth URI: {uri}"));
    let b = label.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Replace key: the new key's entry in the app is `user (YYYY-MM-DD)`, read back from the
/// QR code, never the old entry's `Issuer:user`; the page and the confirmation name the
/// entry to keep and the one to delete, in both languages.
#[test]
fn a_replacement_key_has_a_name_of_its_own_in_the_app() {
    let (site, portal) = http_site("", "");
    let user = unique("rl");
    // Enrolled through an invite: the old entry as the app has it.
    let link = invite(&site, &user);
    let path = link.trim_start_matches(&portal.url).to_string();
    let mut c = Client::new(&portal.url).from("198.51.100.170");
    let page = c.get(&path);
    let dir = tempfile::tempdir().unwrap();
    let first = otpauth_label(&qr_text(&page, dir.path()));
    assert_eq!(first, format!("Test:{user}"));
    let key = page.key();
    assert_eq!(
        c.post(&path, &[("code", &totp(&key, 0)), ("csrf", &page.csrf())])
            .status,
        200
    );
    avoid_step_boundary(3);
    let r = c.sign_in(&user, &totp(&key, 1));
    assert_eq!(r.status, 200, "{}", r.body);
    let start = c.post(
        "/account",
        &[("action", "replace-start"), ("csrf", &r.csrf())],
    );
    let today = mfa_config::format_utc(mfa_e2e::unix_now());
    let day = &today[..10];
    let label = otpauth_label(&qr_text(&start, dir.path()));
    assert_eq!(label, format!("Test:{user} ({day})"));
    assert_ne!(label, first);
    let shown = between(&start.body, "id=\"account\">", "<").unwrap();
    assert_eq!(shown, format!("Test:{user} ({day})"));
    let names = between(&start.body, "<p id=\"names\">", "</p>").unwrap();
    assert!(
        names.contains(&format!("named \u{201c}{user} ({day})\u{201d}"))
            && names.contains(&format!("delete the other entry of Test for {user}")),
        "{names}"
    );
    // The same name after a wrong code and in Dutch.
    let nl = c.post(
        "/account?lang=nl",
        &[("action", "replace-start"), ("csrf", &start.csrf())],
    );
    assert!(
        nl.body.contains(&format!(
            "heet het nieuwe account \u{201c}{user} ({day})\u{201d}"
        )),
        "{}",
        nl.body
    );
    let new = start.key();
    let r = c.post(
        "/account",
        &[
            ("action", "replace-confirm"),
            ("code", &totp(&new, 0)),
            ("csrf", &start.csrf()),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains(&format!(
            "keep \u{201c}{user} ({day})\u{201d} and delete the other entry of Test for {user}"
        )),
        "{}",
        r.body
    );
    drop(portal);
}

fn code_salts(site: &Site, user: &str) -> String {
    sqlite(
        &site.db(),
        &format!("SELECT hex(salt) FROM one_time_codes WHERE user = '{user}' ORDER BY 1"),
    )
}

/// "Make new backup codes" asks first: one POST shows what the old set loses and changes
/// nothing (the old codes are stored and still work); the second form makes the new set,
/// and only then do the old codes stop working. The second form carries the CSRF token as
/// every other form does.
#[test]
fn new_backup_codes_are_made_only_after_a_confirmation() {
    let (site, portal) = http_site("", "");
    let (user, key) = (unique("bk"), fresh_key());
    site.enroll(&user, &key);
    let o = site.mfactl(&["backup-codes", &user, "--count", "5"]);
    assert!(o.status.success(), "{}", text(&o));
    let old = printed_codes(&String::from_utf8(o.stdout).unwrap());
    assert_eq!(old.len(), 5);
    let before = code_salts(&site, &user);
    let mut c = Client::new(&portal.url).from("198.51.100.180");
    avoid_step_boundary(3);
    let r = c.sign_in(&user, &totp(&key, 0));
    assert_eq!(r.status, 200, "{}", r.body);
    let csrf = r.csrf();
    // One POST: a question, nothing made.
    let r = c.post("/account", &[("action", "backup-codes"), ("csrf", &csrf)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("Make new backup codes?")
            && r.body
                .contains("You have 5 backup codes that have not been used")
            && r.body.contains("value=\"backup-codes-confirm\"")
            && r.body
                .contains("id=\"backup-keep\" href=\"/account?lang=en\""),
        "{}",
        r.body
    );
    assert!(!r.body.contains("id=\"backup-codes\" class"), "{}", r.body);
    assert_eq!(code_salts(&site, &user), before, "the old set was changed");
    // The old codes still work.
    let o = site.mfactl(&["auth", &user, "--ip", "198.51.100.181", "--code", &old[0]]);
    assert!(
        o.status.success(),
        "an old code after the question: {}",
        text(&o)
    );
    let after_auth = code_salts(&site, &user);
    // The confirmation without its CSRF token, or with another's: refused, nothing made.
    let r = c.post("/account", &[("action", "backup-codes-confirm")]);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = c.post(
        "/account",
        &[
            ("action", "backup-codes-confirm"),
            ("csrf", &"x".repeat(43)),
        ],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        code_salts(&site, &user),
        after_auth,
        "a refused form changed the codes"
    );
    // Confirmed: ten new codes shown once; the old ones are gone.
    let r = c.post(
        "/account",
        &[("action", "backup-codes-confirm"), ("csrf", &csrf)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let list = between(&r.body, "<ul id=\"backup-codes\" class=\"key\">", "</ul>").unwrap();
    assert_eq!(list.matches("<li>").count(), 10, "{}", r.body);
    let o = site.mfactl(&["auth", &user, "--ip", "198.51.100.181", "--code", &old[1]]);
    assert!(
        !o.status.success(),
        "an old code after the new set: {}",
        text(&o)
    );
    assert!(mfa_e2e::portal::audit_reasons(&site).contains("new_set"));
    drop(portal);
}

/// A PNG to serve as the logo: the web app's own icon.
fn logo_png() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../portal/assets/icon-192.png"))
        .unwrap()
}

/// `[portal] organisation` and `logo`: on every page, the logo from the portal itself with
/// the file's own bytes and type; the pages name nothing outside the portal and carry no
/// script but the push pages' own. A logo that cannot be served stops the start, and
/// `mfactl config check` names it.
#[test]
fn the_organisation_and_its_logo_head_every_page() {
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("logo.png");
    std::fs::write(&logo, logo_png()).unwrap();
    let lines = format!(
        "organisation = \"Gemeente Voorbeeld ICT\"\nlogo = \"{}\"",
        logo.display()
    );
    let w = push_walk_site(&lines);
    let (pages, _) = walk(&w, "en");
    for (name, html) in &pages {
        if name == "manifest" {
            continue;
        }
        assert!(
            html.contains("<span class=\"org\">Gemeente Voorbeeld ICT</span>")
                && html.contains("<img class=\"logo\" src=\"/logo\" alt=\"\">")
                && html.contains("\u{2013} Gemeente Voorbeeld ICT</title>"),
            "{name}: {html}"
        );
        for outside in ["src=\"http", "href=\"http", "src=\"//", "href=\"//", "url("] {
            assert!(!html.contains(outside), "{name}: {outside} in {html}");
        }
        let push_page = ["phones", "sign-in requests", "approval"].contains(&name.as_str());
        assert_eq!(html.contains("<script"), push_page, "{name}: {html}");
    }
    let mut c = Client::new(&w.portal.url);
    let r = ureq::get(format!("{}/logo", w.portal.url)).call().unwrap();
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.headers()["content-security-policy"], "default-src 'none'");
    let bytes = r.into_body().read_to_vec().unwrap();
    assert_eq!(bytes, logo_png());
    assert_eq!(c.get("/style.css").status, 200);
    // Without a logo: no image, and /logo is not found.
    let (_, plain) = http_site("", "");
    let mut p = Client::new(&plain.url);
    assert!(!p.get("/account").body.contains("src=\"/logo\""));
    assert_eq!(p.get("/logo").status, 404);

    // A logo that is an HTML page, one too large, one missing: mfactl config check names
    // the key and the reason; mfa-portal does not start.
    let html = dir.path().join("logo-page.png");
    std::fs::write(&html, "<html><body>not an image</body></html>").unwrap();
    let big = dir.path().join("big.png");
    std::fs::write(
        &big,
        [b"\x89PNG\r\n\x1a\n".as_slice(), &vec![0u8; 300 * 1024]].concat(),
    )
    .unwrap();
    for (file, why) in [
        (html, "is not a PNG, JPEG, GIF, WebP or SVG image"),
        (big, "a logo may have at most 262144"),
        (dir.path().join("none.png"), "cannot read"),
    ] {
        let site = Site::new(&format!(
            "\n[portal]\nlisten = \"127.0.0.1:1\"\norganisation = \"X\"\nlogo = \"{}\"\n",
            file.display()
        ));
        let o = site.mfactl(&["config", "check"]);
        assert!(!o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains("portal.logo") && text(&o).contains(why),
            "{}",
            text(&o)
        );
        let o = Command::new(mfa_e2e::bin("mfa-portal"))
            .arg("--config")
            .arg(&site.config)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(
            text(&o).contains("[portal] logo") && text(&o).contains(why),
            "{}",
            text(&o)
        );
    }
    // An organisation name with a new line in it is refused by name.
    let site = Site::new("\n[portal]\norganisation = \"A\\nB\"\n");
    let o = site.mfactl(&["config", "check"]);
    assert!(
        !o.status.success() && text(&o).contains("portal.organisation"),
        "{}",
        text(&o)
    );
}

/// axe-core in chromium on every user page, in English and Dutch: no serious or critical
/// violation (tests/browser/pages.mjs). With MFA_PORTAL_SCREENSHOTS=DIR it writes the
/// screenshots of docs/ there.
#[test]
fn every_user_page_passes_axe_in_english_and_dutch() {
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("logo.svg");
    std::fs::write(
        &logo,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 120 40\" width=\"120\" height=\"40\"><rect width=\"40\" height=\"40\" rx=\"8\" fill=\"#0b6e4f\"/><path d=\"M10 28 L20 12 L30 28 Z\" fill=\"#fff\"/><text x=\"48\" y=\"27\" font-family=\"sans-serif\" font-size=\"16\" font-weight=\"700\" fill=\"#0b6e4f\">ACME</text></svg>",
    )
    .unwrap();
    let lines = format!(
        "organisation = \"Example Corp IT\"\nlogo = \"{}\"",
        logo.display()
    );
    let w = push_walk_site(&lines);
    let invites: Vec<String> = (0..2).map(|_| invite(&w.site, &unique("ax"))).collect();
    let shots = std::env::var_os("MFA_PORTAL_SCREENSHOTS");
    avoid_step_boundary(8);
    let r = node(
        "pages.mjs",
        &serde_json::json!({
            "url": w.portal.url,
            "user": w.user,
            "key": w.key,
            "invites": invites,
            "request": w.request,
            "shots": shots.as_ref().map(|s| s.to_string_lossy().into_owned()),
        }),
    );
    let checked = r["checked"].as_array().unwrap();
    assert!(checked.len() >= 20, "{r}");
    for page in [
        "sign-in",
        "enrol",
        "linked",
        "my account",
        "approval",
        "phones",
    ] {
        for lang in ["en", "nl"] {
            let name = format!("{page} ({lang})");
            assert!(
                checked.iter().any(|c| c == name.as_str()),
                "{name} not checked: {r}"
            );
        }
    }
}
