#!/usr/bin/env bash
# Store benchmark: policy decisions per second through the real SQLite store, one process
# and two processes at once (the PAM module and the daemon share the database this way).
# Usage: bench/store/run.sh [USERS_PER_RUN]   (default 6000)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-6000}
cargo build --release -p mfa-e2e --bin bench-store >/dev/null
B=target/release/bench-store
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
cat > "$DIR/mfa.toml" <<CFG
[store]
path = "mfa.db"
[policy]
trusted_networks = ["10.0.0.0/8"]
[audit]
syslog = false
CFG
$B "$DIR/mfa.toml" setup 0 $((3 * N))
echo "1 process:"
$B "$DIR/mfa.toml" run 0 "$N"
echo "2 processes:"
$B "$DIR/mfa.toml" run "$N" "$N" & p1=$!
$B "$DIR/mfa.toml" run $((2 * N)) "$N" & p2=$!
wait $p1 $p2
