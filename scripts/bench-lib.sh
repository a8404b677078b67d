# Sourced by the bench-*.sh scripts: builds the release binaries, prints the machine, and defines `run`,
# which runs the load generator with the given arguments and keeps its JSON report in $OUT
# ($BENCH_OUT, or a new temporary directory). Every run is bounded by the load generator's --timeout.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
cargo build --release --bins -q
LG="${CARGO_TARGET_DIR:-$ROOT/target}/release/fastproxy-loadgen"
OUT=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$OUT"
echo "machine: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
  "open files $(ulimit -n) (hard $(ulimit -Hn)), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "JSON reports in $OUT"

# run NAME ARGS...: one load-generator run, its report in $OUT/NAME.json.
run() {
  local name=$1
  shift
  echo
  echo "\$ fastproxy-loadgen $*"
  "$LG" "$@" --json "$OUT/$name.json" || echo "(exit $?: the run was incomplete, see its notes)"
}
