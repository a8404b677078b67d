#!/usr/bin/env bash
# Builds the Debian package target/debian/fastproxy_*.deb: the release binary, then from that binary the files
# the package ships besides it (config, man pages, completions), then `cargo deb --no-build` (Cargo.toml
# [package.metadata.deb]). Needs cargo-deb: `cargo install cargo-deb --locked`. Extra arguments go to cargo deb.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
  echo "cargo-deb is missing: cargo install cargo-deb --locked" >&2
  exit 1
fi

cargo build --release --locked --bin fastproxy
# cargo-deb maps the target/release/ asset paths to the real target directory; follow the same one here.
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="$target_dir/release/fastproxy"
out="$target_dir/release/packaging"
rm -rf "$out"
mkdir -p "$out/man" "$out/completions"

# The config: the --generate-config template with a pool that cannot be mistaken for a real one (the .invalid
# domain never resolves), so `fastproxy --check-config` passes and nothing mines until an admin sets the pool.
{
  echo "# /etc/fastproxy/proxy.yaml, from \`fastproxy --generate-config\`: set the pool url and user (CHANGE-ME)"
  echo "# below, check with \`fastproxy --check-config /etc/fastproxy/proxy.yaml\`, then"
  echo "# \`systemctl enable --now fastproxy\`; \`systemctl reload fastproxy\` applies later edits."
  echo "#"
  "$bin" --generate-config --pool stratum+tcp://CHANGE-ME.pool.invalid:3333 --user CHANGE-ME.farm1
} >"$out/proxy.yaml"
"$bin" --check-config "$out/proxy.yaml" >/dev/null

"$bin" generate-man "$out/man" >/dev/null
gzip -9n "$out"/man/*.1
"$bin" completions bash >"$out/completions/fastproxy.bash"
"$bin" completions zsh >"$out/completions/_fastproxy"
"$bin" completions fish >"$out/completions/fastproxy.fish"

# --strip: the release profile keeps line tables for profiling; the package ships the binary without them.
cargo deb --no-build --strip "$@"
