//! RadSec (RFC 6614): RADIUS over TLS on TCP (port 2083), with mutual certificate
//! authentication. Only the transport lives here: the TLS handshake (rustls), who the client
//! is (its certificate and its address), framing packets off the stream by their Length
//! field (RFC 6613), and writing replies back on the same connection. Every packet then takes
//! the UDP path from [`Shared::on_tls_packet`] on: the same admission checks, modes, audit.
//!
//! Trust model: the handshake refuses any certificate that does not chain to `ca_file`
//! (rustls' WebPKI verifier, CRLs where configured). A certificate that chains is only the
//! start: it must also match a `[[radius.clients]]` entry's `certificate_name` and/or
//! `certificate_sha256`, and the connection must come from that entry's `address`, or the
//! connection is closed and counted like an unknown UDP client.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use mfa_config::{Config, RadiusClient};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, ServerName};
use sha2::{Digest, Sha256};
use socket2::{Domain, Protocol, Socket, Type};
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::server::{Nas, ReplyTo, Shared};
use crate::stats::Drop;

/// The largest RADIUS packet (RFC 2865 §3), and so the most a connection ever buffers
/// beyond one read.
pub const MAX_PACKET: usize = 4096;
/// The RADIUS header: code, identifier, length, authenticator.
const MIN_PACKET: usize = 20;
/// A peer that has not finished the handshake by then (or by `idle_timeout`, if shorter)
/// is cut off: before it, nobody is authenticated.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A peer that does not read its replies for this long is cut off.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Replies waiting to be written, per connection; request tasks wait past that (each one
/// counts against the daemon's in-flight limit).
const REPLY_QUEUE: usize = 64;

/// Connection numbers, for duplicate detection per connection and for the log. 0 is UDP.
static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// How a RadSec client's certificate is recognised (`certificate_name`,
/// `certificate_sha256`); every one configured must match.
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
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
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

/// The TLS side of one configuration generation.
pub struct Tls {
    acceptor: TlsAcceptor,
    idle: Duration,
    max_connections: usize,
}

impl Tls {
    /// Builds the TLS configuration from `[radius.radsec]`; `Ok(None)` when RadSec is off.
    /// Errors name the file and key.
    pub(crate) fn load(config: &Config) -> Result<Option<Self>, String> {
        let Some(t) = &config.radius.radsec else {
            return Ok(None);
        };
        let files = match config.radsec_files() {
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
            idle: t.idle_timeout.0,
            max_connections: t.max_connections,
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

/// Open connections across every listener (handshakes included).
#[derive(Debug, Default)]
pub struct Open(AtomicUsize);

/// One open connection; counted down on every path out.
struct Slot(Arc<Open>);

impl std::ops::Drop for Slot {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts a connection refused before any request was read, and logs the first of each
/// kind per minute (as `Shared::dropped` does for packets).
fn refused(shared: &Shared, why: Drop, from: SocketAddr, detail: &dyn std::fmt::Display) {
    if shared.stats.drop(why) {
        shared.warn(&format!(
            "refused a RadSec connection from {from}: {detail} ({} {} so far; further ones are counted, not logged, for a minute)",
            shared.stats.dropped(why),
            why.name()
        ));
    }
}

/// Accepts connections on `listener` until aborted. Each new connection uses the
/// configuration in force when it arrives, so a reload's certificates and clients apply to
/// new connections.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener, open: Arc<Open>) {
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
        let Some(tls) = shared.runtime().radsec.clone() else {
            refused(
                &shared,
                Drop::UnknownClient,
                from,
                &"the configuration reloaded since start has no [radius.radsec]; restart to close this listener",
            );
            continue;
        };
        if open.0.load(Ordering::Acquire) >= tls.max_connections {
            refused(
                &shared,
                Drop::Overloaded,
                from,
                &"too many RadSec connections (radius.radsec.max_connections)",
            );
            continue;
        }
        open.0.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(open.clone());
        tokio::spawn(connection(shared.clone(), tls, stream, from, slot));
    }
}

async fn connection(
    shared: Arc<Shared>,
    tls: Arc<Tls>,
    stream: TcpStream,
    from: SocketAddr,
    _slot: Slot,
) {
    let _ = stream.set_nodelay(true);
    let limit = HANDSHAKE_TIMEOUT.min(tls.idle);
    let stream = match tokio::time::timeout(limit, tls.acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return refused(
                &shared,
                Drop::TlsHandshake,
                from,
                &format_args!("TLS handshake refused: {e}"),
            );
        }
        Err(_) => {
            return refused(
                &shared,
                Drop::TlsHandshake,
                from,
                &format_args!("TLS handshake not finished within {}s", limit.as_secs()),
            );
        }
    };
    // The verifier requires a client certificate; its absence is refused all the same.
    let leaf = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .cloned();
    let Some(leaf) = leaf else {
        return refused(&shared, Drop::UnknownClient, from, &"no client certificate");
    };
    let nas = match identify(&shared.runtime().clients, from.ip(), &leaf) {
        Ok(n) => n,
        Err(why) => {
            return refused(&shared, Drop::UnknownClient, from, &why);
        }
    };
    let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    shared.log.line(&format!(
        "RadSec connection {conn} from {from}: client {:?}",
        nas.name
    ));
    let why = pump(&shared, &nas, conn, from, stream, tls.idle).await;
    shared.log.line(&format!(
        "RadSec connection {conn} from {from} (client {:?}) closed: {why}",
        nas.name
    ));
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
                            shared.dropped(Drop::Malformed, from, &e);
                            break 'conn e.to_string();
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

/// A stream's bytes cut into RADIUS packets by their Length field (RFC 6613: no other
/// framing). Fed with reads of at most [`MAX_PACKET`] bytes and drained after each,
/// it never holds more than twice that.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
}

/// A Length field no RADIUS packet can have: the stream cannot be resynchronised, so the
/// connection is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError(pub usize);

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RADIUS Length {} outside {MIN_PACKET}..={MAX_PACKET}; closing the connection",
            self.0
        )
    }
}

