#!/usr/bin/env bash
# RADIUS benchmarks: mfa-radiusd against the servers an administrator would run instead, all
# driven by the same load generator (bench/radius/src/main.rs). Not a test: prints figures.
#
#   bench/radius/run.sh [compare] [USERS] [SECONDS] [ROUNDS]   (defaults: 100000 8 1)
#   bench/radius/run.sh soak [SECONDS] [USERS]                  (defaults: 60 1000000)
#   bench/radius/run.sh soak-kill [SECONDS] [USERS]             (defaults: 20 1000000)
#   bench/radius/run.sh cpu [USERS] [SECONDS] [ROUNDS]          (defaults: 400000 8 3)
#   bench/radius/run.sh scale [COUNT...]                        (defaults: 10000 100000 1000000)
#   bench/radius/run.sh postgres [USERS] [SECONDS]              (defaults: 100000 8)
#
# compare   mfa-radiusd (code-only, SQLite) next to two FreeRADIUS 3.2 servers:
#           - the TOTP peer: rlm_pam + pam_google_authenticator, one secret file per user,
#             DISALLOW_REUSE (each accepted code rewrites that user's file: our job too);
#           - the floor: users file + PAP (checks no code, writes nothing).
#           Each TOTP server first gets a wrong code, a right one and the same right one
#           again (Reject, Accept, Reject). Workloads: the mix (60% accepted codes, 20% wrong,
#           20% trusted network) against the floor; TOTP-only (every request a fresh code for
#           another user) against the TOTP peer; Status-Server as the protocol ceiling.
# soak      the mix at half of the peak measured first in the same run, for SECONDS, with
#           USERS enrolled (a user's code is good once per 30 s step: a 60 s soak needs
#           several hundred thousand users); p50, p99, p99.9, max, lost.
# soak-kill the soak's paced mix (half of the peak measured first) for SECONDS, with a kill -9
#           of mfa-radiusd half way through and a restart on the same store; then every code
#           answered Access-Accept before the kill is sent again: a durable store accepts
#           none (the script exits 3 if one is). Reports the requests lost around the kill
#           and the time from the kill to the restarted daemon's first answer. SECONDS stays
#           under 30 so that every code is still inside its step window when replayed.
# cpu       mfa-radiusd alone: the mix and TOTP-only, ROUNDS times each, and the CPU time
#           of each of its threads per answered request (microseconds): a figure the
#           neighbours on a shared machine barely move, unlike requests/s.
# scale     for each COUNT: mfactl import, mfactl report (table, JSON) time and peak RSS,
#           daemon start time and RSS, TOTP-only req/s.
# postgres  the mix through SQLite, one daemon on PostgreSQL and two daemons on one
#           PostgreSQL database (a throw-away cluster made here), in one run (issue 10).
#
# Each user's code is good once per 30 s step and three steps are valid at once, so USERS
# users supply about 2 x USERS accepted codes at the start (the current step and the next)
# and USERS more per step; the generator reports "users exhausted" when a run outlasts them.
#
# Needs: freeradius, libpam-google-authenticator, rsyslog (unless a syslog daemon already
# listens on /dev/log), postgresql (postgres mode), a Rust
# toolchain; compare runs as root (it writes an /etc/pam.d service for the TOTP peer).
# Binds 127.0.0.1:18120, :18121, :18122 and :18130.
set -euo pipefail
MODE=compare
case "${1:-}" in compare | soak | soak-kill | cpu | scale | postgres) MODE=$1; shift ;; esac
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
SECRET=bench-secret-0123456789
TAG="mfa-bench-ga-$$"

cd "$ROOT"
command -v /usr/bin/time >/dev/null || { echo "apt-get install time" >&2; exit 1; }
cargo build --release -q --locked -p mfa-radiusd -p mfactl
(cd bench/radius && CARGO_TARGET_DIR="$TARGET/bench" cargo build --release -q)
LOADGEN="$TARGET/bench/release/radius-loadgen"
REL="$TARGET/release"

# BENCH_TMP: where the stores go (default /tmp; /dev/shm, a tmpfs whose fsync is free, tells
# the disk's share of a tail from the CPU's). BENCH_PERF: see `measured` below.
WORK=$(mktemp -d "${BENCH_TMP:-/tmp}/radius-bench.XXXXXX")
PIDS=()
PGBIN= ; PGDIR=
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    syslog_sink_stop
    if [ -n "$PGDIR" ]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -f "/etc/pam.d/$TAG"
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

