#!/usr/bin/env bash
# Per-share audit soak with faults: thousands of hashing miners through a fastproxy process (two reactors) while
# pools die and come back (the first death while idle connections exhaust the proxy's descriptors), every pool
# connection drops once, miners churn, the config is reloaded (SIGHUP) and the proxy is stopped (SIGTERM). Every
# share is followed from miner to pool; prints the summary lines (shares, fault times, exhaustion), and fails on any broken invariant with the shares that break it (see tests/soak.rs). Bounded: SECONDS
# (default 120) plus set-up. A short soak of the same code runs in `cargo test`.
#   bash scripts/soak.sh [SECONDS] [MINERS] [VALIDATE: 1 = the proxy validates every share]
set -euo pipefail
cd "$(dirname "$0")/.."
export SOAK_SECONDS="${1:-120}" SOAK_MINERS="${2:-2000}" SOAK_VALIDATE="${3:-0}"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
log=$(mktemp)
status=0
RUST_BACKTRACE=0 cargo test --test soak soak_with_faults_loses_nothing -- --ignored --nocapture >"$log" 2>&1 || status=$?
# The summary lines, the proxy's lines that say why it could not start, stopped serving metrics or died, and each
# failure's message up to the backtrace note.
awk '/^soak / || /cannot start|metrics: |overflowed|fatal/ { print } /panicked at/ { p = 1 } /^note: run with/ { p = 0 } p { print }' "$log"
grep -E "^error(\[|:)" "$log" || true
rm -f "$log"
if [ "$status" = 0 ]; then echo "soak: OK"; else echo "soak: FAILED"; exit 1; fi
