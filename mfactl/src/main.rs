//! `mfactl`: the MFA administrator's command-line tool.
//!
//! Exit status: 0 done or allowed, 1 denied or refused, 2 usage, configuration or input error.
#![forbid(unsafe_code)]

/// `println!` for mfactl: see [`write_stdout`].
macro_rules! outln {
    () => {
        $crate::write_stdout(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!($($arg)*), true)
    };
}

mod admin;
mod breakglass;
mod directory;
mod enroll;
mod golive;
mod import;
mod manual;
mod migrate;
mod pam_host;
mod portal;
mod push;
mod report;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use mfa_config::Span;

/// Why a command did not succeed, and so which exit status it gets.
#[derive(Debug)]
pub enum Fail {
    /// Denied or refused (exit 1).
    Refused(String),
    /// Usage, configuration, store or input error (exit 2).
    Error(String),
}

pub type Result<T> = std::result::Result<T, Fail>;

impl From<mfa_core::CoreError> for Fail {
    fn from(e: mfa_core::CoreError) -> Self {
        match e {
            mfa_core::CoreError::Refused(r) => Fail::Refused(r.to_string()),
            other => Fail::Error(other.to_string()),
        }
    }
}

impl From<mfa_core::store::StoreError> for Fail {
    fn from(e: mfa_core::store::StoreError) -> Self {
        Fail::from(mfa_core::CoreError::from(e))
    }
}

/// The canonical name of the user a command-line argument names, under the core's one rule
/// (`[users]`): `Alice` and `CONTOSO\alice` are `alice` where the configuration says so.
pub fn user_name(core: &mfa_core::Core, user: &str) -> Result<mfa_core::UserName> {
    core.user_name(user).map_err(|e| Fail::Error(e.to_string()))
}

