//! `mfa-radiusd [--config PATH]`: runs in the foreground, logs to stderr (and syslog when
//! `radius.syslog`). SIGHUP reloads the configuration, SIGTERM stops.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use mfa_radius::server::Options;

/// mimalloc instead of glibc's malloc: every request allocates a task (over 1 KiB, which
/// made glibc consolidate its fast bins each time), its datagram, its reply and the store
/// writer's rows; glibc's allocator was about a sixth of a worker thread's CPU (issue 25).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: mfa-radiusd [--config PATH] [--pam-confdir DIR]

  --config PATH       configuration file (default /etc/mfa/mfa.toml)
  --pam-confdir DIR   read PAM service files from DIR instead of /etc/pam.d
  --help, --version

Runs in the foreground. SIGHUP reloads the configuration (a bad one is reported and the
running one kept), SIGTERM stops, SIGUSR1 logs the counters.";

fn parse_args() -> Result<Option<Options>, String> {
    let mut opts = Options {
        config_path: mfa_config::Config::default_path(),
        pam_confdir: None,
    };
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        let a = a.to_string_lossy().into_owned();
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = |name: &str| -> Result<PathBuf, String> {
            match inline.clone() {
                Some(v) => Ok(PathBuf::from(v)),
                None => args
                    .next()
                    .map(PathBuf::from)
                    .ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "--config" | "-c" => opts.config_path = value("--config")?,
            "--pam-confdir" => opts.pam_confdir = Some(value("--pam-confdir")?),
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "--version" | "-V" => {
                println!("mfa-radiusd {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(opts))
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(Some(o)) => o,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mfa-radiusd: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(1024 + 64)
        .thread_name("mfa-radiusd")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mfa-radiusd: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(mfa_radius::run::serve(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mfa-radiusd: {e}");
            ExitCode::from(2)
        }
    }
}
