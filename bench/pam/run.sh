#!/usr/bin/env bash
# PAM authentication latency: pam_mfa.so next to pam_google_authenticator.so (Debian package
# libpam-google-authenticator; a syslog daemon on /dev/log, bench/lib/syslog.sh), both loaded by the real libpam through pamtester, in the same
# run, interleaved, one fresh user (and key) per login so every code is valid and unused.
#
#   sudo bash bench/pam/run.sh [LOGINS]      (default 300 per case)
#   sudo BENCH_PAM_OTHER=/path/to/other/target/release bash bench/pam/run.sh [LOGINS]
#
# BENCH_PAM_OTHER names the release directory of another build (libpam_mfa.so and mfactl,
# e.g. an older commit's, built with `cargo build --release -p pam_mfa -p mfactl` in its
# own checkout): its module then runs in the same loop, on a store of its own made by its
# own mfactl, as the cases "other-code" and "other-trust", so two builds are compared in one
# run on the same machine load.
#
# Cases, each LOGINS times:
#   baseline   pam_permit.so only: the cost of pamtester + libpam themselves
#   mfa-code   pam_mfa.so, untrusted PAM_RHOST, a valid code (store write: replay marker,
#              counters, audit row, fsync)
#   ga-code    pam_google_authenticator.so, a valid code, DISALLOW_REUSE (the secret file is
#              rewritten to record the used code), WINDOW_SIZE 3 (same skew as pam_mfa's 1)
#   mfa-wrong  pam_mfa.so, a wrong code (one per user: the failure counter and an audit row)
#   ga-wrong   pam_google_authenticator.so, the same wrong code
#   mfa-trust  pam_mfa.so, trusted PAM_RHOST, no prompt (audit row and login statistics)
# Each figure is the wall time of one pamtester process (spawn, pam_start, authenticate,
# pam_end, exit), taken with bash's $EPOCHREALTIME; the code is computed before the clock
# starts. Not a test: nothing is asserted.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "run as root: it writes /etc/pam.d service files" >&2; exit 1; }
# The bench users are accounts of the system, as the user of any real login is (sshd and
# sudo look them up before PAM runs): a copy of /etc/passwd that has them is bind-mounted
# over it in a private mount namespace of this script, so the host's file is not touched.
# Unknown to the files database, each lookup went on to every other source nsswitch.conf
# lists (here systemd and winbind, two more libraries loaded per login): 0.63 million of
# pam_mfa's 2.75 million instructions over pam_permit (docs/BENCHMARKS.md, issue 25).
if [ -z "${BENCH_PAM_NS:-}" ]; then
  command -v unshare >/dev/null || { echo "unshare (util-linux) is not installed" >&2; exit 1; }
  BENCH_PAM_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
cd "$(dirname "$0")/../.."
N=${1:-300}

for t in pamtester oathtool; do
  command -v "$t" >/dev/null || { echo "$t is not installed" >&2; exit 1; }
done
GA=$(find /lib /usr/lib /lib64 /usr/lib64 -name pam_google_authenticator.so -print -quit 2>/dev/null || true)
[ -n "$GA" ] || { echo "pam_google_authenticator.so not found: apt-get install libpam-google-authenticator" >&2; exit 1; }

cargo build --release --locked -p pam_mfa -p mfactl >&2
T=$(realpath "${CARGO_TARGET_DIR:-target}/release")
MOD="$T/libpam_mfa.so"
MFACTL="$T/mfactl"

W=$(mktemp -d)
TAG="mfa-bench-$$"
# Both modules log through syslog(3): a syslog daemon on /dev/log as on any real host (without
# one glibc writes each line to the console, about 1.3 ms a line: issue 25).
WORK=$W PIDS=()
# shellcheck source=../lib/syslog.sh
. "$(dirname "$0")/../lib/syslog.sh"
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  syslog_sink_stop
  umount /etc/passwd 2>/dev/null || true
  rm -rf "$W"; rm -f /etc/pam.d/"$TAG"-*
}
trap cleanup EXIT
syslog_sink >&2

cat > "$W/mfa.toml" <<CONF
[store]
path = "$W/mfa.db"
[policy]
trusted_networks = ["10.0.0.0/8"]
CONF
mkdir -m 0700 "$W/ga"
printf 'auth required pam_permit.so\naccount required pam_permit.so\n' > /etc/pam.d/"$TAG"-base
printf 'auth required %s config=%s\naccount required pam_permit.so\n' "$MOD" "$W/mfa.toml" > /etc/pam.d/"$TAG"-mfa
OTHER=${BENCH_PAM_OTHER:-}
if [ -n "$OTHER" ]; then
  [ -f "$OTHER/libpam_mfa.so" ] && [ -x "$OTHER/mfactl" ] || { echo "BENCH_PAM_OTHER=$OTHER has no libpam_mfa.so and mfactl" >&2; exit 1; }
  sed "s|$W/mfa.db|$W/other.db|" "$W/mfa.toml" > "$W/other.toml"
  printf 'auth required %s config=%s\naccount required pam_permit.so\n' "$OTHER/libpam_mfa.so" "$W/other.toml" > /etc/pam.d/"$TAG"-other
