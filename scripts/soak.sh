#!/usr/bin/env bash
# Soak with faults: thousands of miners through a fastproxy process while pools die and come back, miners churn,
# the config is reloaded (SIGHUP) and the proxy is stopped (SIGTERM). Prints one line of counts; fails on any
# broken invariant (see tests/soak.rs). Bounded: SECONDS (default 120) plus set-up.
#   bash scripts/soak.sh [SECONDS] [MINERS] [VALIDATE: 1 = the proxy validates every share]
set -euo pipefail
cd "$(dirname "$0")/.."
export SOAK_SECONDS="${1:-120}" SOAK_MINERS="${2:-2000}" SOAK_VALIDATE="${3:-0}"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
log=$(mktemp)
status=0
cargo test --test soak -- --ignored --nocapture >"$log" 2>&1 || status=$?
grep -E "^soak |panicked|assertion|left:|right:" "$log" || true
rm -f "$log"
if [ "$status" = 0 ]; then echo "soak: OK"; else echo "soak: FAILED"; exit 1; fi