impl Framer {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete packet, `Ok(None)` until one is complete. A bad Length is an
    /// error as soon as its four header bytes are in, before waiting for the body.
    pub fn next_packet(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let Some(&[hi, lo]) = self.buf.get(2..4) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if !(MIN_PACKET..=MAX_PACKET).contains(&len) {
            return Err(FrameError(len));
        }
        if self.buf.len() < len {
            return Ok(None);
        }
        let rest = self.buf.split_off(len);
        Ok(Some(std::mem::replace(&mut self.buf, rest)))
    }

    /// Bytes held that are not yet a whole packet.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A packet of `len` bytes with identifier `id`.
    fn packet(id: u8, len: usize) -> Vec<u8> {
        let mut p = vec![id; len];
        p[0] = 1;
        p[2..4].copy_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
        p
    }

    #[test]
    fn partial_reads_make_one_packet() {
        let p = packet(7, 100);
        let mut f = Framer::default();
        // One byte at a time, the header split across reads.
        for (i, b) in p.iter().enumerate() {
            assert_eq!(f.next_packet(), Ok(None), "complete after {i} bytes?");
            f.push(std::slice::from_ref(b));
        }
        assert_eq!(f.next_packet(), Ok(Some(p)));
        assert_eq!(f.next_packet(), Ok(None));
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn two_packets_in_one_read_and_a_third_begun() {
        let (a, b, c) = (packet(1, 20), packet(2, 4096), packet(3, 300));
        let mut read = [a.clone(), b.clone()].concat();
        read.extend_from_slice(&c[..5]);
        let mut f = Framer::default();
        f.push(&read);
        assert_eq!(f.next_packet(), Ok(Some(a)));
        assert_eq!(f.next_packet(), Ok(Some(b)));
        assert_eq!(f.next_packet(), Ok(None));
        assert_eq!(f.buffered(), 5);
        f.push(&c[5..]);
        assert_eq!(f.next_packet(), Ok(Some(c)));
    }

    #[test]
    fn impossible_lengths_are_refused_before_the_body() {
        for len in [0usize, 19, 4097, 65_535] {
            let mut f = Framer::default();
            let mut head = vec![1u8, 9];
            head.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
            f.push(&head);
            assert_eq!(f.next_packet(), Err(FrameError(len)), "length {len}");
        }
        // After a good packet too.
        let mut f = Framer::default();
        let mut read = packet(1, 20);
        read.extend_from_slice(&[1, 2, 0xff, 0xff]);
        f.push(&read);
        assert!(f.next_packet().unwrap().is_some());
        assert_eq!(f.next_packet(), Err(FrameError(0xffff)));
    }

    #[test]
    fn buffer_stays_bounded_under_reads_of_the_largest_size() {
        // A stream of packets of every size, delivered in reads of MAX_PACKET bytes as the
        // connection loop does: nothing above 2 * MAX_PACKET is ever held.
        let stream: Vec<u8> = (20..=MAX_PACKET)
            .step_by(97)
            .enumerate()
            .flat_map(|(i, len)| packet(u8::try_from(i % 256).unwrap(), len))
            .collect();
        let mut f = Framer::default();
        let mut out = Vec::new();
        for chunk in stream.chunks(MAX_PACKET) {
            f.push(chunk);
            assert!(f.buffered() < 2 * MAX_PACKET);
            while let Some(p) = f.next_packet().unwrap() {
                out.extend_from_slice(&p);
            }
            assert!(f.buffered() < MAX_PACKET);
        }
        assert_eq!(out, stream);
    }
}
