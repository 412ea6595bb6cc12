//! systemd's readiness protocol (sd_notify(3)): one datagram such as `READY=1` to the
//! `AF_UNIX` socket named by `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace).
//!
//! Written here rather than taken from a crate: the protocol is one `sendto` on a Unix
//! datagram socket, which `std::os::unix::net::UnixDatagram` does safely (the crates either
//! wrap libsystemd through FFI or are these same twenty lines); this keeps `unsafe` and a C
//! library out of the daemons. Without `$NOTIFY_SOCKET` (not started by systemd) it does
//! nothing. A crate of its own so that both daemons (`mfa-radiusd`, `mfa-portal`) share one
//! copy and the core stays free of it.
#![forbid(unsafe_code)]

use std::os::unix::net::UnixDatagram;

/// Sends `state` (e.g. `"READY=1"`) to systemd's notification socket, if there is one.
/// Errors are returned for the caller to log; they never stop the daemon.
pub fn notify(state: &str) -> std::io::Result<()> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(path) => notify_to(&path, state),
        None => Ok(()),
    }
}

fn notify_to(path: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        sock.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        sock.send_to(state.as_bytes(), path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_one_datagram_to_a_path_or_an_abstract_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        notify_to(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        // The abstract namespace, as systemd names it with a leading '@'.
        let name = format!("mfa-notify-test-{}", std::process::id());
        use std::os::linux::net::SocketAddrExt;
        let abs = UnixDatagram::bind_addr(
            &std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap(),
        )
        .unwrap();
        notify_to(std::ffi::OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        let n = abs.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }
}