echo "== $MODE, $(nproc) cores:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(date -u +%FT%TZ)"
echo "   freeradius $(dpkg-query -W -f='${Version}' freeradius 2>/dev/null || echo '?'), libpam-google-authenticator $(dpkg-query -W -f='${Version}' libpam-google-authenticator 2>/dev/null || echo '?'), mfa-radiusd $("$REL/mfa-radiusd" --version | awk '{print $2}')"

rss() { awk '/VmRSS|VmHWM/ {printf "%s %d MB  ", $1, $2/1024}' "/proc/$1/status"; }
# BENCH_THREADS / BENCH_WINDOW: the generator's sockets and requests in flight per socket
# for every `run` (default 2 and 128: 256 in flight, as in issue 4). A run that names its
# own --window keeps it (the first occurrence counts).
LG_LOAD=(--threads "${BENCH_THREADS:-2}" --window "${BENCH_WINDOW:-128}")
lg() {
    if [ "${1:-}" = run ]; then "$LOADGEN" "$@" "${LG_LOAD[@]}"; else "$LOADGEN" "$@"; fi
}

# mfa_config (bench/lib/mfa_config.sh): a code-only daemon's configuration.
# shellcheck source=../lib/mfa_config.sh
. "$ROOT/bench/lib/mfa_config.sh"

# start_mfa CONFIG PORT LOG: starts the daemon, waits until it answers, sets MFA_PID and
# MFA_START (seconds to the first answer).
start_mfa() {
    "$REL/mfa-radiusd" --config "$1" 2>"$3" >/dev/null &
    MFA_PID=$!
    PIDS+=("$MFA_PID")
    MFA_START=$(lg wait --target "127.0.0.1:$2" --secret "$SECRET" --timeout 300) || { cat "$3"; exit 1; }
}

# CPU time of each mfa-radiusd thread (clock ticks, by thread name), to say where it goes.
thread_ticks() {
    for t in /proc/"$1"/task/*; do
        printf '%s %s\n' "$(cat "$t/comm")" "$(awk '{print $14 + $15}' "$t/stat")"
    done | awk '{a[$1] += $2} END {for (k in a) print k, a[k]}' | sort
}
TICK=$(getconf CLK_TCK)
# measured PID LABEL LOADGEN-ARGS...: one generator run, then the daemon's CPU by thread.
measured() {
    local pid=$1
    shift
    thread_ticks "$pid" > "$WORK/ticks.before"
    # BENCH_PERF=PREFIX: a perf profile of the server during each measured run, to
    # PREFIX.N.data (perf report -i ... --sort comm,sym shows each thread's share).
    local perf=
    if [ -n "${BENCH_PERF:-}" ]; then
        PERF_N=$((${PERF_N:-0} + 1))
        perf record -q -F 1999 -p "$pid" -o "$BENCH_PERF.$PERF_N.data" >/dev/null 2>&1 &
        perf=$!
    fi
    # The generator's own CPU too: it shares the 2 cores with the server it measures.
    /usr/bin/time -f '%U %S' -o "$WORK/lg.time" "$LOADGEN" run "$@" "${LG_LOAD[@]}" | tee "$WORK/lg.out"
    if [ -n "$perf" ]; then kill -INT "$perf"; wait "$perf" 2>/dev/null || true; fi
    thread_ticks "$pid" > "$WORK/ticks.after"
    printf '  CPU seconds by thread:'
    join "$WORK/ticks.before" "$WORK/ticks.after" | awk -v hz="$TICK" '{printf " %s %.2f", $1, ($3 - $2) / hz}'
    awk '{printf "; the generator %.2f", $1 + $2}' "$WORK/lg.time"
    echo
    # The same per answered request (microseconds; the generator's count of answers).
    local answered
    answered=$(sed -n 's/.*answered (\([0-9]*\) in.*/\1/p' "$WORK/lg.out" | head -1)
    if [ -n "$answered" ] && [ "$answered" -gt 0 ]; then
        printf '  CPU us per answered request:'
        join "$WORK/ticks.before" "$WORK/ticks.after" | awk -v hz="$TICK" -v n="$answered" '{d = ($3 - $2) / hz; t += d; printf " %s %.1f", $1, d * 1e6 / n} END {printf "; mfa-radiusd %.1f", t * 1e6 / n}'
        echo
    fi
}

