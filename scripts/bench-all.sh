#!/usr/bin/env bash
# Every standard run, one after the other, reports in one directory ($BENCH_OUT or a new temporary one).
set -euo pipefail
export BENCH_OUT=${BENCH_OUT:-$(mktemp -d)}
dir=$(dirname "$0")
for s in connect shares fanout threads direct validate aiostratum; do
  bash "$dir/bench-$s.sh"
done
