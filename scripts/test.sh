#!/usr/bin/env bash
# The test command README.md gives and .ci/run calls: installs what the tests need (HAProxy, for the PROXY
# protocol tests) and Chromium (for the status page test) when missing, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing haproxy (needed by tests/haproxy.rs)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
  else
    echo "haproxy is missing and cannot be installed here: install it (e.g. apt-get install haproxy)" >&2
    exit 1
  fi
fi

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium (needed by tests/status_page.rs)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is missing and cannot be installed here: install it (e.g. apt-get install chromium)" >&2
    exit 1
  fi
fi

cargo test "$@"
