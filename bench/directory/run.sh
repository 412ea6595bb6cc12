#!/usr/bin/env bash
# Directory benchmark (issue 23), not a test: group lookups per second through the core
# (Login::groups_for, nested groups by AD's in-chain rule, the primary group by its SID),
# against a real Samba AD DC (`samba -M single`) provisioned on a loopback address of its
# own by tests/src/directory.rs, with a cold cache (cache_ttl = "0s": every lookup asks the
# server) and a warm one (every lookup a cache hit). One client thread; the DC and the
# benchmark share the machine.
# Usage: bench/directory/run.sh [COUNT]   (default 1000 lookups per run)
# Needs samba, samba-ad-dc, samba-ad-provision, winbind and ldap-utils (scripts/test.sh
# installs them); run as root. PROFILE=debug builds without --release (a quick check only).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000}
PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ]; then
  cargo build --release -p mfa-e2e --bin bench-directory >/dev/null
else
  cargo build -p mfa-e2e --bin bench-directory >/dev/null
fi
"target/$PROFILE/bench-directory" "$N"