# FreeRADIUS 3.2, a minimal configuration, no debug logging. fr_start DIR PORT AUTHORIZE
# AUTHENTICATE MODULES THREADS
fr_start() {
    local fr=$1
    mkdir -p "$fr/log" "$fr/run"
    cp /etc/freeradius/3.0/dictionary "$fr/dictionary"
    cat > "$fr/radiusd.conf" <<EOT
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = $fr/log
raddbdir = $fr
radacctdir = $fr/log
name = freeradius
confdir = $fr
modconfdir = $fr
run_dir = $fr/run
db_dir = $fr
libdir = /usr/lib/freeradius
pidfile = $fr/run/freeradius.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 262144
hostname_lookups = no
log {
    destination = files
    file = $fr/log/radius.log
    auth = no
}
security {
    allow_core_dumps = no
    max_attributes = 200
    reject_delay = 0
    status_server = yes
}
thread pool {
    $6
    max_requests_per_server = 0
    auto_limit_acct = no
}
client localhost {
    ipaddr = 127.0.0.1
    secret = $SECRET
}
modules {
$5
}
server default {
    listen {
        type = auth
        ipaddr = 127.0.0.1
        port = $2
    }
    authorize {
$3
    }
    authenticate {
$4
    }
}
EOT
    [ -n "${FR_DEBUG:-}" ] && { freeradius -XC -d "$fr" -n radiusd 2>&1 | tail -30; }
    freeradius -f -d "$fr" -n radiusd >"$fr/out" 2>&1 &
    PIDS+=($!)
    FR_PID=$!
    lg wait --target "127.0.0.1:$2" --secret "$SECRET" --timeout 120 >/dev/null \
        || { cat "$fr/out" "$fr/log/radius.log"; exit 1; }
}

# syslog_sink (bench/lib/syslog.sh): a syslog daemon on /dev/log for the TOTP peer.
# shellcheck source=../lib/syslog.sh
. "$ROOT/bench/lib/syslog.sh"

# --- compare --------------------------------------------------------------------------------
compare() {
    local users=${1:-100000} secs=${2:-8} rounds=${3:-1}
    # GA_USERS: the TOTP peer's users (one file each); GA_INSTANCES: rlm_pam instances in a
    # load-balance group, each one PAM conversation at a time; GA_THREADS: a fixed pool.
    local ga_users=${GA_USERS:-20000} inst=${GA_INSTANCES:-32} threads=${GA_THREADS:-32}
    [ "$(id -u)" = 0 ] || { echo "compare runs as root: it writes /etc/pam.d/$TAG" >&2; exit 1; }
    GA=$(find /lib /usr/lib -name pam_google_authenticator.so -print -quit 2>/dev/null || true)
    [ -n "$GA" ] || { echo "apt-get install libpam-google-authenticator" >&2; exit 1; }
    echo "== compare: $users users per workload, $secs s per run, $rounds round(s); TOTP peer: $ga_users users, $inst rlm_pam instances, $threads threads; generator: ${BENCH_THREADS:-2} sockets, ${BENCH_WINDOW:-128} requests in flight each"
    # Two user sets in one store: the mix's and TOTP-only's, so neither run eats the other's
    # codes; the probe user last. The TOTP peer gets the first $ga_users of the TOTP set.
    lg gen-users $((2 * users)) "$WORK/all.csv" "$WORK/fr-users"
    { echo user,secret; sed -n "2,$((users + 1))p" "$WORK/all.csv"; } > "$WORK/mix.csv"
    { echo user,secret; sed -n "$((users + 2)),$((2 * users + 1))p" "$WORK/all.csv"; } > "$WORK/totp.csv"
    { head -n $((ga_users + 1)) "$WORK/totp.csv"; tail -n 1 "$WORK/all.csv"; } > "$WORK/ga.csv"
    syslog_sink
    mkdir -m 0700 "$WORK/ga"
    lg ga-files "$WORK/ga.csv" "$WORK/ga"

    mfa_config "$WORK/mfa.toml" 18120 'path = "mfa.db"'
    local t0
    t0=$(date +%s.%N)
    "$REL/mfactl" --config "$WORK/mfa.toml" import "$WORK/all.csv" >/dev/null
    echo "mfactl import of $((2 * users + 1)) users: $(echo "$(date +%s.%N) - $t0" | bc) s, store $(du -ch "$WORK"/mfa.db* | tail -1 | cut -f1)"
    start_mfa "$WORK/mfa.toml" 18120 "$WORK/mfa.log"
    local mfa=$MFA_PID

    # The floor: users file + PAP, thread pool up to 32 (as in the first comparison).
    fr_start "$WORK/fr" 18121 "        files
        pap" "        Auth-Type PAP {
            pap
        }" "    pap {
    }
    files {
        filename = $WORK/fr-users
    }" "start_servers = 5
    max_servers = 32
    min_spare_servers = 3
    max_spare_servers = 10"
    local frpap=$FR_PID

    # The TOTP peer. rlm_pam holds one PAM conversation at a time per instance, so $inst
    # instances share the load (load-balance) on a fixed pool of $threads threads, one
    # instance per thread. With the console fallback (no syslog daemon, before issue 25) the
    # knee was 16/16 at 435 accepted codes/s; with a syslog daemon the peer scales further,
    # and 32/32 is the setting issue 25 measured as fair (about 3,400/s on 2 cores).
    printf 'auth required %s secret=%s/${USER} user=root\naccount required pam_permit.so\n' "$GA" "$WORK/ga" > "/etc/pam.d/$TAG"
    local mods="" lb=""
    for i in $(seq 1 "$inst"); do
        mods+="    pam pam$i {
        pam_auth = $TAG
    }
