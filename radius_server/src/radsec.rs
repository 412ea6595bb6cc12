//! RadSec (RFC 6614): RADIUS over TLS on TCP (port 2083), with mutual certificate
//! authentication. Only the transport lives here: the TLS handshake (rustls), who the client
//! is (its certificate and its address), the socket reads that the protocol crate's
//! [`Framer`] cuts into packets (RFC 6613), and writing replies back on the same connection.
//! Every packet then takes the UDP path from [`Shared::on_tls_packet`] on: the same
//! admission checks, modes, audit.
//!
//! Trust model: the handshake refuses any certificate that does not chain to `ca_file`
//! (rustls' WebPKI verifier, CRLs where configured). A certificate that chains is only the
//! start: it must also match a `[[radius.clients]]` entry's `certificate_name` and/or
//! `certificate_sha256`, and the connection must come from that entry's `address`, or the
//! connection is closed and counted like an unknown UDP client.
//!
//! Before the handshake ends nobody is authenticated, so what an unverified peer may hold is
//! bounded apart from what verified clients hold (see [`Connections`]): a source address in
//! no RadSec client's `address` is closed before any TLS byte; a handshake has
//! `handshake_timeout`; handshakes are counted per source address and in total, and a full
//! total makes room by closing the oldest handshake; `max_connections` counts verified
//! connections only. At SIGHUP every open connection is checked against the new
//! configuration ([`Connections::recheck`]) and closed when its certificate no longer passes
//! or its client entry is gone or changed.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use mfa_config::{Config, RadiusClient};
use mfa_radius_proto::{Framer, MAX_PACKET};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use socket2::{Domain, Protocol, Socket, Type};
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::runtime::{Nas, Runtime, canonical_ip};
use crate::server::{ReplyTo, Shared};
use crate::stats::DropReason;

/// A peer that does not read its replies for this long is cut off.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Replies waiting to be written, per connection; request tasks wait past that (each one
/// counts against the daemon's in-flight limit).
const REPLY_QUEUE: usize = 64;

/// Connection numbers, for duplicate detection per connection and for the log. 0 is UDP.
static NEXT_CONN: AtomicU64 = AtomicU64::new(1);
/// Every accepted TCP connection's place in [`Connections`]; in the order they came.
static NEXT_SLOT: AtomicU64 = AtomicU64::new(1);

/// How a RadSec client's certificate is recognised (`certificate_name`,
/// `certificate_sha256`); every one configured must match.
#[derive(PartialEq, Eq)]
pub(crate) struct CertId {
    name: Option<String>,
    /// `Some(None)`: configured but not 64 hex digits (validation refuses that; here it
    /// matches nothing, failing closed).
    sha256: Option<Option<[u8; 32]>>,
}

impl CertId {
    /// `None` for a UDP client.
    pub(crate) fn of(c: &RadiusClient) -> Option<Self> {
        c.is_radsec().then(|| CertId {
            name: c.certificate_name.clone(),
            sha256: c
                .certificate_sha256
                .as_ref()
                .map(|_| c.certificate_sha256_bytes()),
        })
    }

    fn matches(&self, leaf: &CertificateDer<'_>, fingerprint: &[u8; 32]) -> bool {
        let name_ok = match &self.name {
            None => true,
            // The subjectAltName, checked as a TLS client checks a server's name (DNS name
            // or IP address; RFC 6125). The CN is not used.
            Some(n) => match (
                ServerName::try_from(n.as_str()),
                webpki::EndEntityCert::try_from(leaf),
            ) {
                (Ok(name), Ok(cert)) => cert.verify_is_valid_for_subject_name(&name).is_ok(),
                _ => false,
            },
        };
        let fingerprint_ok = match &self.sha256 {
            None => true,
            Some(None) => false,
            Some(Some(want)) => bool::from(want.ct_eq(fingerprint)),
        };
        (self.name.is_some() || self.sha256.is_some()) && name_ok && fingerprint_ok
    }
}

