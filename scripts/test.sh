#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script).
# Run as root on Debian, it first installs the real peers the tests drive: oathtool,
# radclient (freeradius-utils), FreeRADIUS, pamtester, sshd and ssh, expect, PAM headers, zbar (QR decoding),
# radsecproxy and openssl (the RadSec test's proxy and certificates); lintian, systemd
# (systemd-analyze), man-db, dpkg-dev and binutils for the package test (scripts/build-deb.sh,
# dpkg -i, man -w, systemd-analyze verify/security, pam-auth-update); debootstrap for the
# package in a clean Debian 12 chroot (tests/package_chroot.rs: fetches from the Debian mirror
# on its first run, MFA_DEBIAN_MIRROR to choose one, then keeps a tarball under target/).
# PostgreSQL (the tests make throw-away clusters with initdb and pg_ctl as the postgres user).
# chromium and npm (the portal's Playwright tests). python3-pyrad (reply attributes decoded by
# pyrad's dictionary, tests/reply_attributes.rs).
# Samba (an AD DC provisioned on loopback), slapd and ldap-utils for tests/tests/directory.rs.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential pkg-config libpam0g-dev oathtool freeradius-utils freeradius pamtester
      openssh-server openssh-client expect libpam-wrapper libpamtest0-dev
      libpam-google-authenticator sqlite3 procps iproute2 passwd zbar-tools librsvg2-bin
      radsecproxy openssl postgresql chromium
      lintian systemd man-db dpkg-dev binutils libpam-runtime debootstrap
      ocserv openconnect openvpn openvpn-auth-radius python3-pyrad
      samba samba-ad-dc samba-ad-provision winbind ldap-utils slapd)

if [ "$(id -u)" = 0 ]; then
  missing=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # Node.js and npm for the portal's browser tests: Debian's packages where the machine has
  # none (an image may carry another Node.js build, whose npm Debian's npm conflicts with).
  if ! command -v npm >/dev/null; then
    missing+=(nodejs npm)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing test peers: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # The FreeRADIUS package starts a system daemon on :1812; the tests bring their own.
  systemctl disable --now freeradius >/dev/null 2>&1 || service freeradius stop >/dev/null 2>&1 || true
  # Likewise radsecproxy's system service.
  systemctl disable --now radsecproxy >/dev/null 2>&1 || service radsecproxy stop >/dev/null 2>&1 || true
  # Likewise the PostgreSQL package's own cluster on :5432.
  systemctl disable --now postgresql >/dev/null 2>&1 || service postgresql stop >/dev/null 2>&1 || true
  # And ocserv's on :443; tests/tests/gateways.rs runs its own ocserv and OpenVPN in
  # network namespaces of its own.
  systemctl disable --now ocserv.socket ocserv >/dev/null 2>&1 || service ocserv stop >/dev/null 2>&1 || true
  # And Samba's and slapd's on :389 and :636; tests/tests/directory.rs runs its own on
  # 127.x addresses, which a daemon on every address would take.
  for s in samba-ad-dc smbd nmbd winbind slapd; do
    systemctl disable --now "$s" >/dev/null 2>&1 || service "$s" stop >/dev/null 2>&1 || true
  done
else
  echo "Not root: assuming the test peers are installed (${PKGS[*]} nodejs npm)." >&2
fi

# The portal's browser tests: playwright-core from the lock file, driving Debian's chromium
# (/usr/bin/chromium); no browser is downloaded.
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

command -v cargo >/dev/null || { echo "cargo not found: install Rust 1.88 or newer (rustup.rs)" >&2; exit 2; }

cargo fmt --all -- --check
cargo build --workspace --all-targets --locked
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked --no-fail-fast