#[derive(Parser, Debug)]
#[command(
    name = "mfactl",
    version,
    about = "Administer TOTP multi-factor authentication: enrol users, follow the roll-out, edit trusted networks"
)]
pub struct Cli {
    /// The configuration file.
    #[arg(long, global = true, env = "MFA_CONFIG", default_value = mfa_config::DEFAULT_PATH)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// `mfactl enroll --qr`: how the terminal QR code is drawn.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum QrStyle {
    Auto,
    Color,
    Dark,
    Light,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create the store (file 0600, directory 0700) and its key file (`[store] key_file`,
    /// 0600), so the PAM module and the daemon can run before anyone is enrolled. Keeps an
    /// existing store and key file; a store written before encryption at rest gets its seeds
    /// encrypted under the new key.
    Init,
    /// Rotate the key that encrypts the seeds: a new key file, every seed re-encrypted in one
    /// transaction, the old key no longer opens the store. All or nothing.
    Rekey,
    /// Enrol a user: new key, QR code, manual key, confirmation with a current code.
    Enroll {
        /// The user: a login name as the system, the directory or a gateway gives it
        /// (made canonical under `[users]`: `CONTOSO\alice` is `alice` where listed).
        user: String,
        /// Import an existing base32 key instead of generating one.
        #[arg(long, value_name = "BASE32")]
        secret: Option<String>,
        /// Do not ask for a code to confirm (scripted provisioning).
        #[arg(long)]
        no_confirm: bool,
        /// Also write the QR code as a PNG file (mode 0600: it holds the key).
        #[arg(long, value_name = "FILE")]
        qr_png: Option<PathBuf>,
        /// Also write the QR code as an SVG file (mode 0600).
        #[arg(long, value_name = "FILE")]
        qr_svg: Option<PathBuf>,
        /// Replace the key of a user who is already enrolled.
        #[arg(long)]
        replace: bool,
        /// How the QR code is drawn in the terminal. `auto` (the default): `color` when
        /// standard output is a terminal (unless NO_COLOR is set or TERM=dumb), else `dark`.
        /// `color`: black on white in the code's own colours, so it scans on a dark and on
        /// a light background alike. `dark`: plain characters for a dark background (light
        /// text). `light`: plain characters for a light background (dark text) or paper.
        #[arg(long, value_enum, default_value = "auto", value_name = "STYLE")]
        qr: QrStyle,
    },
    /// Remove a user's key (lost phone, or before re-enrolling). History stays.
    Unlink {
        /// The user: a login name as the system, the directory or a gateway gives it
        /// (made canonical under `[users]`: `CONTOSO\alice` is `alice` where listed).
        user: String,
    },
    /// Clear a lockout after too many wrong codes.
    Unlock {
        /// The user: a login name as the system, the directory or a gateway gives it
        /// (made canonical under `[users]`: `CONTOSO\alice` is `alice` where listed).
        user: String,
    },
    /// Run the full policy for a login exactly as the PAM module and the daemon would. The
    /// user must be known to the system (NSS) or held in the store, unless --force.
    Auth {
        /// The user: a login name as the system, the directory or a gateway gives it
        /// (made canonical under `[users]`: `CONTOSO\alice` is `alice` where listed).
        user: String,
        /// The client's IP address (an IPv4 or IPv6 literal); without it, a local login.
        #[arg(long)]
        ip: Option<String>,
        /// The code; `-` reads it from standard input (keeps it out of the process list).
        #[arg(long)]
        code: Option<String>,
        /// What asks: `pam:SERVICE` or `radius:CLIENT` (a configured client) to decide as
        /// that PAM service or RADIUS client would ([policy] remember_for, [[policy.rules]]);
        /// any other name (`sudo`) is matched by the rules' `services` and names the audit
        /// trail's service. The output names the rule that matched.
        #[arg(long, default_value = "mfactl")]
        service: String,
        /// Act on a name the system does not know and the store does not hold (it gets a
        /// record, as a first login does).
        #[arg(long)]
        force: bool,
    },
    /// The database server in use: its address, whether it is the primary (takes writes),
    /// and its standbys with their synchronous state and lag (PostgreSQL; docs/FAILOVER.md).
    /// On a PAM host in remote mode: its RADIUS servers as it last saw them (last answer,
    /// last failure and why, the one in use).
    Status {
        /// `table` (for reading) or `json` (a program).
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Roll-out report: who is enrolled, logins, failures, locks, go-live.
    Report {
        /// `table` (for reading), `csv` (a spreadsheet) or `json` (a program).
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// List, add, remove or test trusted networks (edits the config file in place).
    Trusted {
        #[command(subcommand)]
        action: TrustedAction,
    },
    /// Show, set or clear the go-live (`[policy] enforce_from`; edits the config file in
    /// place). Without an action: show.
    GoLive {
        #[command(subcommand)]
        action: Option<GoLiveAction>,
    },
    /// Check the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Enrol many users at once from a CSV of `user,base32-secret` lines or from
    /// google-authenticator files; all or nothing.
    Import {
        /// CSV files of `user,base32-secret` lines, or google-authenticator files
        /// (`~/.google_authenticator`).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// The user a single google-authenticator file belongs to (default: the file's owner).
        #[arg(long)]
        user: Option<String>,
        /// Replace the keys of users who are already enrolled.
        #[arg(long)]
        replace: bool,
    },
    /// Issue a one-time temporary access code for a user without the phone. The user must be
    /// known to the system (NSS) or held in the store, unless --force.
    TempAccess {
        /// The user: a login name as the system, the directory or a gateway gives it
        /// (made canonical under `[users]`: `CONTOSO\alice` is `alice` where listed).
        user: String,
        /// Issue it for a name the system does not know and the store does not hold.
        #[arg(long)]
        force: bool,
        /// How long the code stays valid.
        #[arg(long, default_value = "8h")]
        valid: Span,
        /// How many logins it allows.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
        uses: u32,
        /// Revoke the user's temporary access codes instead.
        #[arg(long, conflicts_with_all = ["valid", "uses"])]
        revoke: bool,
    },
    /// Print a new set of one-time backup codes (the old set stops working). The user must be
    /// known to the system (NSS) or held in the store, unless --force, and enrolled.
    BackupCodes {
        /// The user: a login name as the system, the directory or a gateway gives it
        /// (made canonical under `[users]`: `CONTOSO\alice` is `alice` where listed).
        user: String,
        /// Skip the check that the system knows the name or the store holds it.
        #[arg(long)]
        force: bool,
        /// How many codes.
        #[arg(long, default_value_t = mfa_core::BACKUP_CODES_DEFAULT,
              value_parser = clap::value_parser!(u32).range(
                  i64::from(*mfa_core::BACKUP_CODES.start())..=i64::from(*mfa_core::BACKUP_CODES.end())))]
        count: u32,
    },
    /// Show the audit trail.
    Log {
        /// Only this user's events (default: every user's).
        user: Option<String>,
        /// Only events newer than this (e.g. 1h, 7d).
        #[arg(long)]
        since: Option<Span>,
        /// `table` (for reading), `csv` (a spreadsheet) or `json` (a program).
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Delete audit events older than `audit.retention`.
    Prune,
    /// Merge or remove user records, named as stored (as `mfactl config check` lists them):
    /// for two stored names that are one user under `[users]`.
    Users {
        #[command(subcommand)]
        action: UsersAction,
    },
    /// Copy the configured store (users, one-time codes, address counters, the audit trail)
    /// into an empty PostgreSQL store, all or nothing; a store that is not empty is refused.
    /// TLS and password come from the config's [store] keys unless given here.
    Migrate {
        /// The target: postgres://ROLE@HOST:PORT/DATABASE (no password in it).
        #[arg(long, value_name = "URL")]
        to: String,
        /// The file whose first line is the target role's password.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// TLS to the target: disable, require or verify-full.
        #[arg(long, value_name = "MODE")]
        sslmode: Option<String>,
        /// The CA certificates (PEM) of the target server.
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
    },
    /// Print the shell completion script for bash, zsh or fish, e.g.
    /// `source <(mfactl completion bash)`.
    Completion {
        /// The shell the script is for.
        shell: clap_complete::Shell,
    },
    /// Write the man page mfactl.8 into DIR (the package build runs this).
    #[command(hide = true)]
    GenerateMan {
        /// The directory the pages are written into.
        dir: PathBuf,
    },
    /// Print a one-time enrolment link for the portal (`[portal] public_url`), as the first
    /// URL of the output; the user needs no record yet. `--unenrolled`: one link for every
    /// stored user who is not enrolled (`--format csv` for a mail merge). A user who is
    /// enrolled already is refused (the link would only say "already linked") unless
    /// `--replace`.
    Invite {
        /// The user the link enrols (a name the system or the directory knows).
        #[arg(
            value_name = "USER",
            required_unless_present = "unenrolled",
            conflicts_with = "unenrolled"
        )]
        user: Option<String>,
        /// One link for every stored user who is not enrolled.
        #[arg(long)]
        unenrolled: bool,
        /// How long the link stays valid (default `[portal] invite_valid`).
        #[arg(long)]
        valid: Option<Span>,
        /// `table` (the link first on each line), `csv` (user,link,expires) or `json` (an
        /// array of {user, link, expires}).
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// For a user who is enrolled: remove the current key now (as `mfactl unlink`) and
        /// issue the link; until it is used the user has no key.
        #[arg(long, conflicts_with = "unenrolled")]
        replace: bool,
    },
    /// List the addresses users unlocked on the portal (remembered networks), or revoke them.
    #[command(args_conflicts_with_subcommands = true)]
    Unlocks {
        /// Only this user's remembered addresses (default: every user's).
        user: Option<String>,
        #[command(subcommand)]
        action: Option<UnlocksAction>,
    },
    /// The phones a user registered on the portal to approve sign-ins (push approval), and
    /// the block "This wasn't me" puts on pushes to the user.
    Push {
        #[command(subcommand)]
        action: PushAction,
    },
    /// List, add or remove exemptions (`[policy] exempt_users`, `exempt_groups`; edits the
    /// config file in place): users who never need a code.
    Exempt {
        #[command(subcommand)]
        action: ExemptAction,
    },
    /// Break-glass codes of a PAM host in remote mode: one-time codes that let in on that
    /// host only while no server answers (its `[remote] breakglass_file`).
    Breakglass {
        #[command(subcommand)]
        action: BreakglassAction,
    },
    /// What `[directory]` (Active Directory, LDAP) says about a user.
    Directory {
        #[command(subcommand)]
        action: DirectoryAction,
    },
}

