//! The configurations the package ships read as they say: the conffile (which enforces
//! nothing) and the production example installed under /usr/share/doc/mfa/examples, which
//! names no demo store and holds no secret.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

fn parsed(rel: &str) -> (String, mfa_config::Config) {
    let top = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let path = top.join(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    let cfg = mfa_config::parse(&text, Path::new("/etc/mfa/mfa.toml"))
        .unwrap_or_else(|e| panic!("{rel}:\n{e}"));
    (text, cfg)
}

#[test]
fn the_production_example_is_one() {
    let (text, cfg) = parsed("packaging/deb/mfa.example.toml");
    assert!(!text.contains("demo"), "no demo store: {text}");
    assert!(
        cfg.radius.clients.iter().all(|c| c.secret.is_none()),
        "no inline secret"
    );
    assert!(cfg.radius.clients.iter().all(|c| c.secret_file.is_some()));
    assert_eq!(cfg.store.path, Path::new("/var/lib/mfa/mfa.db"));
    assert!(matches!(cfg.policy.enforce_from, mfa_config::GoLive::At(_)));
    assert!(cfg.portal.public_url.is_some());
    assert!(text.contains("cp /usr/share/doc/mfa/examples/mfa.toml /etc/mfa/mfa.toml"));
}

#[test]
fn the_demo_example_says_it_is_not_for_production() {
    let (text, _) = parsed("examples/mfa.toml");
    assert!(text.contains("NOT for production"), "{text}");
    assert!(!text.contains("Copy to /etc/mfa"), "{text}");
}

#[test]
fn the_conffile_enforces_nothing() {
    let (_, cfg) = parsed("packaging/deb/mfa.toml");
    assert_eq!(cfg.policy.enforce_from, mfa_config::GoLive::Never);
    assert!(cfg.radius.clients.is_empty());
}
