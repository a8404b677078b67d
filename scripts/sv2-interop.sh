#!/usr/bin/env bash
# Interop with the Stratum V2 reference implementation (issue 14): `fastproxy sim-pool --protocol sv2` serves
# the SRI translator (translator_sv2 from crates.io), our V1 sim miner mines on the translator, and the pool
# must accept the shares (tests/sv2_interop.rs, ignored in plain `cargo test`).
#
#   bash scripts/sv2-interop.sh
#
# Uses TRANSLATOR_SV2 (a translator_sv2 binary) when set, else translator_sv2 on PATH, else installs version
# TRANSLATOR_VERSION (default 0.6.0) with `cargo install --locked` into SV2_TOOLS/<version> (SV2_TOOLS default
# ~/.cache/fastproxy/sv2-tools, outside the clone, so it survives fresh clones on the same machine; about
# 11 minutes on two cores the first time, nothing afterwards). A failed install fails the script, loudly.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
version="${TRANSLATOR_VERSION:-0.6.0}"
tools="${SV2_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/fastproxy/sv2-tools}"

if [ -z "${TRANSLATOR_SV2:-}" ]; then
  if command -v translator_sv2 >/dev/null 2>&1; then
    TRANSLATOR_SV2="$(command -v translator_sv2)"
  else
    root="$tools/$version"
    TRANSLATOR_SV2="$root/bin/translator_sv2"
    if [ ! -x "$TRANSLATOR_SV2" ]; then
      echo "== installing translator_sv2 $version into $root (once; about 11 minutes on two cores)"
      start=$(date +%s)
      if ! cargo install translator_sv2 --version "$version" --locked --root "$root" || [ ! -x "$TRANSLATOR_SV2" ]; then
        echo "error: cannot install translator_sv2 $version into $root: the SV2 interop test cannot run" >&2
        exit 1
      fi
      echo "== translator_sv2 installed in $(($(date +%s) - start)) s"
    fi
  fi
fi
export TRANSLATOR_SV2
echo "== translator: $TRANSLATOR_SV2"
cargo test --test sv2_interop -- --ignored --nocapture
