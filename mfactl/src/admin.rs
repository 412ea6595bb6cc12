//! Small commands: auth, unlink, unlock, trusted networks, config check, one-time codes.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use mfa_config::{
    Cidr, Config, ExemptEdit, RadiusMode, Span, TrustedEdit, edit_exemptions,
    edit_trusted_networks, format_utc,
};
use mfa_core::login::Service;
use mfa_core::login::{CODE_PROMPT, now};
use mfa_core::names::{self, NameCheck};
use mfa_core::net::{parse_ip_literal, trusted_match};
use mfa_core::{ClientAddr, Core, OpenMode, Outcome, Request, Voucher};
use zeroize::Zeroizing;

use crate::{ExemptAction, Fail, Result, TrustedAction, UsersAction, user_name};

/// The actor mfactl's admin operations are audited as.
pub const ACTOR: &str = "mfactl";

/// After an edit of the configuration file: who reads it when. The PAM module reads the
/// file at every login; the two daemons read it at start (mfa-radiusd also at SIGHUP).
pub const RELOAD_HINT: &str = "The PAM module uses the change from the next login. A running \
mfa-radiusd uses it after `systemctl reload mfa-radiusd` (SIGHUP), a running mfa-portal after \
`systemctl restart mfa-portal`.";

pub fn load_config(path: &Path) -> Result<Config> {
    mfa_config::load(path).map_err(|e| Fail::Error(format!("invalid configuration:\n{e}")))
}

/// Opens the store. Commands that only read or change existing users use `Existing`, so a
/// mistyped store path is reported instead of silently creating an empty database.
pub fn open(path: &Path, mode: OpenMode) -> Result<Core> {
    open_with(load_config(path)?, mode)
}

/// `open` for a configuration the command has already loaded. Every command checks the
/// stored names against `[users]` first: two stored names of one user refuse the command.
pub fn open_with(cfg: Config, mode: OpenMode) -> Result<Core> {
    open_checking(cfg, mode, NameCheck::Always)
}

fn open_checking(cfg: Config, mode: OpenMode, when: NameCheck) -> Result<Core> {
    Ok(mfa_store_open::open_core(
        Arc::new(cfg),
        mode,
        "mfactl",
        when,
    )?)
}

/// Reads one line from standard input, prompting on the terminal's stderr if interactive.
pub fn read_line(prompt: &str) -> Result<Option<Zeroizing<String>>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
    }
    let mut line = Zeroizing::new(String::new());
    match stdin.lock().read_line(&mut line) {
        Ok(0) => Ok(None),
        Ok(_) => Ok(Some(Zeroizing::new(line.trim().to_string()))),
        Err(e) => Err(Fail::Error(format!("cannot read standard input: {e}"))),
    }
}

/// `--service` of `mfactl auth`: `pam:SERVICE` and `radius:CLIENT` ask as that PAM service or
/// that configured RADIUS client (in its mode); anything else only names the audit trail's
/// service, and no unlock applies to it.
fn service_arg(cfg: &Config, s: &str) -> Result<Service> {
    if let Some(svc) = s.strip_prefix("pam:") {
        return Ok(Service::Pam(svc.to_string()));
    }
    if let Some(name) = s.strip_prefix("radius:") {
        let r = &cfg.radius;
        let Some(c) = r.clients.iter().find(|c| c.name == name) else {
            return Err(Fail::Error(format!(
                "--service {s:?}: no [[radius.clients]] entry is named {name:?}"
            )));
        };
        return Ok(Service::Radius {
            client: name.to_string(),
            code_only: r.settings_for(c).mode == RadiusMode::CodeOnly,
        });
    }
    Ok(Service::Other(s.to_string()))
}

