#!/usr/bin/env bash
# Same-run A/B of two fastproxy binaries (BENCHMARKS.md, "A/B"): one load generator, built here, drives both
# with `--start-proxy --threads 1 --proxy-bin BIN`, the runs alternated ROUNDS times, and one table of
# new/old ratios of the medians. Usage: scripts/ab.sh OLD_BIN NEW_BIN [ROUNDS]   (ROUNDS default 3)
#
# Runs per round and binary: shares with 1,000 and 10,000 miners (--duration 5 --warmup 1); fan-out and
# connect with 65,536 miners (--fit-fd-limit: as many as the open-file limit holds; fan-out sends 10
# notifies). The order of the two binaries flips every round (old first in odd rounds, new first in even
# ones), so neither always runs on a warmer or cooler machine.
# Metrics: CPU per share, fan-out CPU per miner (proxy CPU during the fan-out / miners), RSS per miner
# ((RSS with all admitted - RSS before miners) / miners), and the absolute RSS before and after admission,
# which the per-miner slope hides (see BENCHMARKS.md). A run that was incomplete is listed after the table.
#
# Environment (for a short smoke run; the defaults are the A/B's): AB_DURATION (5), AB_WARMUP (1),
# AB_SHARES_MINERS ("1000 10000"), AB_BIG_MINERS (65536), AB_NOTIFIES (10), AB_OUT (where the JSON reports
# go; default a new temporary directory). Needs jq. Run it on a quiet machine: other load moves the figures.
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
  echo "usage: $0 OLD_BIN NEW_BIN [ROUNDS]" >&2
  exit 2
fi
OLD=$(realpath "$1")
NEW=$(realpath "$2")
ROUNDS=${3:-3}
for b in "$OLD" "$NEW"; do
  [[ -x $b ]] || { echo "$0: $b is not an executable" >&2; exit 2; }
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "$0: ROUNDS must be a positive integer" >&2; exit 2; }
command -v jq >/dev/null || { echo "$0: needs jq (to read the load generator's JSON reports)" >&2; exit 2; }

DURATION=${AB_DURATION:-5}
WARMUP=${AB_WARMUP:-1}
SHARES_MINERS=${AB_SHARES_MINERS:-1000 10000}
BIG=${AB_BIG_MINERS:-65536}
NOTIFIES=${AB_NOTIFIES:-10}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
cargo build --release -q -p fastproxy-loadgen
LG="${CARGO_TARGET_DIR:-$ROOT/target}/release/fastproxy-loadgen"
OUT=${AB_OUT:-$(mktemp -d)}
mkdir -p "$OUT"

echo "machine: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
  "open files $(ulimit -n) (hard $(ulimit -Hn)), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "old: $OLD"
echo "new: $NEW"
echo "rounds: $ROUNDS; JSON reports in $OUT"

# The runs: NAME then the load generator's mode arguments.
RUNS=()
for n in $SHARES_MINERS; do
  RUNS+=("shares-$n|--mode shares --miners $n --duration $DURATION --warmup $WARMUP")
done
RUNS+=("fanout|--mode fanout --miners $BIG --fit-fd-limit --notifies $NOTIFIES")
RUNS+=("connect|--mode connect --miners $BIG --fit-fd-limit")

INCOMPLETE=()
# one ROUND SIDE BIN NAME ARGS: one load-generator run, its report in $OUT/NAME.SIDE.ROUND.json.
one() {
  local round=$1 side=$2 bin=$3 name=$4 args=$5
  local json="$OUT/$name.$side.$round.json"
  echo "round $round, $side: fastproxy-loadgen $args --start-proxy --threads 1 --proxy-bin $bin"
  local rc=0
  # shellcheck disable=SC2086 # $args is a list of words
  "$LG" $args --start-proxy --threads 1 --proxy-bin "$bin" --json "$json" >"$OUT/$name.$side.$round.txt" \
    2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then
    INCOMPLETE+=("$name, $side, round $round: exit $rc (see $OUT/$name.$side.$round.txt)")
  fi
}