/// `AA:BB:...`, as `openssl x509 -fingerprint -sha256` prints it.
fn colon_hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The RadSec client a verified certificate from `ip` belongs to: among the entries whose
/// certificate identity it matches, the most specific address containing `ip`. The error
/// says why none does, for the log.
pub(crate) fn identify(
    clients: &[Arc<Nas>],
    ip: IpAddr,
    leaf: &CertificateDer<'_>,
) -> Result<Arc<Nas>, String> {
    let fingerprint: [u8; 32] = Sha256::digest(leaf.as_ref()).into();
    let ip = canonical_ip(ip);
    let by_cert: Vec<&Arc<Nas>> = clients
        .iter()
        .filter(|c| {
            c.cert
                .as_ref()
                .is_some_and(|id| id.matches(leaf, &fingerprint))
        })
        .collect();
    if by_cert.is_empty() {
        return Err(format!(
            "its certificate (SHA-256 {}) matches no RadSec client's certificate_name or certificate_sha256",
            colon_hex(&fingerprint)
        ));
    }
    by_cert
        .iter()
        .filter(|c| c.net.contains(&ip))
        .max_by_key(|c| c.net.prefix_len())
        .map(|c| Arc::clone(c))
        .ok_or_else(|| {
            let names: Vec<String> = by_cert.iter().map(|c| format!("{:?}", c.name)).collect();
            format!(
                "its certificate is client {}'s, but {ip} is not in that client's address",
                names.join(", ")
            )
        })
}

/// Whether two client entries (before and after a reload) are the same client: a
/// connection matched to the old one may go on as the new one.
fn same_client(a: &Nas, b: &Nas) -> bool {
    a.name == b.name
        && a.net == b.net
        && a.cert == b.cert
        && a.settings == b.settings
        && bool::from(a.secret.as_slice().ct_eq(b.secret.as_slice()))
}

/// The TLS side of one configuration generation.
pub struct Tls {
    acceptor: TlsAcceptor,
    /// The acceptor's own client certificate verifier (CA, CRLs), kept to check the
    /// certificates of open connections again when a reload brings a new one.
    verifier: Arc<dyn ClientCertVerifier>,
    idle: Duration,
    handshake: Duration,
    limits: Limits,
}

/// `[radius.radsec]`'s connection budgets.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_connections: usize,
    max_handshakes: usize,
    max_handshakes_per_address: usize,
}

impl Tls {
    /// A peer's certificate chain (leaf first), checked as this generation's handshake
    /// checks it, now. (The trait sits in rustls' `danger` module for those who implement
    /// it; this only calls the WebPKI verifier the acceptor itself uses.)
    fn verify(&self, chain: &[CertificateDer<'static>]) -> Result<(), String> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err("no client certificate".into());
        };
        self.verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .map(|_| ())
            .map_err(|e| format!("its certificate no longer passes: {e}"))
    }
}

impl Tls {
    /// Builds the TLS configuration from `[radius.radsec]`; `Ok(None)` when RadSec is off.
    /// Errors name the file and key.
    pub(crate) fn load(config: &Config) -> Result<Option<Self>, String> {
        let Some(t) = &config.radius.radsec else {
            return Ok(None);
        };
        let files = match mfa_tls_files::radsec_files(config) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(None),
            Err(problems) => {
                return Err(problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"));
            }
        };
        let src = config.source.display();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for (i, ca) in files.ca.into_iter().enumerate() {
            roots.add(ca).map_err(|e| {
                format!(
                    "{src}: radius.radsec.ca_file: certificate {} is not a usable CA certificate: {e}",
                    i + 1
                )
            })?;
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .with_crls(files.crls)
                .build()
                .map_err(|e| format!("{src}: radius.radsec.ca_file / crl_file: {e}"))?;
        let kept = verifier.clone();
        let server = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("{src}: radius.radsec: {e}"))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(files.certificate, files.key)
            .map_err(|e| {
                format!(
                    "{src}: radius.radsec.certificate / radius.radsec.key: {e} (does the key belong to the certificate?)"
                )
            })?;
        Ok(Some(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            verifier: kept,
            idle: t.idle_timeout.0,
            handshake: t.handshake_timeout.0,
            limits: Limits {
                max_connections: t.max_connections,
                max_handshakes: t.max_handshakes,
                max_handshakes_per_address: t.max_handshakes_per_address,
            },
        }))
    }
}

