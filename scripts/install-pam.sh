#!/usr/bin/env bash
# Builds pam_mfa in release mode and installs it as pam_mfa.so in the directory the system's
# libpam loads modules from (Debian/Ubuntu: /lib/<multiarch>/security, e.g.
# /lib/x86_64-linux-gnu/security; Fedora/RHEL/SUSE: /usr/lib64/security).
#
#   sudo scripts/install-pam.sh            # build and install
#   scripts/install-pam.sh --print-dir     # only say where it would go
#   PAM_MODULE_DIR=/some/dir DESTDIR=/tmp/pkgroot scripts/install-pam.sh   # packaging
#
# It installs the module only: pam.d and sshd_config are left to the administrator (see
# docs/PAM.md and examples/pam.d, examples/sshd_config.d), since a wrong stack locks people out.
set -euo pipefail
cd "$(dirname "$0")/.."

module_dir() {
  if [ -n "${PAM_MODULE_DIR:-}" ]; then echo "$PAM_MODULE_DIR"; return; fi
  # Where pam_unix.so lives is where this libpam looks for modules.
  local d
  for d in /lib/*/security /usr/lib/*/security /lib64/security /usr/lib64/security \
           /lib/security /usr/lib/security; do
    if [ -e "$d/pam_unix.so" ]; then echo "$d"; return; fi
  done
  if d=$(pkg-config --variable=libdir pam 2>/dev/null) && [ -n "$d" ]; then
    echo "$d/security"; return
  fi
  if command -v dpkg-architecture >/dev/null; then
    echo "/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/security"; return
  fi
  echo "cannot find the PAM module directory; set PAM_MODULE_DIR" >&2
  return 1
}

dir=$(module_dir)
if [ "${1:-}" = "--print-dir" ]; then echo "$dir"; exit 0; fi
if [ -z "${DESTDIR:-}" ] && [ "$(id -u)" != 0 ]; then
  echo "installing into $dir needs root (or set DESTDIR for a package root)" >&2
  exit 1
fi

cargo build --release --locked -p pam_mfa
target=${CARGO_TARGET_DIR:-target}
src="$target/release/libpam_mfa.so"
dest="${DESTDIR:-}$dir/pam_mfa.so"
install -d -m 0755 "$(dirname "$dest")"
# Install to a temporary name and rename: a running sshd or sudo that loads the module
# during the copy must never see a half-written file.
tmp="$dest.new.$$"
install -m 0644 "$src" "$tmp"
if [ -z "${DESTDIR:-}" ]; then chown root:root "$tmp"; fi
mv -f "$tmp" "$dest"
echo "installed $dest"
echo "next: /etc/mfa/mfa.toml (docs/CONFIG.md), create the store (enrol a user with mfactl),"
echo "      then the pam.d and sshd_config lines from docs/PAM.md; keep a root shell open while testing."
