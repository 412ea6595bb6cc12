//! `mfa-portal`: the self-service web page (invite links, enrolment, my account, unlock).
//! In the foreground, logging to stderr; never a token, key, code or password in the log.
#![forbid(unsafe_code)]

mod admin;
mod app;
mod client;
mod conn;
mod delivery;
mod form;
mod handlers;
mod limits;
mod metrics;
mod page;
mod refusal;
mod session;
mod text;
mod views;
mod words;
mod zone;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use mfa_core::{NameCheck, OpenMode};
use tokio::net::TcpListener;
use tower::ServiceExt;

const USAGE: &str = "usage: mfa-portal [--config PATH] [--pam-confdir DIR]
  --config PATH       the configuration file (default /etc/mfa/mfa.toml, or $MFA_CONFIG)
  --pam-confdir DIR   read PAM service files from DIR instead of /etc/pam.d
  --help, --version";

fn main() -> ExitCode {
    let mut config = std::env::var_os("MFA_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(mfa_config::DEFAULT_PATH));
    let mut confdir = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--config") => match args.next() {
                Some(v) => config = PathBuf::from(v),
                None => return usage("--config needs a path"),
            },
            Some("--pam-confdir") => match args.next() {
                Some(v) => confdir = Some(PathBuf::from(v)),
                None => return usage("--pam-confdir needs a directory"),
            },
            Some("--help" | "-h") => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            Some("--version" | "-V") => {
                println!("mfa-portal {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            _ => return usage(&format!("unknown argument {a:?}")),
        }
    }
    match run(&config, confdir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mfa-portal: {e}");
            ExitCode::from(2)
        }
    }
}

fn usage(m: &str) -> ExitCode {
    eprintln!("mfa-portal: {m}\n{USAGE}");
    ExitCode::from(2)
}

fn run(path: &std::path::Path, confdir: Option<PathBuf>) -> Result<(), String> {
    let cfg = mfa_config::load(path).map_err(|e| format!("invalid configuration:\n{e}"))?;
    let tls = tls_config(&cfg.portal)?;
    let listen = cfg.portal.listen;
    let metrics_listen = cfg.portal.metrics_listen;
    let admin = cfg.admin.clone();
    let limits = ConnLimits {
        header_timeout: cfg.portal.header_timeout.0,
        admission: conn::Admission::new(
            max_connections(cfg.portal.max_connections),
            cfg.portal.connections_per_address,
            cfg.portal.trusted_proxies.clone(),
        ),
    };
    if cfg.portal.public_url.is_none() {
        eprintln!(
            "mfa-portal: warning: [portal] public_url is not set; mfactl invite cannot print links"
        );
    }
    let sender = push_sender(&cfg)?;
    // The logo is read once, before anything is served: one that cannot be read, is too
    // large or is no image stops the start.
    let brand = page::Brand::load(&cfg.portal)?;
    let core = mfa_store_open::open_core(
        Arc::new(cfg),
        OpenMode::Existing,
        "mfa-portal",
        NameCheck::IfRulesChanged,
    )
    .map_err(|e| e.to_string())?;
    let core = Arc::new(core);
    let vapid_public = sender.as_ref().map(|(_, public)| public.clone());
    let mut portal = app::Portal::new(core.clone(), tls.is_some(), confdir, vapid_public)
        .ok_or("cannot read the system's random source")?;
    portal.brand = brand;
    let portal = Arc::new(portal);
    if let Some((sender, _)) = sender {
        delivery::start(core, sender, portal.metrics.clone())?;
        eprintln!("mfa-portal: delivering push approvals (the one sender)");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    // The administrator's console, where `[admin] groups` names a group: on its own
    // listener with `[admin] listen`, else under /admin of the portal's.
    let console = if admin.enabled() {
        Some(Arc::new(
            admin::Console::new(portal.clone()).ok_or("cannot read the system's random source")?,
        ))
    } else {
        None
    };
    rt.block_on(async move {
        if let Some(addr) = metrics_listen {
            let l = mfa_metrics_http::bind(addr)
                .await
                .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))?;
            eprintln!("mfa-portal: metrics on http://{addr}/metrics");
            tokio::spawn(mfa_metrics_http::serve(l, portal.metrics.registry()));
        }
        let (main_router, console_listener) = match (console, admin.listen) {
            (Some(con), Some(addr)) => (
                app::router(portal, None),
                Some((addr, admin::standalone(con))),
            ),
            (con, _) => (app::router(portal, con), None),
        };
        serve(listen, main_router, console_listener, tls, limits).await
    })
}

/// Where `[push] enabled`: the sender of the pushes (the VAPID key of `[push]
/// vapid_key_file` and the VAPID contact) and the VAPID public key the phones subscribe
/// with. A missing or unsafe key file stops the start, naming it: without it no push could
/// be delivered.
fn push_sender(cfg: &mfa_config::Config) -> Result<Option<(delivery::Sender, String)>, String> {
    let push = &cfg.push;
    if !push.enabled {
        return Ok(None);
    }
    let key = mfa_core::push::VapidKey::read(&push.vapid_key_file).map_err(|e| {
        format!("[push] vapid_key_file: {e} (`mfactl init` makes it where [push] enabled)")
    })?;
    let subscriber = push
        .subscriber_or(cfg)
        .ok_or("[push] subscriber: the VAPID contact is not set (nor [portal] public_url)")?;
    let public = key.public_key_base64url();
    Ok(Some((delivery::Sender::new(&key, subscriber)?, public)))
}

