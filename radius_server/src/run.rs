//! Sockets, signals and the process lifecycle.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::signal::unix::{SignalKind, signal};

use crate::admission::Port;
use crate::logbuf::FLUSH_EVERY;
use crate::metrics::{self, Metrics};
use crate::notify;
use crate::radsec;
use crate::runtime::Runtime;
use crate::server::{Options, Shared};

/// How long SIGTERM waits for requests already being processed.
const DRAIN: Duration = Duration::from_secs(5);

/// Binds one UDP socket. IPv6 sockets are v6-only so `0.0.0.0:1812` and `[::]:1812` can both
/// be listed, as the example configuration does.
pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    // Bursts of requests after a gateway restart should queue in the kernel, not be lost.
    let _ = s.set_recv_buffer_size(4 << 20);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

async fn receive(shared: Arc<Shared>, sock: Arc<UdpSocket>, port: Port) {
    let mut buf = vec![0u8; 4096 + 1];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let Some(data) = buf.get(..n) else { continue };
                shared.on_datagram(&sock, port, from, data);
            }
            Err(e) => {
                // ICMP errors from earlier sends surface here on some systems; keep serving.
                if e.kind() != std::io::ErrorKind::ConnectionRefused {
                    shared.warn(&format!("receive error: {e}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
}

/// Runs the daemon until SIGTERM or SIGINT. Errors are start-up failures.
pub async fn serve(options: Options) -> Result<(), String> {
    let path = options.config_path.clone();
    let metrics = Metrics::default();
    let writer_metrics = metrics.writer.clone();
    let runtime = tokio::task::spawn_blocking(move || Runtime::load(&path, &writer_metrics))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let listen = runtime_listen(&runtime);
    let accounting = runtime.config().radius.accounting_addresses();
    let radsec_listen = runtime
        .config()
        .radius
        .radsec
        .as_ref()
        .map(|t| t.listen.clone())
        .unwrap_or_default();
    let mode = runtime_mode(&runtime);
    let metrics_listen = runtime.config().radius.metrics_listen;
    let warnings = runtime.warnings().to_vec();
    let shared = Shared::new(runtime, options, metrics);
    for w in &warnings {
        shared.warn(w);
    }

    let mut hup = signal(SignalKind::hangup()).map_err(|e| format!("SIGHUP handler: {e}"))?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM handler: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT handler: {e}"))?;
    let mut usr1 =
        signal(SignalKind::user_defined1()).map_err(|e| format!("SIGUSR1 handler: {e}"))?;

    let mut receivers = Vec::new();
    for addr in &listen {
        let sock = bind(*addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let sock = Arc::new(sock);
        receivers.push(tokio::spawn(receive(shared.clone(), sock, Port::Access)));
    }
    let mut accounting_on = Vec::new();
    for addr in &accounting.addresses {
        match bind(*addr) {
            Ok(sock) => {
                accounting_on.push(*addr);
                receivers.push(tokio::spawn(receive(
                    shared.clone(),
                    Arc::new(sock),
                    Port::Accounting,
                )));
            }
            Err(e) if accounting.explicit => {
                return Err(format!("cannot listen for accounting on {addr}: {e}"));
            }
            // Derived from `listen`, not asked for: a host where something else holds the
            // next port keeps its authentication, and is told.
            Err(e) => shared.warn(&format!(
                "cannot listen for accounting on {addr} (not set, so the listen port plus one): {e}; accounting is not answered there: set [radius] accounting_listen (or [] for none)"
            )),
        }
    }
    let conns = Arc::new(radsec::Connections::default());
    for addr in &radsec_listen {
        let l =
            radsec::bind(*addr).map_err(|e| format!("cannot listen for RadSec on {addr}: {e}"))?;
        receivers.push(tokio::spawn(radsec::serve(
            shared.clone(),
            l,
            conns.clone(),
        )));
    }
    if let Some(addr) = metrics_listen {
        let l = metrics::bind(addr)
            .await
            .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))?;
        let s = shared.clone();
        let registry = metrics::registry(
            &shared.metrics,
            shared.stats.clone(),
            Arc::new(move || {
                // A store read inside the scrape's task: the runtime is told this worker
                // blocks, so a slow or unreachable database holds up no request.
                match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
                    Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                        tokio::task::block_in_place(|| s.pending_challenges())
                    }
                    _ => s.pending_challenges(),
                }
            }),
        );
        receivers.push(tokio::spawn(metrics::serve(l, registry)));
    }
    let list = |a: &[SocketAddr]| {
        a.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let radsec_note = if radsec_listen.is_empty() {
        String::new()
    } else {
        format!("; RadSec (TLS) on {}", list(&radsec_listen))
    };
    let metrics_note = metrics_listen
        .map(|a| format!("; metrics on http://{a}/metrics"))
        .unwrap_or_default();
    let accounting_note = if accounting_on.is_empty() {
        "; no accounting".to_string()
    } else {
        format!("; accounting on {}", list(&accounting_on))
    };
    shared.log.line_now(&format!(
        "listening on {} (mode {mode}){accounting_note}{radsec_note}{metrics_note}",
        list(&listen)
    ));
    // Every socket is bound: tell systemd (Type=notify) the daemon is ready.
    if let Err(e) = notify::notify("READY=1") {
        shared.warn(&format!("cannot notify systemd of readiness: {e}"));
    }

    let mut tick = tokio::time::interval(Duration::from_secs(30));
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    loop {
        tokio::select! {
            _ = hup.recv() => {
                let _ = notify::notify("RELOADING=1");
                shared.reload().await;
                // Open RadSec connections answer to the configuration now in force (after a
                // failed reload, the same one: nothing changes).
                let closed = conns.recheck(&shared);
                if closed > 0 {
                    shared.log.line_now(&format!(
                        "reload: closing {closed} RadSec connection(s) the configuration no longer admits"
                    ));
                }
                let _ = notify::notify("READY=1");
            }
            _ = usr1.recv() => shared.log.line_now(&shared.stats.summary()),
            _ = tick.tick() => {
                let s = shared.clone();
                // A store call: off the async threads.
                drop(tokio::task::spawn_blocking(move || s.sweep()));
            }
            _ = flush.tick() => shared.log.flush(),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    let _ = notify::notify("STOPPING=1");
    for r in &receivers {
        r.abort();
    }
    let deadline = tokio::time::Instant::now() + DRAIN;
    while shared.inflight() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shared
        .log
        .line_now(&format!("stopping; {}", shared.stats.summary()));
    Ok(())
}

fn runtime_listen(rt: &Runtime) -> Vec<SocketAddr> {
    rt.config().radius.listen.clone()
}

fn runtime_mode(rt: &Runtime) -> &'static str {
    crate::mode::mode_name(rt.config().radius.mode)
}
