#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a share of SECONDS × 6 (default 30: the budget of the six targets
# before sv2_client, now split evenly among all of them, so a new target adds no time), against a temporary
# copy of the seed corpus fuzz/corpus/<target>/ (so runs never grow the committed corpus), and fails if any target finds a
# crash, a broken invariant, a hang (> 10 s on one input) or a leak of more than 2 GB. Prints one line per
# target. Installs cargo-fuzz when it is missing.
#
#   bash scripts/fuzz.sh [SECONDS]
#
# Works on the stable toolchain: cargo-fuzz builds with nightly-only flags (-Zsanitizer=address, sanitizer
# coverage), which RUSTC_BOOTSTRAP=1 lets stable rustc accept. A failing target leaves its crashing input in
# fuzz/artifacts/<target>/; replay it with `cargo fuzz run <target> fuzz/artifacts/<target>/<file>` and add
# it to tests/fuzz_regressions.rs.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-30}"
case "$secs" in
  '' | *[!0-9]*)
    echo "usage: bash scripts/fuzz.sh [SECONDS]" >&2
    exit 2
    ;;
esac
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never

# libfuzzer-sys compiles libFuzzer's C++ sources.
if ! command -v c++ >/dev/null 2>&1 && ! command -v clang++ >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing g++ (libFuzzer is C++)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null
  else
    echo "a C++ compiler is needed to build libFuzzer: install g++ or clang" >&2
    exit 1
  fi
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

targets=(framing miner_msg_stratum miner_msg_equihash pool_msg proxy_protocol config sv2_client sv2_session)
# The total stays SECONDS × 6 whatever the number of targets.
per_target=$((secs * 6 / ${#targets[@]}))
[ "$per_target" -ge 1 ] || per_target=1

echo "== building the fuzz targets ($(cargo fuzz --version))"
cargo fuzz build --fuzz-dir fuzz

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Under CI a fixed seed (FUZZ_SEED, default 1) makes the smoke run explore the same inputs on every run of
# the same code, so what it finds shows before a submission, not at random on landing. Elsewhere libFuzzer
# picks a new seed each run (set FUZZ_SEED to replay one).
seed_arg=()
if [ -n "${FUZZ_SEED:-}" ]; then
  seed_arg=(-seed="$FUZZ_SEED")
elif [ "${CI:-}" = true ]; then
  seed_arg=(-seed=1)
fi

failed=()
for t in "${targets[@]}"; do
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
  cp -R "fuzz/corpus/$t/." "$work/$t/corpus/"
  start=$(date +%s)
  set +e
  # `timeout` is a backstop only: libFuzzer stops itself after -max_total_time.
  timeout --kill-after=10 $((per_target + 300)) \
    cargo fuzz run --fuzz-dir fuzz "$t" "$work/$t/corpus" -- \
    -max_total_time="$per_target" -timeout=10 -rss_limit_mb=2048 "${seed_arg[@]}" \
    -artifact_prefix="$work/$t/artifacts/" >"$work/$t/log" 2>&1
  rc=$?
  set -e
  took=$(($(date +%s) - start))
  stats=$(grep -E '^#[0-9]+' "$work/$t/log" | tail -n 1 || true)
  runs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$stats")
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$stats")
  eps=$(sed -nE 's/.* exec\/s: ([0-9]+).*/\1/p' <<<"$stats")
  if [ "$rc" -eq 0 ]; then
    echo "fuzz $t: ok, ${runs:-?} runs in ${took}s (${eps:-?} exec/s), coverage ${cov:-?} edges"
  else
    echo "fuzz $t: FAILED (exit $rc) after ${runs:-?} runs in ${took}s"
    grep -vE '^ {2,}|^#[0-9]+|INFO:' "$work/$t/log" | tail -n 40 | sed 's/^/    /'
    if compgen -G "$work/$t/artifacts/*" >/dev/null; then
      mkdir -p "fuzz/artifacts/$t"
      cp "$work/$t/artifacts/"* "fuzz/artifacts/$t/"
      echo "    crashing input(s) kept in fuzz/artifacts/$t/"
    fi
    failed+=("$t")
  fi
done

echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "failed targets: ${failed[*]}" >&2
  exit 1
fi