for ((r = 1; r <= ROUNDS; r++)); do
  for run in "${RUNS[@]}"; do
    name=${run%%|*}
    args=${run#*|}
    if ((r % 2)); then
      one "$r" old "$OLD" "$name" "$args"
      one "$r" new "$NEW" "$name" "$args"
    else
      one "$r" new "$NEW" "$name" "$args"
      one "$r" old "$OLD" "$name" "$args"
    fi
  done
done

# value NAME SIDE ROUND FILTER: one figure of one report (empty when absent).
value() {
  local json="$OUT/$1.$2.$3.json"
  [[ -s $json ]] || return 0
  jq -r "($4) // empty" "$json" 2>/dev/null || true
}

# median of the numbers on stdin (empty when none).
median() {
  sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

# The miners a 65,536 run actually had (--fit-fd-limit), from the first report that says.
miners_of() {
  local m=""
  for ((r = 1; r <= ROUNDS && ${#m} == 0; r++)); do
    m=$(value "$1" old "$r" '.miners')
  done
  echo "${m:-?}"
}
FAN_N=$(miners_of fanout)
CONN_N=$(miners_of connect)

# The metrics: label | run | jq filter | printf format of one figure.
METRICS=()
for n in $SHARES_MINERS; do
  METRICS+=("shares $n: proxy CPU per share (µs)|shares-$n|.shares.proxy_cpu_per_share_us|%.3f")
done
METRICS+=(
  "fan-out $FAN_N x $NOTIFIES: proxy CPU per miner (µs)|fanout|if (.fanout.miners // 0) > 0 then .fanout.proxy_cpu_s / .fanout.miners * 1e6 else null end|%.2f"
  "connect $CONN_N: RSS per miner (B)|connect|.proxy.rss_per_miner_bytes|%.0f"
  "fan-out $FAN_N: RSS per miner (B)|fanout|.proxy.rss_per_miner_bytes|%.0f"
  "connect $CONN_N: RSS before miners (KiB)|connect|.proxy.rss_before_miners_kib|%.0f"
  "connect $CONN_N: RSS all admitted (KiB)|connect|.proxy.rss_after_admit_kib|%.0f"
  "connect $CONN_N: peak RSS (KiB)|connect|.proxy.peak_rss_kib|%.0f"
  "fan-out $FAN_N: RSS all admitted (KiB)|fanout|.proxy.rss_after_admit_kib|%.0f"
)

echo
echo "| metric | old, by round | new, by round | median old | median new | new / old |"
echo "|---|---|---|---|---|---|"
for m in "${METRICS[@]}"; do
  IFS='|' read -r label name filter fmt <<<"$m"
  cols=()
  meds=()
  for side in old new; do
    vals=()
    for ((r = 1; r <= ROUNDS; r++)); do
      v=$(value "$name" "$side" "$r" "$filter")
      [[ -n $v ]] && vals+=("$v")
    done
    if ((${#vals[@]})); then
      shown=$(for v in "${vals[@]}"; do printf "$fmt\n" "$v"; done | paste -sd/ | sed 's|/| / |g')
      med=$(printf '%s\n' "${vals[@]}" | median)
    else
      shown="n/a"
      med=""
    fi
    cols+=("$shown")
    meds+=("$med")
  done
  if [[ -n ${meds[0]} && -n ${meds[1]} ]]; then
    ratio=$(awk -v o="${meds[0]}" -v n="${meds[1]}" 'BEGIN { if (o > 0) printf "%.3f", n / o; else print "n/a" }')
    mo=$(printf "$fmt" "${meds[0]}")
    mn=$(printf "$fmt" "${meds[1]}")
  else
    ratio="n/a" mo="n/a" mn="n/a"
  fi
  echo "| $label | ${cols[0]} | ${cols[1]} | $mo | $mn | **$ratio** |"
done

if ((${#INCOMPLETE[@]})); then
  echo
  echo "incomplete runs (their figures are in the table when the report has them):"
  printf '  %s\n' "${INCOMPLETE[@]}"
fi
