#!/usr/bin/env bash
# Benchmark (not a test) of the administrator's console (issue 22) with USERS users: the time
# of a search and of each page as the browser gets it (HTTP on loopback, curl's time_total),
# on SQLite and on PostgreSQL (a throw-away cluster made here with initdb and pg_ctl, run as
# the unprivileged postgres user in a temp dir; durable settings, fsync on).
# Usage: bench/admin/run.sh [USERS] [REPEAT]   (default 1000000, 20)
# Needs Debian's postgresql package, oathtool, curl; run as root (the console's
# administrator is root, a member of the system group root; the password step goes through
# a private PAM service with pam_permit, so no account or password is made).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000000}
R=${2:-20}
cargo build --release -p mfa-portal -p mfactl >/dev/null
cargo build --release -p mfa-e2e --bin bench-store >/dev/null
BIN=$PWD/target/release
DIR=$(mktemp -d)
PGDIR=$(mktemp -d)
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 2; }
AS=()
if [ "$(id -u)" = 0 ]; then AS=(runuser -u postgres --); chown postgres: "$PGDIR"; chmod 755 "$PGDIR"; fi
PORTAL_PID=
cleanup() {
  [ -n "$PORTAL_PID" ] && kill "$PORTAL_PID" 2>/dev/null || true
  "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/pg" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$DIR" "$PGDIR"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PGPORT=$(free_port)
"${AS[@]}" "$PGBIN/initdb" -D "$PGDIR/pg" -U mfa -A trust -E UTF8 --locale=C >/dev/null
"${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/pg" -l "$PGDIR/pg.log" -w \
  -o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1" start >/dev/null
"$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PGPORT" -U mfa -d postgres -c "CREATE DATABASE bench"

mkdir -p "$DIR/pam.d"
printf 'auth required pam_permit.so\naccount required pam_permit.so\n' > "$DIR/pam.d/mfa-bench"
KEY=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP

# curl's seconds for URL, R times: "median p95 max" in milliseconds.
timed() {
  local url=$1 i
  for i in $(seq "$R"); do
    curl -s -o /dev/null -b "$DIR/jar" -w '%{http_code} %{time_total}\n' "$url"
  done | python3 -c '
import sys
rows = [l.split() for l in sys.stdin if l.strip()]
bad = [r[0] for r in rows if r[0] != "200"]
if bad: sys.exit("status " + ",".join(sorted(set(bad))))
t = sorted(float(r[1]) * 1000 for r in rows)
p95 = t[min(len(t) - 1, int(round(0.95 * (len(t) - 1))))]
print(f"{t[len(t)//2]:.1f} {p95:.1f} {t[-1]:.1f}")'
}

for engine in sqlite postgres; do
  if [ $engine = sqlite ]; then
    STORE="path = \"$DIR/mfa.db\""
  else
    STORE="url = \"postgres://mfa@127.0.0.1:$PGPORT/bench\"
sslmode = \"disable\""
  fi
  PORT=$(free_port)
  C="$DIR/$engine.toml"
  cat > "$C" <<CFG
[store]
$STORE
key_file = "$DIR/$engine.key"
[audit]
syslog = false
[portal]
listen = "127.0.0.1:$PORT"
public_url = "http://127.0.0.1:$PORT"
pam_service = "mfa-bench"
[admin]
groups = { admin = ["root"] }
CFG
  "$BIN/mfactl" --config "$C" init >/dev/null
  t0=$(date +%s.%N)
  "$BIN/bench-store" "$C" setup 0 "$N"
  t1=$(date +%s.%N)
  "$BIN/mfactl" --config "$C" enroll root --secret "$KEY" --no-confirm >/dev/null
  "$BIN/mfa-portal" --config "$C" --pam-confdir "$DIR/pam.d" 2>"$DIR/portal.log" &
  PORTAL_PID=$!
  for _ in $(seq 100); do grep -qs "listening on" "$DIR/portal.log" && break; sleep 0.1; done
  U="http://127.0.0.1:$PORT/admin"
  rm -f "$DIR/jar"
  CSRF=$(curl -s -c "$DIR/jar" -b "$DIR/jar" "$U" | grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//')
  ST=$(curl -s -o /dev/null -w '%{http_code}' -c "$DIR/jar" -b "$DIR/jar" \
    --data-urlencode action=signin --data-urlencode user=root --data-urlencode password=x \
    --data-urlencode "code=$(oathtool --totp -b "$KEY")" --data-urlencode "csrf=$CSRF" "$U")
  [ "$ST" = 303 ] || { echo "sign-in: $ST" >&2; cat "$DIR/portal.log" >&2; exit 1; }
  echo "== $engine: $N users enrolled in $(python3 -c "print(round($t1 - $t0, 1))") s (bench-store setup)"
  # The roll-out's counts read every record once and are kept for a minute: the first
  # load counts, the later ones do not.
  first=$(curl -s -o /dev/null -b "$DIR/jar" -w '%{time_total}' "$U/rollout")
  echo "rollout page, first load (counting $N records): $(python3 -c "print(round($first * 1000, 1))") ms"
  printf '%-52s %9s %9s %9s\n' "page ($R loads each)" "p50 ms" "p95 ms" "max ms"
  for p in \
    "users?q=" \
    "users?q=bench5" \
    "users?q=bench123456" \
    "users?q=bench7777777" \
    "users?q=bench&after=bench899999" \
    "user?name=bench500000" \
    "rollout" \
    "rollout?q=bench42" \
    "rollout?kind=enrolled" \
    "rollout?kind=locked" \
    "log?user=bench500000"; do
    printf '%-52s %9s %9s %9s\n' "/admin/$p" $(timed "$U/$p")
  done
  t=$(curl -s -o "$DIR/all.csv" -b "$DIR/jar" -w '%{time_total}' "$U/rollout.csv")
  echo "rollout.csv, all $(($(wc -l < "$DIR/all.csv") - 1)) rows: $(python3 -c "print(round($t, 2))") s, $(du -h "$DIR/all.csv" | cut -f1)"
  kill "$PORTAL_PID"; wait "$PORTAL_PID" 2>/dev/null || true; PORTAL_PID=
done
