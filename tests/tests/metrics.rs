//! mfa-radiusd's Prometheus endpoint (`[radius] metrics_listen`): after real radclient
//! requests (one without Message-Authenticator, one with the wrong secret, one from an
//! unknown address, a retransmission, a challenge left open), a scrape over HTTP shows each
//! counter at the value those requests must give.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mfa_e2e::free_tcp_port;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use mfa_e2e::radius::*;

/// One HTTP/1.1 request to the metrics listener; the status line and the body.
fn http(port: u16, request: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

fn scrape(port: u16) -> String {
    let (status, body) = http(
        port,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test\r\n\r\n",
    );
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    body
}

/// The value of the sample `series` (name and labels exactly as exposed).
fn value(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{body}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_scrape_counts_requests_decisions_drops_latency_store_and_challenges() {
    let mport = free_tcp_port();
    let rig = Rig::start_with(
        "challenge",
        &format!("metrics_listen = \"127.0.0.1:{mport}\""),
    );
    rig.daemon
        .wait_log(&format!("metrics on http://127.0.0.1:{mport}/metrics"), 1);
    let (user, _key) = rig.user();

    // 1. Round one of a challenge from an untrusted address: Access-Challenge, left open.
    let r = rig.send(&attrs(&user, Some(PASSWORD), Some(UNTRUSTED_CSI), true));
    assert!(r.is("Access-Challenge"), "{}", r.output);
    // 2. No Message-Authenticator: dropped.
    let r = radclient(
        &rig.addr(),
        SECRET,
        "auth",
        &attrs(&user, Some(PASSWORD), Some(TRUSTED_CSI), false),
        1,
    );
    assert!(r.code.is_none(), "{}", r.output);
    // 3. The wrong shared secret: dropped as a bad authenticator.
    let r = radclient(
        &rig.addr(),
        "not-the-secret",
        "auth",
        &attrs(&user, Some(PASSWORD), Some(TRUSTED_CSI), true),
        1,
    );
    assert!(r.code.is_none(), "{}", r.output);
    // 4. A trusted login through a relay, then the very same datagram again: one accept,
    //    one duplicate answered from the cache.
    let relay = Relay::new(&rig.addr());
    let (r, request, reply) =
        relay.exchange(&attrs(&user, Some(PASSWORD), Some(TRUSTED_CSI), true));
    assert!(r.is("Access-Accept"), "{}", r.output);
    assert_eq!(relay.resend(&request).as_deref(), Some(&reply[..]));
    // 5. The same datagram from an address that is no client: dropped, not counted as a
    //    client's request.
    let stranger = UdpSocket::bind("127.0.0.2:0").unwrap();
    stranger.send_to(&request, rig.addr()).unwrap();
    rig.daemon.wait_log("not a configured RADIUS client", 1);

    let m = scrape(mport);
    // Requests by client: 1 + 1 + 1 + 2 from test-gw (the stranger is not a client).
    assert_eq!(
        value(&m, r#"mfa_radius_requests_total{client="test-gw"}"#),
        5.0
    );
    assert_eq!(value(&m, "mfa_radius_received_total"), 6.0);
    // Decisions by outcome and reason.
    assert_eq!(
        value(
            &m,
            r#"mfa_radius_decisions_total{outcome="challenge",reason="code_required"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            r#"mfa_radius_decisions_total{outcome="accept",reason="trusted_network"}"#
        ),
        1.0
    );
    // Drops by cause: the same counters the log and SIGUSR1 report.
    for (cause, n) in [
        ("missing_message_authenticator", 1.0),
        ("bad_authenticator", 1.0),
        ("unknown_client", 1.0),
        ("duplicate", 1.0),
        ("overloaded", 0.0),
        ("malformed", 0.0),
    ] {
        assert_eq!(
            value(
                &m,
                &format!("mfa_radius_dropped_total{{cause=\"{cause}\"}}")
            ),
            n,
            "{cause}:\n{m}"
        );
    }
    assert_eq!(value(&m, "mfa_radius_resent_total"), 1.0);
    // Latency: one observation per reply computed (the cached resend is not one).
    assert_eq!(value(&m, "mfa_radius_request_duration_seconds_count"), 2.0);
    assert!(
        m.contains("mfa_radius_request_duration_seconds_bucket{le=\"+Inf\"} 2"),
        "{m}"
    );
    // The store writer: the trusted accept was committed (the challenge writes nothing).
    let batches = value(&m, "mfa_store_batch_size_count");
    assert!(batches >= 1.0, "{m}");
    assert_eq!(value(&m, "mfa_store_batch_size_sum"), 1.0, "{m}");
    assert_eq!(
        value(&m, "mfa_store_commit_duration_seconds_count"),
        batches
    );
    // The open challenge.
    assert_eq!(value(&m, "mfa_radius_pending_challenges"), 1.0);

    // Anything but GET /metrics gets nothing.
    assert_eq!(
        http(mport, "GET / HTTP/1.1\r\n\r\n").0,
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(
        http(mport, "POST /metrics HTTP/1.1\r\n\r\n").0,
        "HTTP/1.1 405 Method Not Allowed"
    );
}

#[test]
fn metrics_are_off_by_default_and_refused_off_loopback() {
    // Off: the start-up line names no metrics listener.
    let rig = Rig::start("code-only");
    assert!(
        !rig.daemon.log().contains("metrics on"),
        "{}",
        rig.daemon.log()
    );
    drop(rig);
    // A non-loopback address is a configuration error naming the key; the daemon does not start.
    let port = free_udp_port();
    let site = Site::with_config(&config_text(
        "code-only",
        &format!("\"127.0.0.1:{port}\""),
        "metrics_listen = \"0.0.0.0:9812\"",
        SECRET,
    ));
    let mut d = spawn_daemon(&site.config, None);
    let exited = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        !d.alive()
    });
    assert!(exited, "the daemon must refuse the configuration");
    let log = d.log();
    assert!(
        log.contains("radius.metrics_listen") && log.contains("loopback"),
        "{log}"
    );
}
