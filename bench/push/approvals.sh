#!/usr/bin/env bash
# Push approval benchmark (issue 20): approvals per second through the real stores, SQLite and
# PostgreSQL (a throw-away cluster made here with initdb and pg_ctl, durable settings: fsync
# on, synchronous_commit on), one process and two processes at once. One approval is the
# four store transactions the product makes for it: the front end's request (Push::start),
# the portal's delivery report (Push::outbox + Push::delivered), the phone's signed decision
# (Push::decide: ECDSA P-256 verified) and the login (Login::verify_push). No push service is
# called; the phone's signing is not timed.
# Then (issue 25) one process with THREADS threads on one store, each its own connection, as a
# server sees many phones at once.
# Usage: bench/push/approvals.sh [USERS_PER_RUN] [THREADS]   (default 2000 8)
# Needs Debian's postgresql package; run as root, the server runs as the postgres user.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-2000}
T=${2:-8}
cargo build --release -p mfa-e2e --bin bench-approvals >/dev/null
B=target/release/bench-approvals
DIR=$(mktemp -d)
chmod 755 "$DIR"
# The cluster in a directory of its own (its user's); the configurations stay in root's, which
# the programs insist on.
PG="$DIR/pg"
mkdir "$PG"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 2; }
AS=()
if [ "$(id -u)" = 0 ]; then AS=(runuser -u postgres --); chown postgres: "$PG"; fi
stop_pg() { "${AS[@]}" "$PGBIN/pg_ctl" -D "$PG/data" -m immediate -w stop >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap stop_pg EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${AS[@]}" "$PGBIN/initdb" -D "$PG/data" -U mfa -A trust -E UTF8 --locale=C >/dev/null
"${AS[@]}" "$PGBIN/pg_ctl" -D "$PG/data" -l "$PG/log" -w \
  -o "-p $PORT -k $PG -c listen_addresses=127.0.0.1" start >/dev/null
"$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U mfa -d postgres -c "CREATE DATABASE bench"

for engine in sqlite postgres; do
  if [ $engine = sqlite ]; then
    STORE="path = \"$DIR/mfa.db\""
  else
    STORE="url = \"postgres://mfa@127.0.0.1:$PORT/bench\"
sslmode = \"disable\""
  fi
  cat > "$DIR/$engine.toml" <<CFG
[store]
$STORE
key_file = "$DIR/$engine.key"
[policy]
trusted_networks = ["10.0.0.0/8"]
[audit]
syslog = false
[push]
enabled = true
subscriber = "mailto:bench@example.com"
CFG
  C="$DIR/$engine.toml"
  $B "$C" setup 0 $((4 * N))
  echo "$engine, 1 process:"
  $B "$C" run 0 "$N"
  echo "$engine, 2 processes:"
  $B "$C" run-shared "$N" "$N" & p1=$!
  $B "$C" run-shared $((2 * N)) "$N" & p2=$!
  wait $p1 $p2
  echo "$engine, 1 process, $T threads:"
  $B "$C" run $((3 * N)) "$N" "$T"
done