"
        lb+="                pam$i
"
    done
    fr_start "$WORK/frga" 18122 "        update control {
            &Auth-Type := PAM
        }" "        Auth-Type PAM {
            load-balance {
$lb            }
        }" "$mods" "start_servers = $threads
    max_servers = $threads
    min_spare_servers = $threads
    max_spare_servers = $threads"
    local frga=$FR_PID

    echo "idle: mfa-radiusd $(rss "$mfa")| freeradius PAP $(rss "$frpap")| freeradius TOTP $(rss "$frga")"
    echo "-- wrong code, right code, the same right code again:"
    lg check --target 127.0.0.1:18120 --secret "$SECRET" --users "$WORK/all.csv"
    lg check --target 127.0.0.1:18122 --secret "$SECRET" --users "$WORK/ga.csv"
    lg check --target 127.0.0.1:18121 --secret "$SECRET" --users "$WORK/all.csv" --kind pap

    # Warm-up (page cache, thread pools): mfa-radiusd with wrong codes and trusted logins
    # only, so the measured runs keep every accepted code.
    lg run --target 127.0.0.1:18120 --secret "$SECRET" --users "$WORK/mix.csv" --duration 3 --mix 0,50,50 --label warmup-mfa >/dev/null
    lg run --target 127.0.0.1:18121 --secret "$SECRET" --users "$WORK/mix.csv" --kind pap --duration 3 --label warmup-fr >/dev/null
    local i=1
    while [ "$i" -le "$rounds" ]; do
        echo "-- round $i: the mix"
        measured "$mfa" --target 127.0.0.1:18120 --secret "$SECRET" --users "$WORK/mix.csv" --state "$WORK/steps.mix" --duration "$secs" --label "mix, mfa-radiusd"
        lg run --target 127.0.0.1:18121 --secret "$SECRET" --users "$WORK/mix.csv" --kind pap --duration "$secs" --label "mix, freeradius users file + PAP"
        echo "-- round $i: TOTP-only"
        measured "$mfa" --target 127.0.0.1:18120 --secret "$SECRET" --users "$WORK/totp.csv" --state "$WORK/steps.totp" --mix 100,0,0 --duration "$secs" --label "TOTP-only, mfa-radiusd"
        lg run --target 127.0.0.1:18122 --secret "$SECRET" --users "$WORK/ga.csv" --state "$WORK/steps.ga" --mix 100,0,0 --duration "$secs" --label "TOTP-only, freeradius rlm_pam + pam_google_authenticator"
        i=$((i + 1))
    done
    echo "-- the protocol ceiling: Status-Server (parse, Message-Authenticator, reply; no store)"
    lg run --target 127.0.0.1:18120 --secret "$SECRET" --users "$WORK/mix.csv" --kind status --duration 5 --label "status-server, mfa-radiusd"
    lg run --target 127.0.0.1:18121 --secret "$SECRET" --users "$WORK/mix.csv" --kind status --duration 5 --label "status-server, freeradius"
    echo "after load: mfa-radiusd $(rss "$mfa")| freeradius PAP $(rss "$frpap")| freeradius TOTP $(rss "$frga")"
}