#[derive(Subcommand, Debug)]
pub enum DirectoryAction {
    /// Look USER up in the directory (the server, not the cache): found or not, the
    /// canonical name, each group with the chain of groups that makes the user a member
    /// (the primary group marked), the server that answered, and the time taken.
    Test {
        /// The user as a login gives it: `alice`, `TEST\alice`, `alice@test.lan`.
        user: String,
        /// `table` (for reading) or `json` (a program).
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Subcommand, Debug)]
pub enum BreakglassAction {
    /// Print new codes for HOST once and write their hashes to a file (root's, 0600) that
    /// replaces the host's old set: copy it to the host as its `[remote] breakglass_file`.
    Issue {
        /// The host (its name, as it names itself to the servers).
        host: String,
        /// How many codes.
        #[arg(long, default_value_t = mfa_core::breakglass::BREAKGLASS_CODES_DEFAULT,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(mfa_core::breakglass::BREAKGLASS_CODES_MAX)))]
        count: u32,
        /// Where to write the file (default: `breakglass-HOST` in the current directory).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ExemptAction {
    /// List the exempt users and groups.
    List,
    /// Exempt a user (or with --group, a group's members).
    Add {
        /// The user name, or the group name with --group.
        name: String,
        /// NAME is a group (`[policy] exempt_groups`).
        #[arg(long)]
        group: bool,
    },
    /// End an exemption.
    Remove {
        /// The user name, or the group name with --group, as listed.
        name: String,
        /// NAME is a group (`[policy] exempt_groups`).
        #[arg(long)]
        group: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum PushAction {
    /// List the user's registered phones (id, when registered, last used, name) and any
    /// block of pushes.
    List {
        /// The user: a login name as the system, the directory or a gateway gives it
        /// (made canonical under `[users]`).
        user: String,
        /// How to print: table, csv or json.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Remove one of the user's phones (lost, replaced): it no longer receives nor approves
    /// sign-in requests. Exit 1 when the user has no such device.
    Remove {
        /// The user, as for `push list`.
        user: String,
        /// The device id, as `mfactl push list` shows it (32 hex digits).
        device: String,
    },
    /// Lift the block "This wasn't me" put on pushes to the user (after a mistake).
    Unblock {
        /// The user, as for `push list`.
        user: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum UnlocksAction {
    /// End the user's remembered addresses, or only IP.
    Revoke {
        /// The user: a login name as the system, the directory or a gateway gives it
        /// (made canonical under `[users]`: `CONTOSO\alice` is `alice` where listed).
        user: String,
        /// Only this address (default: every address the user unlocked).
        ip: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum UsersAction {
    /// List the stored users whose names start with PREFIX (every user without), a page at
    /// a time in byte order of the names, with their roll-out status: the search of the
    /// administrator's console, through the store's index of the names.
    List {
        /// The start of the names (made canonical under `[users]`, as a login's name is).
        prefix: Option<String>,
        /// Begin after this name (the last of the page before, as the output says).
        #[arg(long, value_name = "NAME")]
        after: Option<String>,
        /// How many users a page holds.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
    },
    /// Merge the record FROM into INTO: INTO's key, one-time codes and counters are kept,
    /// under INTO's canonical name; FROM's record is removed. The audit trail of both stays.
    Merge {
        /// The stored name whose record goes.
        from: String,
        /// The stored name whose record (and key) stays.
        into: String,
    },
    /// Remove a user's record and one-time codes. The audit trail stays.
    Remove {
        /// The name as stored (as `mfactl config check` prints it).
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TrustedAction {
    /// List the trusted networks.
    List,
    /// Add a network (an address or a CIDR) to `[policy] trusted_networks`.
    Add {
        /// An IPv4 or IPv6 address or CIDR, e.g. 10.0.0.0/8 or 2001:db8:10::/48.
        cidr: String,
    },
    /// Remove a network from `[policy] trusted_networks`.
    Remove {
        /// A network as listed by `mfactl trusted list`.
        cidr: String,
    },
    /// Exit 0 if the address is trusted, 1 if not.
    Test {
        /// An IPv4 or IPv6 address.
        ip: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum GoLiveAction {
    /// Print the go-live and what it means now.
    Show,
    /// Set the go-live: a date (2027-03-01, midnight UTC) or a date-time
    /// (2027-03-01T08:00:00Z); `never` is the same as `clear`.
    Set {
        /// A date (2027-03-01), a date-time (2027-03-01T08:00:00Z) or `never`.
        date: String,
    },
    /// Clear the go-live: `enforce_from = "never"`, the roll-out not scheduled (users who
    /// are not enrolled are let in; enrolled users still need their code).
    Clear,
}

#[derive(Subcommand, Debug)]
pub enum ConfigAction {
    /// Validate the configuration and print every problem with file, line and key.
    Check,
}

/// Writes to standard output. `println!` panics where the reader has gone (`mfactl invite
/// --unenrolled | head -1`: Rust ignores SIGPIPE, so the write fails with EPIPE); mfactl
/// ends instead as a tool killed by SIGPIPE does, quietly with status 141, after whatever
/// it had written to the store. Any other write error is named, status 1.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>, newline: bool) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let r = o
        .write_fmt(args)
        .and_then(|()| if newline { o.write_all(b"\n") } else { Ok(()) });
    if let Err(e) = r {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("mfactl: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(Fail::Refused(m)) => {
            eprintln!("mfactl: {m}");
            ExitCode::from(1)
        }
        Err(Fail::Error(m)) => {
            eprintln!("mfactl: {m}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let cfg = &cli.config;
    match cli.command {
        Command::Init => admin::init(cfg),
        Command::Rekey => admin::rekey(cfg),
        Command::Enroll {
            user,
            secret,
            no_confirm,
            qr_png,
            qr_svg,
            replace,
            qr,
        } => enroll::enroll(
            cfg,
            &user,
            secret.as_deref(),
            no_confirm,
            enroll::Files {
                png: qr_png.as_deref(),
                svg: qr_svg.as_deref(),
                style: qr,
            },
            replace,
        ),
        Command::Unlink { user } => admin::unlink(cfg, &user),
        Command::Unlock { user } => admin::unlock(cfg, &user),
        Command::Auth {
            user,
            ip,
            code,
            service,
            force,
        } => admin::auth(cfg, &user, ip.as_deref(), code.as_deref(), &service, force),
        Command::Report { format } => report::report(cfg, format),
        Command::Status { format } => status::status(cfg, format),
        Command::Trusted { action } => admin::trusted(cfg, action),
        Command::GoLive { action } => golive::go_live(cfg, action),
        Command::Config {
            action: ConfigAction::Check,
        } => admin::config_check(cfg),
        Command::Import {
            files,
            user,
            replace,
        } => import::import(cfg, &files, user.as_deref(), replace),
        Command::TempAccess {
            user,
            force,
            valid,
            uses,
            revoke,
        } => admin::temp_access(cfg, &user, valid, uses, revoke, force),
        Command::BackupCodes { user, force, count } => {
            admin::backup_codes(cfg, &user, count, force)
        }
        Command::Log {
            user,
            since,
            format,
        } => report::log(cfg, user.as_deref(), since, format),
        Command::Prune => admin::prune(cfg),
        Command::Users { action } => admin::users(cfg, action),
        Command::Migrate {
            to,
            password_file,
            sslmode,
            ca_file,
        } => migrate::migrate(cfg, &to, password_file, sslmode.as_deref(), ca_file),
        Command::Completion { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "mfactl", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::GenerateMan { dir } => manual::generate_man(&dir),
        Command::Invite {
            user,
            unenrolled,
            valid,
            format,
            replace,
        } => portal::invite(cfg, user.as_deref(), unenrolled, valid, format, replace),
        Command::Unlocks { user, action } => portal::unlocks(cfg, user.as_deref(), action),
        Command::Push { action } => push::push(cfg, action),
        Command::Exempt { action } => admin::exempt(cfg, action),
        Command::Breakglass {
            action: BreakglassAction::Issue { host, count, out },
        } => breakglass::issue(&host, count, out),
        Command::Directory {
            action: DirectoryAction::Test { user, format },
        } => directory::test(cfg, &user, format),
    }
}