pub fn auth(
    cfg: &Path,
    user: &str,
    ip: Option<&str>,
    code: Option<&str>,
    service: &str,
    force: bool,
) -> Result<ExitCode> {
    // A client address that is no address is a usage error, before anything is opened:
    // it must not count as an unknown client, nor its wrong code toward the user's lockout.
    let client = match ip {
        None => ClientAddr::Local,
        Some(s) => ClientAddr::Remote(Some(parse_ip_literal(s).ok_or_else(|| {
            Fail::Error(format!(
                "--ip {s:?} is not an IP address (an IPv4 or IPv6 literal such as 192.0.2.7 or \
                 2001:db8::7); nothing was checked or recorded"
            ))
        })?)),
    };
    let a = open(cfg, OpenMode::Existing)?;
    let service = service_arg(a.config(), service)?;
    let name = user_name(&a, user)?;
    let login = a.login();
    // A name nothing vouches for is refused (a typo must get no record nor grace); one that
    // passes may get a record, as at a real login.
    let admission = login
        .admit_name(&name, Voucher::Administrator { force })?
        .required()?;
    let req = Request::new(&name, client, service).admit(&admission);
    let mut d = login.begin(&req)?;
    if d.outcome == Outcome::NeedCode {
        let code = match code {
            Some("-") => read_line(CODE_PROMPT)?.unwrap_or_default(),
            Some(c) => Zeroizing::new(c.to_string()),
            None if std::io::stdin().is_terminal() => read_line(CODE_PROMPT)?.unwrap_or_default(),
            None => Zeroizing::new(String::new()),
        };
        d = login.verify_code(&req, &code)?;
    }
    outln!(
        "{} {}: {} (user {name:?}, client {client})",
        d.outcome.word(),
        d.reason.code(),
        d.reason
    );
    if let Some(m) = &d.message {
        outln!("{m}");
    }
    match &d.rule {
        Some(r) => println!("rule: {r}: action {}", r.action.word()),
        // Said only where there are rules to match.
        None if !a.config().policy.rules.is_empty() => println!("rule: none matched"),
        None => {}
    }
    // What a gateway's Access-Accept would carry: the core's answer, on an allow only.
    if let Some(reply) = d.reply() {
        let list: Vec<String> = reply
            .entries()
            .iter()
            .map(|(k, v)| format!("{} {v:?}", k.attribute()))
            .collect();
        println!(
            "reply attributes (to a RADIUS gateway): {}",
            list.join(", ")
        );
    }
    Ok(ExitCode::from(if d.is_allowed() { 0 } else { 1 }))
}

pub fn init(cfg: &Path) -> Result<ExitCode> {
    let c = load_config(cfg)?;
    let push = c.push.clone();
    if let Some(url) = &c.store.url {
        let shown = mfa_core::store::redact_url(url);
        open_with(c, OpenMode::Create)?;
        outln!(
            "The PostgreSQL store {shown} is ready (schema version {}).",
            mfa_store_open::POSTGRES_SCHEMA_VERSION
        );
        init_vapid_key(&push)?;
        return Ok(ExitCode::SUCCESS);
    }
    let existed = c.store.path.exists();
    let key = c.store.key_path();
    let key_existed = key.exists();
    let a = open_with(c, OpenMode::Create)?;
    let path = a.config().store.path.display();
    if existed {
        outln!("The store {path} exists already; nothing changed.");
    } else {
        outln!("Created the store {path} (mode 0600).");
    }
    if key_existed {
        outln!("The key file {} exists already; kept.", key.display());
    } else {
        outln!(
            "Created the key file {} (mode 0600): it encrypts the seeds. Back it up apart from the store; without it no seed can be read.",
            key.display()
        );
    }
    init_vapid_key(&push)?;
    Ok(ExitCode::SUCCESS)
}