# --- soak -----------------------------------------------------------------------------------
# soak_start USERS: USERS enrolled, the daemon started (MFA_PID) and warmed up, the mix's
# peak measured and printed (PEAK, req/s): what the soak and the soak with a kill share.
soak_start() {
    lg gen-users "$1" "$WORK/all.csv" -
    mfa_config "$WORK/mfa.toml" 18120 'path = "mfa.db"' 'metrics_listen = "127.0.0.1:18199"'
    "$REL/mfactl" --config "$WORK/mfa.toml" import "$WORK/all.csv" >/dev/null
    start_mfa "$WORK/mfa.toml" 18120 "$WORK/mfa.log"
    lg run --target 127.0.0.1:18120 --secret "$SECRET" --users "$WORK/all.csv" --duration 3 --mix 0,50,50 --label warmup >/dev/null
    measured "$MFA_PID" --target 127.0.0.1:18120 --secret "$SECRET" --users "$WORK/all.csv" --state "$WORK/steps" --duration 5 --label "peak, the mix" > "$WORK/peak.txt"
    cat "$WORK/peak.txt"
    PEAK=$(awk '/req\/s answered/ {print $4; exit}' "$WORK/peak.txt")
}

soak() {
    local secs=${1:-60} users=${2:-1000000}
    echo "== soak: $users users, the mix at half of the measured peak for $secs s"
    soak_start "$users"
    local mfa=$MFA_PID peak=$PEAK
    echo "-- soak at $((peak / 2)) req/s"
    curl -s http://127.0.0.1:18199/metrics > "$WORK/metrics.before"
    measured "$mfa" --target 127.0.0.1:18120 --secret "$SECRET" --users "$WORK/all.csv" --state "$WORK/steps" --duration "$secs" --rate $((peak / 2)) --window 256 --label "soak, the mix at half of peak"
    curl -s http://127.0.0.1:18199/metrics > "$WORK/metrics.after"
    # The daemon's own view (its histograms, the soak's share: after minus before): the time
    # from a packet's arrival to its reply, the store's commit and its fsync, per batch.
    python3 - "$WORK/metrics.before" "$WORK/metrics.after" <<'PY'
import re, sys
def buckets(path):
    out = {}
    for line in open(path):
        m = re.match(r'(mfa_\w+)_bucket\{(?:.*,)?le="([^"]+)"(?:,.*)?\} (\S+)', line)
        if m:
            name, le, v = m.group(1), m.group(2), float(m.group(3))
            key = (name, float('inf') if le == '+Inf' else float(le))
            out[key] = out.get(key, 0) + v
    return out
b, a = buckets(sys.argv[1]), buckets(sys.argv[2])
for name in sorted({k[0] for k in a}):
    les = sorted(k[1] for k in a if k[0] == name)
    cum = [(le, a[(name, le)] - b.get((name, le), 0)) for le in les]
    total = cum[-1][1]
    if total == 0:
        continue
    # Seconds are shown in ms; the batch size is a count of requests.
    scale, unit = (1, '') if name.endswith('batch_size') else (1000, ' ms')
    def q(p):
        for le, c in cum:
            if c >= p * total:
                return "<= %g%s" % (le * scale, unit) if le != float('inf') else "> %g%s" % (les[-2] * scale, unit)
    if name.endswith('batch_size'):
        print("  daemon %s: %d batches, p50 %s, p99 %s (requests)" % (name, total, q(0.5), q(0.99)))
    else:
        print("  daemon %s: %d, p50 %s, p99 %s, p99.9 %s, max %s" % (name, total, q(0.5), q(0.99), q(0.999), q(1.0)))
PY
    echo "after the soak: mfa-radiusd $(rss "$mfa")"
}

