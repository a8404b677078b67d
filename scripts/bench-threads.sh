#!/usr/bin/env bash
# Reactor threads 1 vs 2: the same 10,000-miner shares run (and a 10,000-miner connect) on each.
source "$(dirname "$0")/bench-lib.sh"
for t in 1 2; do
  run "threads-$t-shares" --mode shares --miners 10000 --start-proxy --threads "$t" --duration 10
  run "threads-$t-connect" --mode connect --miners 10000 --start-proxy --threads "$t"
done