/// Where `[push] enabled`: the VAPID key file the portal signs its pushes with, made new
/// (0600) or, where it exists, read to check it and kept.
fn init_vapid_key(push: &mfa_config::PushConfig) -> Result<()> {
    if !push.enabled {
        return Ok(());
    }
    let path = &push.vapid_key_file;
    let (_, made) =
        mfa_core::push::VapidKey::create(path).map_err(|e| Fail::Error(e.to_string()))?;
    if made {
        outln!(
            "Created the VAPID key file {} (mode 0600): the portal signs its pushes with it. Every portal node needs this same file (copy it, 0600); a new key makes every phone register again.",
            path.display()
        );
    } else {
        outln!(
            "The VAPID key file {} exists already; kept.",
            path.display()
        );
    }
    Ok(())
}

pub fn rekey(cfg: &Path) -> Result<ExitCode> {
    let a = open(cfg, OpenMode::Existing)?;
    let n = a.admin(ACTOR).rekey(now())?;
    outln!(
        "Re-encrypted {n} key(s) under a new key in {}; the old key no longer opens the store. Back up the new key file; restart mfa-radiusd so it reads it.",
        a.config().store.key_path().display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn unlink(cfg: &Path, user: &str) -> Result<ExitCode> {
    let a = open(cfg, OpenMode::Existing)?;
    let name = user_name(&a, user)?;
    a.admin(ACTOR).unlink(&name, now())?;
    outln!("Unlinked {name}: the key is removed; enrol again to link a new phone.");
    Ok(ExitCode::SUCCESS)
}

pub fn unlock(cfg: &Path, user: &str) -> Result<ExitCode> {
    let a = open(cfg, OpenMode::Existing)?;
    let name = user_name(&a, user)?;
    if a.admin(ACTOR).unlock(&name, now())? {
        outln!("Unlocked {name}.");
    } else {
        outln!("{name} was not locked; failure counter cleared.");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn temp_access(
    cfg: &Path,
    user: &str,
    valid: Span,
    uses: u32,
    revoke: bool,
    force: bool,
) -> Result<ExitCode> {
    let a = open(cfg, OpenMode::Create)?;
    let name = user_name(&a, user)?;
    // A working code for a typo would be a way in for whoever takes that name.
    a.login()
        .admit_name(&name, Voucher::Administrator { force })?
        .required()?;
    let admin = a.admin(ACTOR);
    let t = now();
    if revoke {
        let n = admin.revoke_temp_access(&name, t)?;
        outln!("Revoked {n} temporary access code(s) of {user}.");
        return Ok(ExitCode::SUCCESS);
    }
    let secs = valid.secs_i64();
    if secs <= 0 {
        return Err(Fail::Error("--valid must be longer than 0s".into()));
    }
    let code = admin.issue_temp_access(&name, secs, uses, t)?;
    outln!(
        "Temporary access code for {user}: {} {}",
        &code[..4],
        &code[4..]
    );
    outln!(
        "Valid until {} for {uses} login(s). The user types it at the verification code prompt.",
        format_utc(t.saturating_add(secs))
    );
    Ok(ExitCode::SUCCESS)
}

pub fn backup_codes(cfg: &Path, user: &str, count: u32, force: bool) -> Result<ExitCode> {
    let a = open(cfg, OpenMode::Existing)?;
    let name = user_name(&a, user)?;
    a.login()
        .admit_name(&name, Voucher::Administrator { force })?
        .required()?;
    let codes = a
        .admin(ACTOR)
        .issue_backup_codes(&name, count, None, now())?;
    outln!("Backup codes for {user} (each works once; any earlier set no longer works):");
    for c in &codes {
        outln!("  {} {}", &c[..4], &c[4..]);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn prune(cfg: &Path) -> Result<ExitCode> {
    let a = open(cfg, OpenMode::Existing)?;
    let (n, users) = a.admin(ACTOR).prune(now())?;
    outln!(
        "Deleted {n} audit event(s) older than {}.",
        a.config().audit.retention
    );
    outln!(
        "Deleted {users} record(s) of names that never enrolled nor got in, first seen before then."
    );
    Ok(ExitCode::SUCCESS)
}

pub fn config_check(cfg: &Path) -> Result<ExitCode> {
    let c = match mfa_config::load(cfg) {
        Ok(c) => c,
        Err(e) => {
            for p in &e.problems {
                outln!("{p}");
            }
            return Err(Fail::Error(format!(
                "{} problem(s) in {}",
                e.problems.len(),
                cfg.display()
            )));
        }
    };
    let mut extra = c.check_referenced_files();
    extra.extend(mfa_tls_files::problems(&c));
    let key = c.store.key_path();
    let key_state = mfa_core::keyfile::read(&key);
    if let Err(e) = &key_state {
        extra.push(mfa_config::Problem {
            file: cfg.to_path_buf(),
            line: None,
            key: Some("store.key_file".into()),
            message: e.to_string(),
        });
    }
    for p in &extra {
        outln!("{p}");
    }
    // A PAM host's offline files, as the module would take them (issue 24).
    let (host_problems, host_notes) = match &c.remote {
        Some(r) => crate::pam_host::check_offline_files(r),
        None => (Vec::new(), Vec::new()),
    };
    for p in &host_problems {
        outln!("{}: {p}", cfg.display());
    }
    for w in c.warnings() {
        outln!("warning: {w}");
    }
    let mut problems = extra.len() + host_problems.len();
    if c.store.path.exists() {
        // The store opens only with its key: without it the names cannot be checked (the
        // key file's own state is reported below or above).
        if matches!(key_state, Ok(Some(_))) {
            problems += check_store_names(c.clone())?;
        } else {
            outln!("note: the stored user names are not checked without the store's key file");
        }
    }
    if problems != 0 {
        return Err(Fail::Error(format!(
            "{problems} problem(s) in {}",
            cfg.display()
        )));
    }
    outln!("{}: OK", cfg.display());
    match &c.store.url {
        Some(url) => outln!(
            "  store: PostgreSQL {} (sslmode {})",
            mfa_core::store::redact_url(url),
            c.store.sslmode.as_str()
        ),
        None => outln!(
            "  store: {} ({})",
            c.store.path.display(),
            if c.store.path.exists() {
                "exists"
            } else {
                "not created yet"
            }
        ),
    }
    outln!(
        "  key file: {} ({})",
        key.display(),
        if key.exists() {
            "exists"
        } else if c.store.path.exists() {
            "MISSING: no login works until it is restored or, for a store never encrypted, `mfactl init` makes it"
        } else {
            "not created yet: `mfactl init` makes it"
        }
    );
    for n in &host_notes {
        outln!("  {n}");
    }
    outln!("  go-live: {}", crate::golive::describe(&c, now()));
    outln!("  trusted networks: {}", c.policy.trusted_networks.len());
    if c.policy.remember.as_secs() > 0 {
        let kinds: Vec<String> = c
            .policy
            .remember_for
            .iter()
            .map(ToString::to_string)
            .collect();
        outln!(
            "  portal unlocks: {}, for {}",
            c.policy.remember,
            if kinds.is_empty() {
                "no login (remember_for = [])".to_string()
            } else {
                kinds.join(", ")
            }
        );
    }
    match c.radius.clients.len() {
        // Not an error: a site that only protects Linux logins has none.
        0 => {
            outln!("  RADIUS clients: none (mfa-radiusd will not start until one is configured)")
        }
        n => outln!("  RADIUS clients: {n}"),
    }
    // What each gateway preset set, so nothing a preset does is hidden.
    for client in &c.radius.clients {
        if let Some(summary) = c.preset_summary(client) {
            outln!("  {summary}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `config check`: the stored names under `[users]`, without changing anything (but filling
/// in missing look-alike keys, see `names::report`). Returns how many problems it printed
/// (sets of names that are one user or look alike); names that no front end can reach are
/// printed as warnings.
fn check_store_names(c: Config) -> Result<usize> {
    let store = c.store.path.display().to_string();
    let rules = names::describe(&c.users);
    let a = open_checking(c, OpenMode::Existing, NameCheck::Skip)?;
    let plan = names::report(&a)?;
    for (canonical, stored) in &plan.conflicts {
        let list: Vec<String> = stored.iter().map(|n| format!("{n:?}")).collect();
        outln!(
            "{store}: the records {} are one user ({canonical:?}) under {rules}; every login is \
             refused until one is left: `mfactl users merge FROM INTO` (INTO's key is kept) or \
             `mfactl users remove NAME`",
            list.join(" and ")
        );
    }
    for stored in &plan.lookalikes {
        let list: Vec<String> = stored.iter().map(|n| format!("{n:?}")).collect();
        outln!(
            "{store}: the records {} look alike (case, accents, width and look-alike letters \
             set aside) under {rules}: a directory that ignores accents takes them for one \
             account; every login is refused until one is left: `mfactl users merge FROM \
             INTO` (INTO's key is kept) or `mfactl users remove NAME`",
            list.join(" and ")
        );
    }
    for (name, to) in &plan.renames {
        outln!(
            "{store}: note: the record {name:?} is stored as {to:?} at the next start (its \
             canonical name under {rules})"
        );
    }
    for (name, why) in &plan.unreachable {
        outln!(
            "{store}: warning: no login can reach the record {name:?} under {rules} ({why}); \
             remove it with `mfactl users remove {name:?}`, or change [users] if it is a user \
             (list its domain; unicode = \"allow\" for a name beyond ASCII)"
        );
    }
    Ok(plan.conflicts.len() + plan.lookalikes.len())
}

/// `mfactl users list`: one page of the search by name, the store's
/// ([`mfa_core::core::Reads::user_page`] through the report, which adds the status).
fn list_users(
    cfg: &Path,
    prefix: Option<&str>,
    after: Option<String>,
    limit: u16,
) -> Result<ExitCode> {
    let a = open(cfg, OpenMode::Existing)?;
    let prefix = mfa_core::names::name_prefix(a.config(), prefix.unwrap_or(""))
        .map_err(|e| Fail::Error(e.to_string()))?;
    let report = mfa_core::report::Report::new(&a, a.config(), now())?;
    let page = report.page(&mfa_core::report::RowQuery {
        prefix: prefix.clone(),
        after,
        kind: None,
        limit: usize::from(limit),
    })?;
    let when = |t: Option<i64>| t.map_or("-".to_string(), format_utc);
    let body: Vec<Vec<String>> = page
        .rows
        .iter()
        .map(|r| {
            let u = &r.user;
            vec![
                u.name.to_string(),
                r.status_text(),
                when(u.mfa_created),
                when(u.mfa_changed),
                when(u.last_login),
                u.login_count.to_string(),
            ]
        })
        .collect();
    crate::report::print_table(
        &[
            "USER",
            "STATUS",
            "MFA CREATED",
            "MFA CHANGED",
            "LAST LOGIN",
            "LOGINS",
        ],
        &body,
    );
    if let Some(next) = page.next {
        let shown = crate::report::visible(&next);
        if prefix.is_empty() {
            println!("More: mfactl users list --after '{shown}'");
        } else {
            println!(
                "More: mfactl users list '{}' --after '{shown}'",
                crate::report::visible(&prefix)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `mfactl exempt list|add|remove`: the exemptions, edited in the file with the comments
/// kept and the result checked before it is written (as `trusted`).
pub fn exempt(cfg: &Path, action: ExemptAction) -> Result<ExitCode> {
    let edit = match action {
        ExemptAction::List => {
            let c = load_config(cfg)?;
            for u in &c.policy.exempt_users {
                println!("user  {u}");
            }
            for g in &c.policy.exempt_groups {
                println!("group {g}");
            }
            return Ok(ExitCode::SUCCESS);
        }
        ExemptAction::Add { name, group: false } => ExemptEdit::AddUser(name),
        ExemptAction::Add { name, group: true } => ExemptEdit::AddGroup(name),
        ExemptAction::Remove { name, group: false } => ExemptEdit::RemoveUser(name),
        ExemptAction::Remove { name, group: true } => ExemptEdit::RemoveGroup(name),
    };
    edit_exemptions(cfg, &edit).map_err(|e| Fail::Error(e.to_string()))?;
    let (key, entry) = edit.target();
    let done = match edit {
        ExemptEdit::AddUser(_) | ExemptEdit::AddGroup(_) => "Added",
        ExemptEdit::RemoveUser(_) | ExemptEdit::RemoveGroup(_) => "Removed",
    };
    println!("{done} {entry} ({key}) in {}.", cfg.display());
    eprintln!("{RELOAD_HINT}");
    Ok(ExitCode::SUCCESS)
}

/// `mfactl users merge|remove`: the repairs a name conflict needs, so the store is opened
/// without the check that would refuse it; the check runs after, and says what is left.
pub fn users(cfg: &Path, action: UsersAction) -> Result<ExitCode> {
    if let UsersAction::List {
        prefix,
        after,
        limit,
    } = action
    {
        return list_users(cfg, prefix.as_deref(), after, limit);
    }
    let a = open_checking(load_config(cfg)?, OpenMode::Existing, NameCheck::Skip)?;
    let admin = a.admin(ACTOR);
    match action {
        UsersAction::Merge { from, into } => {
            let kept = admin.merge_users(&from, &into, now())?;
            outln!(
                "Merged {from:?} into {into:?}: the record is {kept:?}, with the key of {into:?}."
            );
        }
        UsersAction::Remove { name } => {
            admin.remove_user(&name, now())?;
            outln!("Removed the record {name:?}; its audit trail stays.");
        }
        UsersAction::List { .. } => return Err(Fail::Error("unreachable".into())),
    }
    match a.check_names(NameCheck::Always) {
        Ok(()) => outln!(
            "The stored user names agree with {}.",
            names::describe(&a.config().users)
        ),
        Err(e @ mfa_core::CoreError::NameConflicts(_)) => outln!("Still to resolve: {e}"),
        Err(e) => return Err(e.into()),
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_cidr(s: &str) -> Result<Cidr> {
    s.parse::<Cidr>().map_err(Fail::Error)
}

pub fn trusted(cfg: &Path, action: TrustedAction) -> Result<ExitCode> {
    let err = |e: mfa_config::ConfigError| Fail::Error(e.to_string());
    match action {
        TrustedAction::List => {
            for n in &load_config(cfg)?.policy.trusted_networks {
                outln!("{n}");
            }
        }
        TrustedAction::Add { cidr } => {
            let c = parse_cidr(&cidr)?;
            edit_trusted_networks(cfg, TrustedEdit::Add(c)).map_err(err)?;
            outln!("Added {c} to the trusted networks in {}.", cfg.display());
            eprintln!("{RELOAD_HINT}");
        }
        TrustedAction::Remove { cidr } => {
            let c = parse_cidr(&cidr)?;
            edit_trusted_networks(cfg, TrustedEdit::Remove(c)).map_err(err)?;
            outln!(
                "Removed {c} from the trusted networks in {}.",
                cfg.display()
            );
            eprintln!("{RELOAD_HINT}");
        }
        TrustedAction::Test { ip } => {
            let c = load_config(cfg)?;
            let Some(addr) = parse_ip_literal(&ip) else {
                outln!("{ip:?} is not an IP address: host names are never trusted");
                return Ok(ExitCode::from(1));
            };
            return Ok(match trusted_match(&addr, &c.policy.trusted_networks) {
                Some(n) => {
                    outln!("{addr} is trusted (in {n})");
                    ExitCode::SUCCESS
                }
                None => {
                    outln!("{addr} is not trusted");
                    ExitCode::from(1)
                }
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}