# --- soak-kill ------------------------------------------------------------------------------
soak_kill() {
    local secs=${1:-20} users=${2:-1000000}
    echo "== soak-kill: $users users, the mix at half of the measured peak for $secs s, kill -9 at $((secs / 2)) s"
    soak_start "$users"
    local mfa=$MFA_PID peak=$PEAK
    echo "-- the mix at $((peak / 2)) req/s for $secs s; kill -9 at $((secs / 2)) s"
    lg run --target 127.0.0.1:18120 --secret "$SECRET" --users "$WORK/all.csv" --state "$WORK/steps" --duration "$secs" --rate $((peak / 2)) --window 256 --accept-log "$WORK/accepts" --label "soak with kill -9" > "$WORK/soak.txt" &
    local gen=$!
    sleep "$((secs / 2))"
    local killed_at
    killed_at=$(date +%s%N)
    kill -9 "$mfa"
    wait "$mfa" 2>/dev/null || true
    start_mfa "$WORK/mfa.toml" 18120 "$WORK/mfa2.log"
    echo "restart: $(echo "($(date +%s%N) - $killed_at) / 1000000" | bc) ms from the kill to the restarted daemon's first answer ($MFA_START s of it from its exec)"
    wait "$gen"
    cat "$WORK/soak.txt"
    echo "   accepted codes logged: $(wc -l < "$WORK/accepts") ($(awk -F, -v k="$killed_at" '$1 < k' "$WORK/accepts" | wc -l) before the kill)"
    lg replay --target 127.0.0.1:18120 --secret "$SECRET" --users "$WORK/all.csv" --log "$WORK/accepts" --before "$killed_at"
}

# --- cpu ------------------------------------------------------------------------------------
cpu() {
    local users=${1:-400000} secs=${2:-8} rounds=${3:-3}
    echo "== cpu: $users users per workload, $secs s per run, $rounds round(s)"
    lg gen-users $((2 * users)) "$WORK/all.csv" -
    { echo user,secret; sed -n "2,$((users + 1))p" "$WORK/all.csv"; } > "$WORK/mix.csv"
    { echo user,secret; sed -n "$((users + 2)),$((2 * users + 1))p" "$WORK/all.csv"; } > "$WORK/totp.csv"
    mfa_config "$WORK/mfa.toml" 18120 'path = "mfa.db"'
    "$REL/mfactl" --config "$WORK/mfa.toml" import "$WORK/all.csv" >/dev/null
    start_mfa "$WORK/mfa.toml" 18120 "$WORK/mfa.log"
    local mfa=$MFA_PID
    lg run --target 127.0.0.1:18120 --secret "$SECRET" --users "$WORK/mix.csv" --duration 3 --mix 0,50,50 --label warmup >/dev/null
    local i=1
    while [ "$i" -le "$rounds" ]; do
        measured "$mfa" --target 127.0.0.1:18120 --secret "$SECRET" --users "$WORK/mix.csv" --state "$WORK/steps.mix" --duration "$secs" --label "round $i, mix"
        measured "$mfa" --target 127.0.0.1:18120 --secret "$SECRET" --users "$WORK/totp.csv" --state "$WORK/steps.totp" --mix 100,0,0 --duration "$secs" --label "round $i, TOTP-only"
        i=$((i + 1))
    done
}