/// Binds one RadSec listener; IPv6 ones are v6-only, as the UDP sockets are.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
}

/// Why a connection is to be closed, and the wake-up for its task.
#[derive(Default)]
struct Closer {
    why: OnceLock<String>,
    wake: Notify,
}

impl Closer {
    fn close(&self, why: String) {
        let _ = self.why.set(why);
        // Kept as a permit when the task is not waiting yet.
        self.wake.notify_one();
    }

    async fn closed(&self) -> String {
        self.wake.notified().await;
        self.why.get().cloned().unwrap_or_default()
    }
}

/// The key handshakes are counted under: the address, or for IPv6 its /64 (one host's
/// usual share, of which it may use any address).
fn source_key(ip: IpAddr) -> IpAddr {
    match canonical_ip(ip) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !u128::from(u64::MAX);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// A connection that got in: what it was admitted on, checked again at every reload.
struct Verified {
    from: IpAddr,
    chain: Vec<CertificateDer<'static>>,
    nas: Arc<Nas>,
    closer: Arc<Closer>,
}

#[derive(Default)]
struct Table {
    /// Connections in their TLS handshake, oldest first, and where from.
    handshaking: BTreeMap<u64, (IpAddr, Arc<Closer>)>,
    /// Handshakes per [`source_key`].
    per_source: HashMap<IpAddr, usize>,
    verified: HashMap<u64, Verified>,
}

impl Table {
    fn end_handshake(&mut self, id: u64) -> Option<Arc<Closer>> {
        let (src, closer) = self.handshaking.remove(&id)?;
        if let Some(n) = self.per_source.get_mut(&src) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_source.remove(&src);
            }
        }
        Some(closer)
    }
}

/// Open RadSec connections across every listener, in two budgets: those still in their
/// handshake (unauthenticated: counted per source address and in total, the oldest giving
/// way to a newcomer) and verified ones (`max_connections`). A flood of half-open sockets
/// can only take handshake places, never a verified gateway's, and never for longer than
/// `handshake_timeout`.
#[derive(Default)]
pub struct Connections {
    table: Mutex<Table>,
}

/// A connection's place in [`Connections`], given back on every path out.
struct Slot {
    conns: Arc<Connections>,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.conns.lock();
        t.end_handshake(self.id);
        t.verified.remove(&self.id);
    }
}

/// Why a connection was not let in: the counter and the log text.
type ConnectionRefusal = (DropReason, String);

impl Connections {
    /// The table is only changed by whole operations under the lock, so it stays
    /// consistent even if a holder panicked.
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new connection from `ip` starts its handshake, or is refused.
    fn begin(
        self: &Arc<Self>,
        ip: IpAddr,
        limits: Limits,
    ) -> Result<(Slot, Arc<Closer>), ConnectionRefusal> {
        let mut t = self.lock();
        if t.verified.len() >= limits.max_connections {
            return Err((
                DropReason::Overloaded,
                "too many RadSec connections (radius.radsec.max_connections)".into(),
            ));
        }
        let src = source_key(ip);
        if t.per_source.get(&src).copied().unwrap_or(0) >= limits.max_handshakes_per_address {
            return Err((
                DropReason::Overloaded,
                format!(
                    "too many RadSec connections from {src} still in their TLS handshake (radius.radsec.max_handshakes_per_address)"
                ),
            ));
        }
        if t.handshaking.len() >= limits.max_handshakes
            && let Some((&oldest, _)) = t.handshaking.first_key_value()
            && let Some(closer) = t.end_handshake(oldest)
        {
            closer
                .close("closed to make room for a newer one (radius.radsec.max_handshakes)".into());
        }
        let id = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
        let closer = Arc::new(Closer::default());
        t.handshaking.insert(id, (src, closer.clone()));
        *t.per_source.entry(src).or_insert(0) += 1;
        let slot = Slot {
            conns: self.clone(),
            id,
        };
        Ok((slot, closer))
    }

