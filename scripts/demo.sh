#!/usr/bin/env bash
# The demo on the embedded default: SQLite store in ./demo, the example config from the repo,
# no root needed. Builds mfactl and mfa-radiusd, enrols the user "demo" (QR code in the
# terminal), shows the policy's answer, starts the RADIUS authenticator on 127.0.0.1:18120
# (code-only mode) and sends it two requests with radclient (a wrong code, then the current
# one). On a terminal the daemon then keeps running until Ctrl-C; without one (a script, CI)
# the demo stops it and ends. It never waits for input it does not ask for.
#
#   MFA_DEMO_BIN=DIR   use the mfactl and mfa-radiusd already built in DIR (no cargo build)
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=examples/mfa.toml
DEMO=demo

# What the build needs, said before cargo fails on it. `sudo` only where it is the way in.
need=()
if [ -z "${MFA_DEMO_BIN:-}" ]; then
  command -v cargo >/dev/null || { echo "demo: cargo not found: install Rust 1.88 or newer (https://rustup.rs), then run this again." >&2; exit 2; }
  command -v cc >/dev/null || need+=(build-essential)
  command -v pkg-config >/dev/null || need+=(pkg-config)
  [ -e /usr/include/security/pam_appl.h ] || need+=(libpam0g-dev)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then as_root=""; elif command -v sudo >/dev/null; then as_root="sudo "; else as_root="(as root) "; fi
  echo "demo: the build needs ${need[*]}: ${as_root}apt-get install -y ${need[*]}" >&2
  exit 2
fi

if [ -n "${MFA_DEMO_BIN:-}" ]; then
  BIN=$MFA_DEMO_BIN
else
  echo "Building mfactl and mfa-radiusd (the first build takes a few minutes)..."
  cargo build --quiet -p mfactl -p mfa-radiusd
  BIN=target/debug
fi
for b in mfactl mfa-radiusd; do
  [ -x "$BIN/$b" ] || { echo "demo: $BIN/$b is not built" >&2; exit 2; }
done
mfactl() { "$BIN/mfactl" --config "$CONFIG" "$@"; }

# The example holds an inline RADIUS secret: every program refuses such a config when others
# can read it (docs/CONFIG.md, "Files and permissions"). Git only tracks the x bit, so this
# changes nothing in the checkout.
chmod go-rwx "$CONFIG"
listen=$(sed -n 's/^listen = \["\([0-9.]*\):\([0-9]*\)"\].*/\1 \2/p' "$CONFIG" | head -n 1)
read -r HOST PORT <<<"${listen:-127.0.0.1 18120}"
SECRET=$(sed -n 's/^secret = "\([^"]*\)".*/\1/p' "$CONFIG" | head -n 1)

mfactl config check
mkdir -p "$DEMO"
chmod 0700 "$DEMO"
# The demo keeps the user's key in demo/demo.base32 (0600) so it can make codes with
# oathtool below; a real enrolment never writes the key anywhere but the store.
keyfile=$DEMO/demo.base32
if ! mfactl report --format csv 2>/dev/null | grep -q '^demo,true,' || [ ! -s "$keyfile" ]; then
  key=$(head -c 20 /dev/urandom | base32 | tr -d '=\n')
  (umask 077; printf '%s\n' "$key" > "$keyfile")
  echo
  mfactl enroll demo --secret "$key" --no-confirm --replace
fi
key=$(cat "$keyfile")

echo
echo "The policy from the command line, for a login from an untrusted address with no code"
echo "(mfactl auth demo --ip 192.0.2.50 < /dev/null):"
mfactl auth demo --ip 192.0.2.50 </dev/null || true
echo "... and from the office network (127.0.0.1 is in [policy] trusted_networks):"
mfactl auth demo --ip 127.0.0.1 </dev/null || true

echo
echo "Starting mfa-radiusd on $HOST:$PORT (code-only mode); its log lines start with 'mfa-radiusd:'."
log=$(mktemp "${TMPDIR:-/tmp}/mfa-demo.XXXXXX")
"$BIN/mfa-radiusd" --config "$CONFIG" 2>"$log" &
daemon=$!
shown=0
show_log() { # the daemon's log lines not shown yet
  local n
  n=$(wc -l <"$log")
  tail -n +"$((shown + 1))" "$log" | head -n "$((n - shown))"
  shown=$n
}
stop() {
  if kill -0 "$daemon" 2>/dev/null; then
    kill -TERM "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
  fi
  show_log 2>/dev/null || true
  rm -f "$log"
}
trap stop EXIT
for _ in $(seq 1 100); do
  grep -q "listening on" "$log" && break
  kill -0 "$daemon" 2>/dev/null || { echo "demo: mfa-radiusd did not start:" >&2; exit 2; }
  sleep 0.1
done
grep -q "listening on" "$log" || { echo "demo: mfa-radiusd did not start within 10 s" >&2; exit 2; }

ask() { # ask CODE: one Access-Request as a gateway sends it, with a code and the user's address
  printf 'User-Name = "demo"\nUser-Password = "%s"\nCalling-Station-Id = "198.51.100.7"\nMessage-Authenticator = 0x00\n' "$1" \
    | radclient -x -r 1 -t 3 "$HOST:$PORT" auth "$SECRET" 2>&1 | grep -E '^Received|Reply-Message|No reply' | sed 's/^[[:space:]]*/  /' || true
}
if command -v radclient >/dev/null; then
  echo
  echo "A wrong code (radclient, as a VPN gateway would ask):"
  ask 000000
  if command -v oathtool >/dev/null; then
    echo "The current code (oathtool --totp -b \$(cat $keyfile)):"
    ask "$(oathtool --totp -b "$key")"
  else
    echo "The current code: install oathtool to let the demo make it, or type the one your app shows (below)."
  fi
  sleep 0.3 # decision lines reach the log in blocks, at most 100 ms late
else
  echo "radclient is not installed (package freeradius-utils): the demo sends no request."
fi
show_log

echo
echo "To try it yourself, with the code your app shows (or: oathtool --totp -b \$(cat $keyfile)):"
echo
echo "  echo 'User-Name = demo, User-Password = 123456, Message-Authenticator = 0x00' | radclient -x $HOST:$PORT auth $SECRET"
echo
echo "The roll-out report: $BIN/mfactl --config $CONFIG report"
if [ -t 0 ] && [ -t 1 ]; then
  echo "mfa-radiusd keeps running for that (its log follows); press Ctrl-C to stop it and end the demo."
  trap 'echo; exit 0' INT
  while kill -0 "$daemon" 2>/dev/null; do
    show_log
    sleep 0.5
  done
else
  echo "Not on a terminal: the demo stops mfa-radiusd and ends. Run it in a terminal to keep the daemon running."
fi
