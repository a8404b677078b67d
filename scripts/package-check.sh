#!/usr/bin/env bash
# Builds the Debian package, installs it with apt, checks what a server admin gets (binary, config that passes
# --check-config, man page, completions, the unit under systemd-analyze), then removes and purges it. Run as
# root on a Debian-family machine; installs cargo-deb, man-db and systemd (for systemd-analyze) when missing.
# Safe to run again: a fastproxy package left installed by an earlier run is purged first.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "package-check: FAIL: $*" >&2
  exit 1
}
phase() {
  echo "== package-check: $* (${SECONDS}s)"
}

[ "$(id -u)" = 0 ] || fail "run as root (it installs and removes a package)"
command -v apt-get >/dev/null || fail "needs a Debian-family machine (apt-get)"
export DEBIAN_FRONTEND=noninteractive

phase "tools"
missing=()
command -v man >/dev/null || missing+=(man-db)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v strip >/dev/null || missing+=(binutils)
command -v adduser >/dev/null || missing+=(adduser)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! cargo deb --version >/dev/null 2>&1; then
  start=$SECONDS
  cargo install cargo-deb --locked
  echo "cargo install cargo-deb: $((SECONDS - start)) s"
fi
cargo deb --version

pkg_status() {
  dpkg-query -W -f '${db:Status-Status}' fastproxy 2>/dev/null || true
}
if [ -n "$(pkg_status)" ] && [ "$(pkg_status)" != not-installed ]; then
  phase "purging the fastproxy package an earlier run left"
  apt-get purge -y -qq fastproxy >/dev/null
fi

phase "build: bash scripts/build-deb.sh"
start=$SECONDS
deb=$(bash scripts/build-deb.sh | tail -n 1)
[ -f "$deb" ] || fail "scripts/build-deb.sh did not name a package: $deb"
echo "built $deb in $((SECONDS - start)) s"
target_dir=$(dirname "$(dirname "$deb")")
echo "sizes: package $(stat -c %s "$deb") bytes; release binary $(stat -c %s "$target_dir/release/fastproxy") bytes" \
  "(with line tables; stripped in the package)"

phase "install: apt-get install $deb"
apt-get install -y -qq "$deb" >/dev/null
[ "$(command -v fastproxy)" = /usr/bin/fastproxy ] || fail "fastproxy is not /usr/bin/fastproxy"
version=$(fastproxy --version)
echo "$version"
[ "$version" = "fastproxy $(dpkg-query -W -f '${Version}' fastproxy | sed 's/-[^-]*$//')" ] \
  || fail "fastproxy --version ($version) does not match the package"

phase "config"
fastproxy --check-config /etc/fastproxy/proxy.yaml
grep -q 'url: stratum+tcp://CHANGE-ME' /etc/fastproxy/proxy.yaml || fail "the config's pool is not the placeholder"
grep -qx '/etc/fastproxy/proxy.yaml' /var/lib/dpkg/info/fastproxy.conffiles || fail "proxy.yaml is not a conffile"
id fastproxy
[ "$(getent passwd fastproxy | cut -d: -f7)" = /usr/sbin/nologin ] || fail "the fastproxy user has a login shell"
[ "$(stat -c '%U:%G %a' /etc/fastproxy/proxy.yaml)" = "root:fastproxy 640" ] \
  || fail "proxy.yaml is $(stat -c '%U:%G %a' /etc/fastproxy/proxy.yaml), not root:fastproxy 640"
# The service's user reads it (the unit runs as fastproxy); other users do not.
runuser -u fastproxy -- fastproxy --check-config /etc/fastproxy/proxy.yaml
if runuser -u nobody -- fastproxy --check-config /etc/fastproxy/proxy.yaml 2>/dev/null; then
  fail "user nobody can read /etc/fastproxy/proxy.yaml"
fi

phase "man page and completions"
man -w fastproxy || fail "man -w fastproxy finds no page (a dpkg path-exclude for /usr/share/man?)"
man -w fastproxy-demo >/dev/null || fail "no fastproxy-demo(1)"
MANWIDTH=80 man fastproxy 2>/dev/null | grep -q -- '--check-config' || fail "man fastproxy does not render the options"
for f in /usr/share/bash-completion/completions/fastproxy \
  /usr/share/zsh/vendor-completions/_fastproxy \
  /usr/share/fish/vendor_completions.d/fastproxy.fish; do
  [ -s "$f" ] || fail "missing completion file $f"
  grep -q -- 'check-config' "$f" || fail "$f does not complete --check-config"
  echo "$f"
done
bash -c 'source /usr/share/bash-completion/completions/fastproxy && complete -p fastproxy' \
  || fail "the bash completion does not register"

phase "systemd unit"
unit=/usr/lib/systemd/system/fastproxy.service
[ -f "$unit" ] || fail "no $unit"
systemd-analyze verify "$unit"
echo "systemd-analyze verify: OK"
# --offline: reads the unit file itself, so it runs without systemd as PID 1. --threshold=49: above 4.9 is
# past systemd's "OK" band (MEDIUM, EXPOSED, UNSAFE).
# Printed: what still counts against the unit (the lines not ticked) and the overall exposure.
security=$(systemd-analyze security --offline=yes --threshold=49 --no-pager "$unit") \
  || fail "systemd-analyze security: exposure above the OK band: $security"
grep -v '^✓' <<<"$security"
if [ -d /run/systemd/system ]; then
  echo "systemd is running here: systemctl show (the package does not start the service by itself)"
  systemctl show -p LimitNOFILE -p Type -p User -p UnitFileState fastproxy
else
  echo "systemd is not PID 1 here: the unit is verified and rated offline, not started" \
    "(tests/service_notify.rs checks the readiness protocol against its own NOTIFY_SOCKET)"
fi

phase "remove"
apt-get remove -y -qq fastproxy >/dev/null
[ ! -e /usr/bin/fastproxy ] || fail "/usr/bin/fastproxy left after remove"
hash -r
! command -v fastproxy >/dev/null || fail "a fastproxy binary is still on PATH: $(command -v fastproxy)"
[ ! -e "$unit" ] || fail "$unit left after remove"
[ -f /etc/fastproxy/proxy.yaml ] || fail "remove took the config (only purge should)"

phase "purge"
apt-get purge -y -qq fastproxy >/dev/null
[ ! -e /etc/fastproxy ] || fail "/etc/fastproxy left after purge"
! getent passwd fastproxy >/dev/null || fail "user fastproxy left after purge"
! getent group fastproxy >/dev/null || fail "group fastproxy left after purge"
case "$(pkg_status)" in
  "" | not-installed) ;;
  *) fail "dpkg still lists fastproxy as $(pkg_status)" ;;
esac
for f in /usr/share/man/man1/fastproxy.1.gz /usr/share/bash-completion/completions/fastproxy; do
  [ ! -e "$f" ] || fail "$f left after purge"
done

phase "OK"
