#!/usr/bin/env bash
# RADIUS decisions per second on PostgreSQL without replication and with a synchronous
# standby, in one run, and the failover time (issue 24). Not a test: prints figures for
# docs/BENCHMARKS.md.
#
#   sudo bash bench/radius/replication.sh [USERS] [SECONDS]      (defaults: 100000 8)
#
# One throw-away PostgreSQL cluster (initdb, run as the postgres user, fsync=on), one
# mfa-radiusd in code-only mode, the load generator of bench/radius (src/main.rs), the mix
# (60% accepted codes, 20% wrong codes, 20% trusted network, every reply checked):
#   1. none:         the primary alone (no standby);
#   2. sync on:      a standby made by `pg_basebackup -R`, synchronous_standby_names =
#                    'FIRST 1 (mfa_standby)', synchronous_commit = on (the daemon on the
#                    multi-host URL, target_session_attrs=read-write, as docs/FAILOVER.md);
#   3. remote_apply: the same, synchronous_commit = remote_apply;
#   4. failover:     under the mix, kill -9 of the primary (the postmaster and its children),
#                    `pg_ctl promote` of the standby; a probe (`radius-loadgen until-accept`:
#                    a trusted-network login, which is accepted only once its audit row is
#                    committed) measures the time from the kill to the first Access-Accept.
# Each run is warmed up 3 s (wrong codes and trusted logins) and the users' used steps are
# carried from run to run (--state), so no accepted code is ever sent twice.
#
# BENCH_PROFILE=release (default) or debug: the build of mfa-radiusd, mfactl and the load
# generator to use; the script builds them in that profile (cargo; the load generator in
# $CARGO_TARGET_DIR/bench, as run.sh does). A debug build with a tiny count proves the script
# runs (`BENCH_PROFILE=debug bash bench/radius/replication.sh 300 1`); its figures mean
# nothing. BENCH_TMP: where the clusters and the store key go (default /tmp).
#
# Needs: root (the clusters run as the postgres user), postgresql (initdb, pg_ctl,
# pg_basebackup, psql), python3 (a free port), a Rust toolchain. Binds 127.0.0.1:18140 and two
# free TCP ports.
set -euo pipefail
USERS=${1:-100000}
SECS=${2:-8}
PROFILE=${BENCH_PROFILE:-release}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
SECRET=bench-secret-0123456789
PORT=18140
STANDBY=mfa_standby

case $PROFILE in
    release) PROFILE_DIR=release; PROFILE_ARG=(--release) ;;
    debug) PROFILE_DIR=debug; PROFILE_ARG=() ;;
    *) echo "BENCH_PROFILE: release or debug" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "run as root: the clusters run as the postgres user" >&2; exit 1; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "apt-get install postgresql" >&2; exit 2; }

cd "$ROOT"
cargo build "${PROFILE_ARG[@]}" -q --locked -p mfa-radiusd -p mfactl
(cd bench/radius && CARGO_TARGET_DIR="$TARGET/bench" cargo build "${PROFILE_ARG[@]}" -q)
LOADGEN="$TARGET/bench/$PROFILE_DIR/radius-loadgen"
BIN="$TARGET/$PROFILE_DIR"