fi
printf 'auth required %s secret=%s/${USER} user=root\naccount required pam_permit.so\n' "$GA" "$W/ga" > /etc/pam.d/"$TAG"-ga

cp /etc/passwd "$W/passwd"
for i in $(seq 1 "$N"); do
  printf 'b%d:x:%d:%d::/nonexistent:/usr/sbin/nologin\n' "$i" $((3000000 + i)) $((3000000 + i)) >> "$W/passwd"
done
mount --bind "$W/passwd" /etc/passwd
getent passwd b1 >/dev/null || { echo "the bench users are not in NSS (mount --bind /etc/passwd failed?)" >&2; exit 1; }

echo "enrolling $N users in both..." >&2
declare -a KEY
for i in $(seq 1 "$N"); do
  k=$(head -c 20 /dev/urandom | base32 | tr -d '=\n')
  KEY[$i]=$k
  "$MFACTL" --config "$W/mfa.toml" enroll "b$i" --secret "$k" --no-confirm >/dev/null
  if [ -n "$OTHER" ]; then
    "$OTHER/mfactl" --config "$W/other.toml" enroll "b$i" --secret "$k" --no-confirm >/dev/null
  fi
  printf '%s\n" TOTP_AUTH\n" DISALLOW_REUSE\n" WINDOW_SIZE 3\n' "$k" > "$W/ga/b$i"
  chmod 0600 "$W/ga/b$i"
done

# One pamtester run; prints microseconds, fails the benchmark on an unexpected answer.
run() { # service user rhost input [refused]
  local t0 t1 rc=0
  t0=$EPOCHREALTIME
  pamtester -I rhost="$3" "$1" "$2" authenticate <<<"$4" >/dev/null 2>&1 || rc=$?
  t1=$EPOCHREALTIME
  if [ -n "${5:-}" ]; then
    [ $rc != 0 ] || { echo "wrong code accepted: $1 $2 from $3" >&2; exit 1; }
  else
    [ $rc = 0 ] || { echo "login refused: $1 $2 from $3" >&2; exit 1; }
  fi
  echo $(( (${t1/./} - ${t0/./}) ))
}

: > "$W/base"; : > "$W/mfa-code"; : > "$W/ga-code"; : > "$W/mfa-trust"
: > "$W/mfa-wrong"; : > "$W/ga-wrong"; : > "$W/other-code"; : > "$W/other-trust"
echo "measuring..." >&2
for i in $(seq 1 "$N"); do
  code=$(oathtool --totp -b "${KEY[$i]}")
  # Alternate the order so neither module always runs first in a step.
  if (( i % 2 )); then
    run "$TAG-mfa" "b$i" 192.0.2.1 "$code" >> "$W/mfa-code"
    run "$TAG-ga" "b$i" 192.0.2.1 "$code" >> "$W/ga-code"
  else
    run "$TAG-ga" "b$i" 192.0.2.1 "$code" >> "$W/ga-code"
    run "$TAG-mfa" "b$i" 192.0.2.1 "$code" >> "$W/mfa-code"
  fi
  # A wrong code: one per user, so no lockout is reached (the failure counter is written).
  wrong=$(printf '%06d' $(( (10#$code + 1) % 1000000 )))
  run "$TAG-mfa" "b$i" 192.0.2.1 "$wrong" refused >> "$W/mfa-wrong"
  run "$TAG-ga" "b$i" 192.0.2.1 "$wrong" refused >> "$W/ga-wrong"
  run "$TAG-mfa" "b$i" 10.1.2.3 "" >> "$W/mfa-trust"
  if [ -n "$OTHER" ]; then
    # The same code again, on the other build's own store: unused there.
    run "$TAG-other" "b$i" 192.0.2.1 "$code" >> "$W/other-code"
    run "$TAG-other" "b$i" 10.1.2.3 "" >> "$W/other-trust"
  fi
  run "$TAG-base" "b$i" 192.0.2.1 "" >> "$W/base"
done

stats() { # file label
  sort -n "$1" | awk -v label="$2" '
    { v[NR] = $1; s += $1 }
    END {
      printf "| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f |\n", label, NR,
        v[int(NR * 0.50 + 0.5)] / 1000, v[int(NR * 0.90 + 0.5)] / 1000,
        v[int(NR * 0.99 + 0.5)] / 1000, s / NR / 1000, v[1] / 1000
    }'
}

echo
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r)"
echo "pam_google_authenticator: $(dpkg-query -W -f='${Version}' libpam-google-authenticator 2>/dev/null || echo '?'), pamtester: $(dpkg-query -W -f='${Version}' pamtester 2>/dev/null || echo '?')"
echo
echo "| case | logins | p50 ms | p90 ms | p99 ms | mean ms | min ms |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
stats "$W/base" "baseline (pam_permit)"
stats "$W/mfa-code" "pam_mfa, valid code"
stats "$W/ga-code" "pam_google_authenticator, valid code"
stats "$W/mfa-wrong" "pam_mfa, wrong code"
stats "$W/ga-wrong" "pam_google_authenticator, wrong code"
stats "$W/mfa-trust" "pam_mfa, trusted network"
if [ -n "$OTHER" ]; then
  stats "$W/other-code" "pam_mfa ($OTHER), valid code"
  stats "$W/other-trust" "pam_mfa ($OTHER), trusted network"
fi
