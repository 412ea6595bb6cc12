#!/bin/sh
# RADIUS benchmark: mfa-radiusd (code-only, SQLite store) and FreeRADIUS 3.2 (users file, PAP)
# side by side, driven by the same closed-loop load generator. Not a test: prints figures.
#
#   bench/radius/run.sh [USERS] [SECONDS] [ROUNDS]        (defaults: 100000 8 1)
#
# Each user's code is good once per 30 s step, and three steps are valid at a time, so 80,000
# accept-pool users supply about 240,000 accepted codes at once and 80,000 more per step.
# Keep SECONDS x (60% of the rate) under that: at 40k requests/s, 8 s and one round. The
# generator reports "users exhausted" when a run outlasts the codes.
#
# Needs: freeradius (Debian package), a Rust toolchain. Binds 127.0.0.1:18120 and :18121.
set -eu
USERS=${1:-100000}
SECS=${2:-8}
ROUNDS=${3:-1}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
SECRET=bench-secret-0123456789

cd "$ROOT"
cargo build --release -q -p mfa-radiusd -p mfactl
(cd bench/radius && CARGO_TARGET_DIR="$TARGET/bench" cargo build --release -q)
LOADGEN="$TARGET/bench/release/radius-loadgen"
REL="$TARGET/release"

WORK=$(mktemp -d /tmp/radius-bench.XXXXXX)
MFA_PID= ; FR_PID=
cleanup() {
    [ -n "$MFA_PID" ] && kill "$MFA_PID" 2>/dev/null || true
    [ -n "$FR_PID" ] && kill "$FR_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

echo "== $USERS users, $SECS s per run, $ROUNDS round(s), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
"$LOADGEN" gen-users "$USERS" "$WORK/users.csv" "$WORK/fr-users"

# --- mfa-radiusd ---------------------------------------------------------------------------
cat > "$WORK/mfa.toml" <<EOT
[store]
path = "mfa.db"
[policy]
trusted_networks = ["10.0.0.0/8"]
[audit]
syslog = false
[radius]
listen = ["127.0.0.1:18120"]
mode = "code-only"
first_factor = "none"
[[radius.clients]]
name = "bench"
address = "127.0.0.1/32"
secret = "$SECRET"
EOT
chmod 600 "$WORK/mfa.toml"   # an inline secret: the programs refuse a config others can read
t0=$(date +%s)
"$REL/mfactl" --config "$WORK/mfa.toml" import "$WORK/users.csv" >/dev/null
echo "mfactl import of $USERS users: $(( $(date +%s) - t0 )) s, store $(du -h "$WORK/mfa.db" | cut -f1)"
"$REL/mfa-radiusd" --config "$WORK/mfa.toml" 2>"$WORK/mfa.log" >/dev/null &
MFA_PID=$!

# --- FreeRADIUS 3.2: a minimal configuration, users file + PAP, no debug logging -----------
FR="$WORK/fr"
mkdir -p "$FR/log" "$FR/run"
cp /etc/freeradius/3.0/dictionary "$FR/dictionary"
cat > "$FR/radiusd.conf" <<EOT
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = $FR/log
raddbdir = $FR
radacctdir = $FR/log
name = freeradius
confdir = $FR
modconfdir = $FR
run_dir = $FR/run
db_dir = $FR
libdir = /usr/lib/freeradius
pidfile = $FR/run/freeradius.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 262144
hostname_lookups = no
log {
    destination = files
    file = $FR/log/radius.log
    auth = no
}
security {
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = yes
}
thread pool {
    start_servers = 5
    max_servers = 32
    min_spare_servers = 3
    max_spare_servers = 10
    max_requests_per_server = 0
    auto_limit_acct = no
}
client localhost {
    ipaddr = 127.0.0.1
    secret = $SECRET
}
modules {
    pap {
    }
    files {
        filename = $WORK/fr-users
    }
}
server default {
    listen {
        type = auth
        ipaddr = 127.0.0.1
        port = 18121
    }
    authorize {
        files
        pap
    }
    authenticate {
        Auth-Type PAP {
            pap
        }
    }
}
EOT
freeradius -f -d "$FR" -n radiusd >"$WORK/fr.out" 2>&1 &
FR_PID=$!

sleep 3
kill -0 "$MFA_PID" || { cat "$WORK/mfa.log"; exit 1; }
kill -0 "$FR_PID" || { cat "$WORK/fr.out" "$FR/log/radius.log"; exit 1; }
rss() { awk '/VmRSS|VmHWM/ {printf "%s %d MB  ", $1, $2/1024}' "/proc/$1/status"; }
echo "idle: mfa-radiusd $(rss $MFA_PID)| freeradius $(rss $FR_PID)"

# Short warm-up of both (page cache, thread pools), then the measured rounds, alternating.
# mfa-radiusd's warm-up sends wrong codes and trusted logins only: the accepted codes the
# users can supply are kept for the measured run (see SECONDS above).
"$LOADGEN" run --target 127.0.0.1:18120 --secret "$SECRET" --users "$WORK/users.csv" --state "$WORK/steps" --duration 3 --mix 0,50,50 --label warmup-mfa >/dev/null
"$LOADGEN" run --target 127.0.0.1:18121 --secret "$SECRET" --users "$WORK/users.csv" --kind pap --duration 3 --label warmup-fr >/dev/null
# CPU time of each mfa-radiusd thread (clock ticks, by thread name), to say where it goes.
thread_ticks() {
    for t in /proc/"$MFA_PID"/task/*; do
        printf '%s %s\n' "$(cat "$t/comm")" "$(awk '{print $14 + $15}' "$t/stat")"
    done | awk '{a[$1] += $2} END {for (k in a) print k, a[k]}' | sort
}
TICK=$(getconf CLK_TCK)
i=1
while [ "$i" -le "$ROUNDS" ]; do
    thread_ticks > "$WORK/ticks.before"
    "$LOADGEN" run --target 127.0.0.1:18120 --secret "$SECRET" --users "$WORK/users.csv" --state "$WORK/steps" --duration "$SECS" --label "round $i mfa-radiusd"
    thread_ticks > "$WORK/ticks.after"
    printf '  mfa-radiusd CPU seconds by thread in this round:'
    join "$WORK/ticks.before" "$WORK/ticks.after" | awk -v hz="$TICK" '{printf " %s %.2f", $1, ($3 - $2) / hz}'
    echo
    "$LOADGEN" run --target 127.0.0.1:18121 --secret "$SECRET" --users "$WORK/users.csv" --kind pap --duration "$SECS" --label "round $i freeradius "
    i=$((i + 1))
done
# The protocol path alone (Status-Server: parse, Message-Authenticator, duplicate cache, reply),
# without the store or PAP, for both servers.
"$LOADGEN" run --target 127.0.0.1:18120 --secret "$SECRET" --users "$WORK/users.csv" --kind status --duration 5 --label "status-server mfa-radiusd"
"$LOADGEN" run --target 127.0.0.1:18121 --secret "$SECRET" --users "$WORK/users.csv" --kind status --duration 5 --label "status-server freeradius "
echo "after load: mfa-radiusd $(rss $MFA_PID)| freeradius $(rss $FR_PID)"
kill -USR1 "$MFA_PID"; sleep 0.3
grep 'stats' "$WORK/mfa.log" | tail -1
