#!/usr/bin/env bash
# Store benchmark: policy decisions per second through the real stores, in one run: SQLite
# (one process, two processes at once: the PAM module and the daemon share the database this
# way) and PostgreSQL (a throw-away cluster made here with initdb and pg_ctl, durable
# settings: fsync on, synchronous_commit on), one process and two processes (two servers on
# one database); then the daemon's path (one transaction per batch) on both engines.
# Usage: bench/store/run.sh [USERS_PER_RUN] [BATCH]   (default 6000, 64)
# Needs Debian's postgresql package; run as root, the server runs as the postgres user.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-6000}
BATCH=${2:-64}
cargo build --release -p mfa-e2e --bin bench-store >/dev/null
B=target/release/bench-store
DIR=$(mktemp -d)
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 2; }
AS=()
if [ "$(id -u)" = 0 ]; then AS=(runuser -u postgres --); chown postgres: "$DIR"; chmod 755 "$DIR"; fi
stop_pg() { "${AS[@]}" "$PGBIN/pg_ctl" -D "$DIR/pg" -m immediate -w stop >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap stop_pg EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${AS[@]}" "$PGBIN/initdb" -D "$DIR/pg" -U mfa -A trust -E UTF8 --locale=C >/dev/null
"${AS[@]}" "$PGBIN/pg_ctl" -D "$DIR/pg" -l "$DIR/pg.log" -w \
  -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1" start >/dev/null
"$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U mfa -d postgres -c "CREATE DATABASE bench"

for engine in sqlite postgres; do
  if [ $engine = sqlite ]; then
    STORE='path = "mfa.db"'
  else
    STORE="url = \"postgres://mfa@127.0.0.1:$PORT/bench\"
sslmode = \"disable\""
  fi
  cat > "$DIR/$engine.toml" <<CFG
[store]
$STORE
[policy]
trusted_networks = ["10.0.0.0/8"]
[audit]
syslog = false
CFG
  C="$DIR/$engine.toml"
  $B "$C" setup 0 $((5 * N))
  echo "$engine, 1 process:"
  $B "$C" run 0 "$N"
  echo "$engine, 2 processes:"
  $B "$C" run "$N" "$N" & p1=$!
  $B "$C" run $((2 * N)) "$N" & p2=$!
  wait $p1 $p2
  echo "$engine, the daemon's path (batches of $BATCH), 1 process:"
  $B "$C" batch $((3 * N)) "$N" "$BATCH"
  echo "$engine, the daemon's path (batches of $BATCH), 2 processes:"
  $B "$C" batch $((4 * N)) $((N / 2)) "$BATCH" & p1=$!
  $B "$C" batch $((4 * N + N / 2)) $((N / 2)) "$BATCH" & p2=$!
  wait $p1 $p2
done