    /// A finished handshake: the client it belongs to under the configuration in force now
    /// (which a reload may have changed since the handshake began), moved to the verified
    /// budget; or why not.
    fn admit(
        &self,
        shared: &Shared,
        slot: &Slot,
        accepted_under: &Arc<Tls>,
        from: IpAddr,
        chain: Vec<CertificateDer<'static>>,
    ) -> Result<Arc<Nas>, ConnectionRefusal> {
        // Under the lock, so that a reload's recheck sees this connection or this sees the
        // reload's configuration.
        let mut t = self.lock();
        let Some(closer) = t.end_handshake(slot.id) else {
            return Err((
                DropReason::Overloaded,
                "closed to make room for a newer handshake (radius.radsec.max_handshakes)".into(),
            ));
        };
        let rt = shared.runtime();
        let tls = match &rt.radsec {
            Some(tls) if Arc::ptr_eq(tls, accepted_under) => tls.clone(),
            Some(tls) => {
                tls.verify(&chain)
                    .map_err(|e| (DropReason::TlsHandshake, e))?;
                tls.clone()
            }
            None => {
                return Err((
                    DropReason::UnknownClient,
                    "the configuration in force has no [radius.radsec]".into(),
                ));
            }
        };
        let nas = identify_chain(&rt, from, &chain).map_err(|e| (DropReason::UnknownClient, e))?;
        if t.verified.len() >= tls.limits.max_connections {
            return Err((
                DropReason::Overloaded,
                "too many RadSec connections (radius.radsec.max_connections)".into(),
            ));
        }
        t.verified.insert(
            slot.id,
            Verified {
                from,
                chain,
                nas: nas.clone(),
                closer,
            },
        );
        Ok(nas)
    }

    /// After a reload: every verified connection is checked again against the configuration
    /// now in force, and closed when its certificate no longer passes (a new CA or CRL),
    /// its client entry is gone or no longer matches it, or that entry changed. Returns how
    /// many were closed.
    pub fn recheck(&self, shared: &Shared) -> usize {
        let t = self.lock();
        let rt = shared.runtime();
        let mut closed = 0;
        for v in t.verified.values() {
            let why = match &rt.radsec {
                None => Some("the configuration has no [radius.radsec] any more".to_string()),
                Some(tls) => match tls
                    .verify(&v.chain)
                    .and_then(|()| identify_chain(&rt, v.from, &v.chain))
                {
                    Err(why) => Some(why),
                    Ok(nas) if !same_client(&nas, &v.nas) => {
                        Some(format!("client {:?}'s entry changed", v.nas.name))
                    }
                    Ok(_) => None,
                },
            };
            if let Some(why) = why {
                v.closer.close(format!(
                    "the reloaded configuration no longer admits it: {why}"
                ));
                closed += 1;
            }
        }
        closed
    }
}

