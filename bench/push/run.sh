#!/usr/bin/env bash
# Push approval benchmark (issue 20), not a test: the time from a sign-in request written
# into the store (Push::start, as pam_mfa or mfa-radiusd writes it) to its push delivered
# (the portal posted it, the push service took it, and the portal recorded it `sent`), with
# a running mfa-portal and web-push-testing (npm, tests/browser) as the push service on
# loopback, which checks every VAPID token and decrypts every payload; on SQLite (the
# portal woken by a datagram on <store>-push, issue 25) and PostgreSQL (NOTIFY mfa_push; a throw-away cluster made here
# with initdb and pg_ctl, durable settings). Per engine: one request at a time (latency),
# then REQUESTS at once (burst), then every request approved with its phone's signed
# decision (Push::decide): approvals per second through the store.
# Usage: bench/push/run.sh [REQUESTS] [USERS]   (default 200, 20)
# Needs node with tests/browser's packages (npm ci there) and Debian's postgresql; run as
# root (the server runs as the postgres user). PROFILE=debug uses a debug build.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-200}
U=${2:-20}
PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ]; then
  cargo build --release -q --locked -p mfa-portal -p mfactl -p mfa-e2e --bin mfa-portal --bin mfactl --bin bench-push
else
  cargo build -q --locked -p mfa-portal -p mfactl -p mfa-e2e --bin mfa-portal --bin mfactl --bin bench-push
fi
T=$(realpath "${CARGO_TARGET_DIR:-target}/$PROFILE")
[ -d tests/browser/node_modules/web-push-testing ] || { echo "run npm ci in tests/browser first" >&2; exit 2; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 2; }
DIR=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
AS=()
if [ "$(id -u)" = 0 ]; then AS=(runuser -u postgres --); mkdir "$DIR/pg"; chown postgres: "$DIR/pg"; chmod 755 "$DIR"; fi
PORTAL_PID=
cleanup() {
  [ -n "$PORTAL_PID" ] && kill "$PORTAL_PID" 2>/dev/null || true
  exec 3>&- 2>/dev/null || true
  "${AS[@]}" "$PGBIN/pg_ctl" -D "$DIR/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
PGPORT=$(free_port)
"${AS[@]}" "$PGBIN/initdb" -D "$DIR/pg/data" -U mfa -A trust -E UTF8 --locale=C >/dev/null
"${AS[@]}" "$PGBIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/log" -w \
  -o "-p $PGPORT -k $DIR/pg -c listen_addresses=127.0.0.1" start >/dev/null
"$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PGPORT" -U mfa -d postgres -c "CREATE DATABASE bench"

# The push service: on loopback; it ends when fd 3 (its stdin) closes.
WPORT=$(free_port)
mkfifo "$DIR/wpt.in"
node tests/browser/push-service.mjs "$WPORT" <"$DIR/wpt.in" >"$DIR/wpt.log" 2>&1 &
exec 3>"$DIR/wpt.in"
for _ in $(seq 100); do grep -q "Server running" "$DIR/wpt.log" && break; sleep 0.1; done
grep -q "Server running" "$DIR/wpt.log" || { cat "$DIR/wpt.log" >&2; exit 2; }

for engine in sqlite postgres; do
  mkdir -p "$DIR/$engine"
  C="$DIR/$engine/mfa.toml"
  if [ $engine = sqlite ]; then
    STORE='path = "mfa.db"'
  else
    STORE="url = \"postgres://mfa@127.0.0.1:$PGPORT/bench\"
sslmode = \"disable\""
  fi
  PPORT=$(free_port)
  cat >"$C" <<CFG
[store]
$STORE
key_file = "$DIR/$engine/mfa.key"
[audit]
syslog = false
[portal]
listen = "127.0.0.1:$PPORT"
public_url = "http://127.0.0.1:$PPORT"
[push]
enabled = true
subscriber = "mailto:bench@example.com"
vapid_key_file = "$DIR/$engine/vapid.key"
timeout = "10m"
rate = "100/1m"
services = ["http://localhost:$WPORT"]
CFG
  chmod 600 "$C"
  "$T/mfactl" --config "$C" init >/dev/null
  "$T/bench-push" "$C" setup "$U" "http://127.0.0.1:$WPORT" >/dev/null
  "$T/mfa-portal" --config "$C" >"$DIR/$engine/portal.log" 2>&1 &
  PORTAL_PID=$!
  for _ in $(seq 100); do grep -q "listening on" "$DIR/$engine/portal.log" && break; sleep 0.1; done
  sleep 1 # the first heartbeat
  echo "$engine, one request at a time:"
  "$T/bench-push" "$C" latency "$N" "$U"
  echo "$engine, $N requests at once:"
  "$T/bench-push" "$C" burst "$N" "$U"
  echo "$engine, approvals through the store:"
  "$T/bench-push" "$C" approve "$U"
  kill "$PORTAL_PID"; wait "$PORTAL_PID" 2>/dev/null || true; PORTAL_PID=
done