fn tls_config(p: &mfa_config::PortalConfig) -> Result<Option<tokio_rustls::TlsAcceptor>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let (Some(cert), Some(key)) = (&p.tls_cert, &p.tls_key) else {
        return Ok(None);
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("[portal] tls_cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "[portal] tls_cert {}: no certificate in it",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("[portal] tls_key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut sc = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| format!("[portal] tls_cert / tls_key: {e}"))?;
    sc.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(sc))))
}

/// What bounds the connections: how long a client may take to send a request's head (from
/// the connection's start and after each answer: so also how long a connection may sit
/// idle), and how many may be open.
struct ConnLimits {
    header_timeout: std::time::Duration,
    admission: Arc<conn::Admission>,
}

/// Connections the portal keeps open at once: `[portal] max_connections`, lowered where
/// the open-file limit (raised first to its hard limit, as the unit's LimitNOFILE allows)
/// would not hold them and the files the portal needs besides.
fn max_connections(configured: usize) -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    const RESERVE: u64 = 64;
    let soft = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(_) => soft,
        },
        Ok((soft, _)) => soft,
        Err(_) => return configured,
    };
    let room = usize::try_from(soft.saturating_sub(RESERVE).max(RESERVE)).unwrap_or(usize::MAX);
    if room < configured {
        eprintln!(
            "mfa-portal: warning: the open-file limit ({soft}) holds {room} connections, fewer than [portal] max_connections ({configured}); raise LimitNOFILE"
        );
    }
    configured.min(room)
}

/// One accept loop for plain HTTP and TLS; each connection gets the peer address as
/// `ConnectInfo`. A connection over the limits is closed at once. SIGTERM or Ctrl-C stops
/// accepting and ends the process.
async fn serve(
    listen: std::net::SocketAddr,
    router: axum::Router,
    console: Option<(std::net::SocketAddr, axum::Router)>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: ConnLimits,
) -> Result<(), String> {
    // The handlers come before the bind and READY=1: a SIGTERM sent the moment systemd (or a
    // test) sees READY must stop the portal cleanly, not kill it with the default action.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot catch SIGTERM: {e}"))?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| format!("cannot catch SIGINT: {e}"))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // The console's own listener first: the portal is ready only once both are bound.
    if let Some((addr, console_router)) = console {
        let l = TcpListener::bind(addr).await.map_err(|e| {
            format!("cannot listen for the console ([admin] listen) on {addr}: {e}")
        })?;
        let local = l.local_addr().map_err(|e| e.to_string())?;
        eprintln!("mfa-portal: console listening on {scheme}://{local}/admin");
        let (tls, limits) = (
            tls.clone(),
            ConnLimits {
                header_timeout: limits.header_timeout,
                admission: limits.admission.clone(),
            },
        );
        tokio::spawn(async move { accept_loop(l, console_router, tls, limits).await });
    }
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!("mfa-portal: listening on {scheme}://{local}");
    // The sockets are bound: tell systemd (Type=notify) the portal is ready.
    if let Err(e) = mfa_notify::notify("READY=1") {
        eprintln!("mfa-portal: cannot notify systemd of readiness: {e}");
    }
    tokio::select! {
        () = accept_loop(listener, router, tls, limits) => {}
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    eprintln!("mfa-portal: stopping");
    let _ = mfa_notify::notify("STOPPING=1");
    let _ = TokioExecutor::new();
    Ok(())
}

/// Accepts connections on `listener` and serves `router` on each, within the limits, until
/// the process ends.
async fn accept_loop(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: ConnLimits,
) {
    let timeout = limits.header_timeout;
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(v) => v,
            Err(e) => {
                eprintln!("mfa-portal: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let slot = match limits.admission.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                if limits.admission.log_refusal() {
                    eprintln!(
                        "mfa-portal: refusing connections: {} (logged at most once a minute)",
                        match why {
                            conn::Refused::Total => "[portal] max_connections are open",
                            conn::Refused::Address =>
                                "one address holds [portal] connections_per_address",
                        }
                    );
                }
                drop(tcp);
                continue;
            }
        };
        let svc =
            router
                .clone()
                .map_request(move |mut r: axum::http::Request<hyper::body::Incoming>| {
                    r.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                    r
                });
        let svc = TowerToHyperService::new(svc);
        let tls = tls.clone();
        tokio::spawn(async move {
            // The connection's place is held until this task ends.
            let _slot = slot;
            let mut builder = hyper::server::conn::http1::Builder::new();
            // Hyper starts this timer whenever it waits for a request's head: on a new
            // connection and after each answer on a kept-alive one.
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(timeout);
            match tls {
                Some(acc) => {
                    let Ok(Ok(stream)) = tokio::time::timeout(timeout, acc.accept(tcp)).await
                    else {
                        return;
                    };
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                }
                None => {
                    let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                }
            }
        });
    }
}
