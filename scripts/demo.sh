#!/usr/bin/env bash
# The demo on the embedded default: SQLite store in ./demo, the example config from the repo,
# no root needed. Enrols the user "demo" (QR code in the terminal), then runs the RADIUS
# authenticator on 127.0.0.1:18120 in the foreground and prints the radclient line to try it.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=examples/mfa.toml

cargo build --release --bins
BIN=target/release
# The example holds an inline RADIUS secret: every program refuses such a config when others
# can read it (docs/CONFIG.md, "Files and permissions"). Git only tracks the x bit, so this
# changes nothing in the checkout.
chmod go-rwx "$CONFIG"

"$BIN/mfactl" --config "$CONFIG" config check
if ! "$BIN/mfactl" --config "$CONFIG" report --format csv 2>/dev/null | grep -q '^demo,true,'; then
  "$BIN/mfactl" --config "$CONFIG" enroll demo --no-confirm
fi
echo
echo "The policy from the command line (untrusted address, no code): "
"$BIN/mfactl" --config "$CONFIG" auth demo --ip 192.0.2.50 || true
echo
echo "Starting mfa-radiusd on 127.0.0.1:18120 (code-only mode). In another terminal, with the"
echo "current code from your app (or: oathtool --totp -b <the key above>):"
echo
echo "  echo 'User-Name = demo, User-Password = 123456, Message-Authenticator = 0x00' | radclient -x 127.0.0.1:18120 auth demo-secret-change-me"
echo
echo "Stop with Ctrl-C. The roll-out report: $BIN/mfactl --config $CONFIG report"
exec "$BIN/mfa-radiusd" --config "$CONFIG"
