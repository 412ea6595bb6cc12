//! What the types alone cannot check, one function per section of `mfa.toml`. Every
//! problem is collected, not just the first, in the order of the sections below.

mod admin;
mod directory;
mod lockout;
mod policy;
mod portal;
mod push;
mod radius;
mod remote;
mod reply;
mod store;
mod totp;
mod users;

pub use radius::radsec_file_help;
pub use store::check_store_url;

use crate::locate::path_string;
use crate::{Config, Problem, Seg, line_of_path};

pub(crate) fn k(s: &str) -> Seg {
    Seg::Key(s.into())
}

/// The problems found so far, each naming the file, the line and the key.
pub(crate) struct Problems<'a> {
    cfg: &'a Config,
    text: &'a str,
    out: Vec<Problem>,
}

impl Problems<'_> {
    /// A problem with the value at `path`.
    fn bad(&mut self, path: Vec<Seg>, message: String) {
        self.out.push(Problem {
            file: self.cfg.source.clone(),
            line: line_of_path(self.text, &path),
            key: Some(path_string(&path)),
            message,
        });
    }
}

/// Checks what the types alone cannot. Returns every problem, not just the first.
pub(crate) fn validate(cfg: &Config, text: &str) -> Vec<Problem> {
    let mut v = Problems {
        cfg,
        text,
        out: Vec::new(),
    };
    store::store(cfg, &mut v);
    totp::totp(cfg, &mut v);
    users::users(cfg, &mut v);
    policy::policy(cfg, &mut v);
    lockout::lockout(cfg, &mut v);
    radius::radius(cfg, &mut v);
    radius::clients(cfg, &mut v);
    radius::radsec(cfg, &mut v);
    reply::rules(cfg, &mut v);
    reply::clients(cfg, &mut v);
    policy::remember(cfg, &mut v);
    portal::portal(cfg, &mut v);
    remote::remote(cfg, &mut v);
    push::push(cfg, &mut v);
    admin::admin(cfg, &mut v);
    directory::directory(cfg, &mut v);
    v.out
}