/// [`identify`] on a chain's leaf.
fn identify_chain(
    rt: &Runtime,
    from: IpAddr,
    chain: &[CertificateDer<'static>],
) -> Result<Arc<Nas>, String> {
    let leaf = chain.first().ok_or("no client certificate")?;
    identify(&rt.clients, from, leaf)
}

/// Counts a connection refused before any request was read, and logs the first of each
/// kind per minute (as `Shared::dropped` does for packets).
fn refused(shared: &Shared, why: DropReason, from: SocketAddr, detail: &dyn std::fmt::Display) {
    if shared.stats.count_drop(why) {
        shared.warn(&format!(
            "refused a RadSec connection from {from}: {detail} ({} {} so far; further ones are counted, not logged, for a minute)",
            shared.stats.dropped(why),
            why.name()
        ));
    }
}

/// Accepts connections on `listener` until aborted. Each new connection uses the
/// configuration in force when it arrives, so a reload's certificates and clients apply to
/// new connections (and [`Connections::recheck`] to open ones).
pub async fn serve(shared: Arc<Shared>, listener: TcpListener, conns: Arc<Connections>) {
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors, or an aborted connection: keep serving.
                shared.warn(&format!("RadSec accept error: {e}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let rt = shared.runtime();
        let Some(tls) = rt.radsec.clone() else {
            refused(
                &shared,
                DropReason::UnknownClient,
                from,
                &"the configuration reloaded since start has no [radius.radsec]; restart to close this listener",
            );
            continue;
        };
        let ip = canonical_ip(from.ip());
        // No certificate could let this address in: not one TLS byte for it.
        if !rt
            .clients
            .iter()
            .any(|c| c.cert.is_some() && c.net.contains(&ip))
        {
            refused(
                &shared,
                DropReason::UnknownClient,
                from,
                &format_args!("{ip} is in no RadSec client's address"),
            );
            continue;
        }
        drop(rt);
        let (slot, closer) = match conns.begin(ip, tls.limits) {
            Ok(x) => x,
            Err((why, detail)) => {
                refused(&shared, why, from, &detail);
                continue;
            }
        };
        tokio::spawn(connection(shared.clone(), tls, stream, from, slot, closer));
    }
}

async fn connection(
    shared: Arc<Shared>,
    tls: Arc<Tls>,
    stream: TcpStream,
    from: SocketAddr,
    slot: Slot,
    closer: Arc<Closer>,
) {
    let _ = stream.set_nodelay(true);
    let limit = tls.handshake.min(tls.idle);
    let handshake = tokio::time::timeout(limit, tls.acceptor.accept(stream));
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return refused(
                    &shared,
                    DropReason::TlsHandshake,
                    from,
                    &format_args!("TLS handshake refused: {e}"),
                );
            }
            Err(_) => {
                return refused(
                    &shared,
                    DropReason::TlsHandshake,
                    from,
                    &format_args!("TLS handshake not finished within {}s", limit.as_secs()),
                );
            }
        },
        why = closer.closed() => {
            return refused(
                &shared,
                DropReason::Overloaded,
                from,
                &format_args!("TLS handshake not finished: {why}"),
            );
        }
    };
    // The verifier requires a client certificate; its absence is refused all the same.
    let chain: Vec<CertificateDer<'static>> = stream
        .get_ref()
        .1
        .peer_certificates()
        .map(<[CertificateDer<'static>]>::to_vec)
        .unwrap_or_default();
    if chain.is_empty() {
        return refused(
            &shared,
            DropReason::UnknownClient,
            from,
            &"no client certificate",
        );
    }
    let conns = slot.conns.clone();
    let nas = match conns.admit(&shared, &slot, &tls, from.ip(), chain) {
        Ok(n) => n,
        Err((why, detail)) => return refused(&shared, why, from, &detail),
    };
    let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    shared.log.line(&format!(
        "RadSec connection {conn} from {from}: client {:?}",
        nas.name
    ));
    let why = pump(&shared, &nas, conn, from, stream, tls.idle, &closer).await;
    shared.log.line(&format!(
        "RadSec connection {conn} from {from} (client {:?}) closed: {why}",
        nas.name
    ));
    drop(slot);
}

/// Reads requests off the connection and writes replies back until either side ends it.
/// Returns why it ended.
async fn pump<S>(
    shared: &Arc<Shared>,
    nas: &Arc<Nas>,
    conn: u64,
    from: SocketAddr,
    stream: S,
    idle: Duration,
    closer: &Closer,
) -> String
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Arc<[u8]>>(REPLY_QUEUE);
    let mut framer = Framer::default();
    let mut buf = vec![0u8; MAX_PACKET];
    // Only a complete request restarts the clock, so trickling bytes keeps nothing open.
    let mut deadline = Instant::now() + idle;
    let why = 'conn: loop {
        tokio::select! {
            biased;
            why = closer.closed() => break 'conn why,
            Some(reply) = rx.recv() => {
                let write = async {
                    wr.write_all(&reply).await?;
                    wr.flush().await
                };
                match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => break 'conn format!("write error: {e}"),
                    Err(_) => break 'conn "the client does not read its replies".to_string(),
                }
            }
            read = tokio::time::timeout_at(deadline, rd.read(&mut buf)) => {
                let n = match read {
                    Err(_) => break 'conn format!("no request for {}s", idle.as_secs()),
                    Ok(Ok(0)) => break 'conn "closed by the client".to_string(),
                    Ok(Err(e)) => break 'conn format!("read error: {e}"),
                    Ok(Ok(n)) => n,
                };
                framer.push(buf.get(..n).unwrap_or_default());
                loop {
                    match framer.next_packet() {
                        Ok(Some(packet)) => {
                            deadline = Instant::now() + idle;
                            shared.on_tls_packet(nas, conn, from, &packet, ReplyTo::Tls(tx.clone()));
                        }
                        Ok(None) => break,
                        Err(e) => {
                            let why = format!("{e}; closing the connection");
                            shared.dropped(DropReason::Malformed, from, &why);
                            break 'conn why;
                        }
                    }
                }
            }
        }
    };
    // close_notify, best effort.
    let _ = tokio::time::timeout(Duration::from_secs(1), wr.shutdown()).await;
    why
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn limits(per_address: usize, total: usize) -> Limits {
        Limits {
            max_connections: 1,
            max_handshakes: total,
            max_handshakes_per_address: per_address,
        }
    }

    #[test]
    fn handshakes_are_counted_per_address_and_the_oldest_gives_way() {
        let conns = Arc::new(Connections::default());
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let l = limits(2, 3);
        let (a1, c1) = conns.begin(ip("192.0.2.1"), l).unwrap();
        let (_a2, _) = conns.begin(ip("192.0.2.1"), l).unwrap();
        let (why, text) = conns.begin(ip("192.0.2.1"), l).err().unwrap();
        assert_eq!(why, DropReason::Overloaded);
        assert!(
            text.contains("from 192.0.2.1 still in their TLS handshake"),
            "{text}"
        );
        // Another address still starts, and past the total the oldest handshake is closed
        // for the newcomer.
        let (_b1, _) = conns.begin(ip("192.0.2.2"), l).unwrap();
        assert!(c1.why.get().is_none());
        let (_b2, _) = conns.begin(ip("192.0.2.2"), l).unwrap();
        assert!(c1.why.get().unwrap().contains("make room"));
        // 192.0.2.1 gave back the place of its evicted handshake.
        assert_eq!(conns.lock().per_source.get(&ip("192.0.2.1")), Some(&1));
        drop(a1);
        assert_eq!(conns.lock().handshaking.len(), 3);
        // IPv6: one /64 is one source; IPv4-mapped is IPv4.
        let v6 = Arc::new(Connections::default());
        let (_x, _) = v6.begin(ip("2001:db8::1"), limits(1, 8)).unwrap();
        assert!(v6.begin(ip("2001:db8::ffff:2"), limits(1, 8)).is_err());
        assert!(v6.begin(ip("2001:db8:0:1::1"), limits(1, 8)).is_ok());
        let (_y, _) = v6.begin(ip("::ffff:192.0.2.9"), limits(1, 8)).unwrap();
        assert!(v6.begin(ip("192.0.2.9"), limits(1, 8)).is_err());
    }

    #[test]
    fn slots_are_given_back_on_drop() {
        let conns = Arc::new(Connections::default());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10 {
            let (slot, _) = conns.begin(ip, limits(1, 1)).unwrap();
            drop(slot);
        }
        let t = conns.lock();
        assert!(t.handshaking.is_empty() && t.per_source.is_empty() && t.verified.is_empty());
    }
}