WORK=$(mktemp -d "${BENCH_TMP:-/tmp}/replication-bench.XXXXXX")
chmod 755 "$WORK"
MFA_PID=
PROBE_PID=
LOAD_PID=
cleanup() {
    for p in $MFA_PID $PROBE_PID $LOAD_PID; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for d in "$WORK/primary" "$WORK/standby"; do
        [ -f "$d/postmaster.pid" ] &&
            runuser -u postgres -- "$PGBIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1
    done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
P1=$(free_port)
P2=$(free_port)
mkdir -m 0700 "$WORK/sock" "$WORK/primary" "$WORK/standby"
chown postgres: "$WORK/sock" "$WORK/primary" "$WORK/standby"

pg_start() { # DATA PORT NAME
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$1" -l "$WORK/sock/$3.log" -w -t 60 \
        -o "-p $2 -k $WORK/sock -c listen_addresses=127.0.0.1 -c max_connections=50 -c cluster_name=$3" \
        start >/dev/null
}
psql1() {
    "$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$P1" -U mfa -d postgres -c "$1"
}

echo "== replication: $USERS users, $SECS s per run, $PROFILE build; $(nproc) cores:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(date -u +%FT%TZ)"
echo "   PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), fsync=on; mfa-radiusd $("$BIN/mfa-radiusd" --version | awk '{print $2}')"
runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/primary" -U mfa -A trust -E UTF8 --locale=C >/dev/null
pg_start "$WORK/primary" "$P1" primary
psql1 "CREATE DATABASE bench"

# shellcheck source=../lib/mfa_config.sh
. "$ROOT/bench/lib/mfa_config.sh"
# store_config FILE URL: a code-only daemon on 127.0.0.1:$PORT over the store at URL.
store_config() {
    mfa_config "$1" "$PORT" "url = \"$2\"
sslmode = \"disable\"
key_file = \"$WORK/store.key\""
}
store_config "$WORK/single.toml" "postgres://mfa@127.0.0.1:$P1/bench"
store_config "$WORK/multi.toml" "postgres://mfa@127.0.0.1:$P1,127.0.0.1:$P2/bench?target_session_attrs=read-write"

"$LOADGEN" gen-users "$USERS" "$WORK/users.csv" -
"$BIN/mfactl" --config "$WORK/single.toml" init >/dev/null
t0=$(date +%s.%N)
"$BIN/mfactl" --config "$WORK/single.toml" import "$WORK/users.csv" >/dev/null
echo "mfactl import: $(echo "$(date +%s.%N) - $t0" | bc) s"

start_mfa() { # CONFIG LOG
    "$BIN/mfa-radiusd" --config "$1" 2>"$2" >/dev/null &
    MFA_PID=$!
    "$LOADGEN" wait --target "127.0.0.1:$PORT" --secret "$SECRET" --timeout 120 >/dev/null || { cat "$2"; exit 1; }
}
stop_mfa() {
    kill "$MFA_PID" 2>/dev/null || true
    wait "$MFA_PID" 2>/dev/null || true
    MFA_PID=
}
LG=(--target "127.0.0.1:$PORT" --secret "$SECRET" --users "$WORK/users.csv" --state "$WORK/steps")
mix() { # LABEL
    "$LOADGEN" run "${LG[@]}" --duration 3 --mix 0,50,50 --label warmup >/dev/null
    "$LOADGEN" run "${LG[@]}" --duration "$SECS" --label "$1"
}

echo "-- 1. none: the primary alone"
start_mfa "$WORK/single.toml" "$WORK/mfa1.log"
mix "mix, PostgreSQL, no replication"
stop_mfa

echo "-- 2. a synchronous standby (pg_basebackup -R), synchronous_commit = on"
runuser -u postgres -- "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$P1" -U mfa -D "$WORK/standby" \
    -R -X stream -c fast
pg_start "$WORK/standby" "$P2" "$STANDBY"
psql1 "ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 ($STANDBY)'"
psql1 "ALTER SYSTEM SET synchronous_commit = on"
psql1 "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 300); do
    [ "$(psql1 "SELECT sync_state FROM pg_stat_replication WHERE application_name = '$STANDBY'")" = sync ] && break
    sleep 0.1
done
[ "$(psql1 "SELECT sync_state FROM pg_stat_replication WHERE application_name = '$STANDBY'")" = sync ] ||
    { echo "the standby never became synchronous" >&2; exit 1; }
start_mfa "$WORK/multi.toml" "$WORK/mfa2.log"
"$BIN/mfactl" --config "$WORK/multi.toml" status | sed 's/^/   /'
mix "mix, PostgreSQL, synchronous standby (synchronous_commit = on)"

echo "-- 3. synchronous_commit = remote_apply"
psql1 "ALTER SYSTEM SET synchronous_commit = remote_apply"
psql1 "SELECT pg_reload_conf()" >/dev/null
mix "mix, PostgreSQL, synchronous standby (synchronous_commit = remote_apply)"
psql1 "ALTER SYSTEM SET synchronous_commit = on"
psql1 "SELECT pg_reload_conf()" >/dev/null

echo "-- 4. failover: kill -9 of the primary under the mix, pg_ctl promote of the standby"
# The mix keeps running through the failover; its figures are not a rate (requests fail
# while no primary answers), so only its end is shown.
"$LOADGEN" run "${LG[@]}" --duration $((SECS + 20)) --label "mix through the failover" \
    >"$WORK/failover-mix.txt" 2>&1 &
LOAD_PID=$!
sleep 2
PM=$(head -1 "$WORK/primary/postmaster.pid")
KILL_NS=$(date +%s%N)
kill -9 "$PM" $(pgrep -P "$PM") 2>/dev/null || true
"$LOADGEN" until-accept --target "127.0.0.1:$PORT" --secret "$SECRET" --users "$WORK/users.csv" \
    --since "$KILL_NS" --every 20 --timeout 120 >"$WORK/probe.txt" &
PROBE_PID=$!
t0=$(date +%s%N)
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/standby" -w -t 60 promote >/dev/null
echo "   pg_ctl promote took $(( ($(date +%s%N) - t0) / 1000000 )) ms (started $(( (t0 - KILL_NS) / 1000000 )) ms after the kill)"
wait "$PROBE_PID" && PROBE_PID=
echo "   $(cat "$WORK/probe.txt")"
wait "$LOAD_PID" || true
LOAD_PID=
echo "   the mix through the failover (its rejects and losses are the outage):"
grep '^mix through the failover:' "$WORK/failover-mix.txt" | sed 's/^/     /' || tail -3 "$WORK/failover-mix.txt"
"$BIN/mfactl" --config "$WORK/multi.toml" status | sed 's/^/   /'
stop_mfa