# --- scale ----------------------------------------------------------------------------------
# timed LABEL CMD...: wall seconds and peak RSS of one command, its output discarded.
timed() {
    local label=$1
    shift
    /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >/dev/null
    read -r s kb < "$WORK/time"
    echo "  $label: $s s, peak RSS $((kb / 1024)) MB"
}
scale() {
    [ $# -gt 0 ] || set -- 10000 100000 1000000
    for n in "$@"; do
        echo "== $n users"
        local d="$WORK/s$n"
        mkdir "$d"
        lg gen-users "$n" "$d/users.csv" -
        mfa_config "$d/mfa.toml" 18120 "path = \"$d/mfa.db\""
        timed "mfactl import" "$REL/mfactl" --config "$d/mfa.toml" import "$d/users.csv"
        echo "  store: $(du -ch "$d"/mfa.db* | tail -1 | cut -f1)"
        timed "mfactl report (table)" "$REL/mfactl" --config "$d/mfa.toml" report
        timed "mfactl report --format json" "$REL/mfactl" --config "$d/mfa.toml" report --format json
        start_mfa "$d/mfa.toml" 18120 "$d/mfa.log"
        echo "  daemon start (to the first answer): $MFA_START s, $(rss "$MFA_PID")"
        # Warm-up first (wrong codes, trusted logins: no accepted code used), then 0.75 s:
        # the codes 10,000 users can supply at once (2 steps each) last about that.
        lg run --target 127.0.0.1:18120 --secret "$SECRET" --users "$d/users.csv" --mix 0,50,50 --duration 1 --label warmup >/dev/null
        lg run --target 127.0.0.1:18120 --secret "$SECRET" --users "$d/users.csv" --mix 100,0,0 --duration 0.75 --label "  TOTP-only"
        echo "  after load: $(rss "$MFA_PID")"
        kill "$MFA_PID"
        wait "$MFA_PID" 2>/dev/null || true
        rm -rf "$d"
    done
}

# --- postgres -------------------------------------------------------------------------------
postgres() {
    local users=${1:-100000} secs=${2:-8}
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -x "$PGBIN/initdb" ] || { echo "apt-get install postgresql" >&2; exit 2; }
    [ "$(id -u)" = 0 ] || { echo "postgres runs as root: the cluster runs as the postgres user" >&2; exit 1; }
    echo "== postgres: $users users, $secs s per run; PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), fsync=on, synchronous_commit=on"
    chmod 755 "$WORK"
    PGDIR="$WORK/pg"
    mkdir -m 0700 "$PGDIR" "$WORK/pgsock"
    chown postgres: "$PGDIR" "$WORK/pgsock"
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    runuser -u postgres -- "$PGBIN/initdb" -D "$PGDIR" -U mfa -A trust -E UTF8 --locale=C >/dev/null
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR" -l "$WORK/pgsock/pg.log" -w \
        -o "-p $port -k $WORK/pgsock -c listen_addresses=127.0.0.1 -c max_connections=50" start >/dev/null
    "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$port" -U mfa -d postgres -c "CREATE DATABASE bench"
    lg gen-users "$users" "$WORK/all.csv" -
    local pgstore="url = \"postgres://mfa@127.0.0.1:$port/bench\"
sslmode = \"disable\"
key_file = \"$WORK/store.key\""
    mfa_config "$WORK/sqlite.toml" 18120 'path = "mfa.db"'
    mfa_config "$WORK/pg1.toml" 18120 "$pgstore"
    mfa_config "$WORK/pg2.toml" 18130 "$pgstore"
    local t0
    t0=$(date +%s.%N)
    "$REL/mfactl" --config "$WORK/sqlite.toml" import "$WORK/all.csv" >/dev/null
    echo "mfactl import, SQLite: $(echo "$(date +%s.%N) - $t0" | bc) s"
    "$REL/mfactl" --config "$WORK/pg1.toml" init >/dev/null
    t0=$(date +%s.%N)
    "$REL/mfactl" --config "$WORK/pg1.toml" import "$WORK/all.csv" >/dev/null
    echo "mfactl import, PostgreSQL: $(echo "$(date +%s.%N) - $t0" | bc) s"

    echo "-- SQLite, one daemon"
    start_mfa "$WORK/sqlite.toml" 18120 "$WORK/sqlite.log"
    lg run --target 127.0.0.1:18120 --secret "$SECRET" --users "$WORK/all.csv" --duration 3 --mix 0,50,50 --label warmup >/dev/null
    measured "$MFA_PID" --target 127.0.0.1:18120 --secret "$SECRET" --users "$WORK/all.csv" --state "$WORK/steps.sqlite" --duration "$secs" --label "mix, SQLite, one daemon"
    kill "$MFA_PID"
    wait "$MFA_PID" 2>/dev/null || true

    echo "-- PostgreSQL, one daemon"
    start_mfa "$WORK/pg1.toml" 18120 "$WORK/pg1.log"
    local n1=$MFA_PID
    lg run --target 127.0.0.1:18120 --secret "$SECRET" --users "$WORK/all.csv" --duration 3 --mix 0,50,50 --label warmup >/dev/null
    measured "$n1" --target 127.0.0.1:18120 --secret "$SECRET" --users "$WORK/all.csv" --state "$WORK/steps.pg" --duration "$secs" --label "mix, PostgreSQL, one daemon"
    echo "-- PostgreSQL, two daemons on one database (the generator's threads split over both)"
    start_mfa "$WORK/pg2.toml" 18130 "$WORK/pg2.log"
    local n2=$MFA_PID
    lg run --target 127.0.0.1:18120,127.0.0.1:18130 --secret "$SECRET" --users "$WORK/all.csv" --state "$WORK/steps.pg" --duration "$secs" --label "mix, PostgreSQL, two daemons"
    echo "  RSS: node 1 $(rss "$n1")| node 2 $(rss "$n2")"
}

case $MODE in
    compare) compare "$@" ;;
    soak) soak "$@" ;;
    soak-kill) soak_kill "$@" ;;
    cpu) cpu "$@" ;;
    scale) scale "$@" ;;
    postgres) postgres "$@" ;;
esac
