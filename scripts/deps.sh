#!/usr/bin/env bash
# Install exactly the Debian packages rtgw needs that are missing, and the npm
# packages its tests use. Usage: scripts/deps.sh build|test
# Works as root, uses sudo otherwise; says what it does. Idempotent and quiet
# when nothing is missing.
set -euo pipefail
group=${1:-build}
cd "$(dirname "$0")/.."

build_pkgs=(gcc make cmake pkg-config civetweb libcivetweb-dev libsodium-dev libjansson-dev
            libhiredis-dev libssl-dev openssl)
test_pkgs=(redis-server nginx caddy haproxy curl python3 chromium valgrind clang-format git
           dpkg-dev fakeroot lintian systemd python3-pip python3-setuptools python3-wheel)
[ "${RT_FUZZ_DEPS:-0}" = 1 ] && build_pkgs+=(clang libclang-rt-14-dev)

pkgs=("${build_pkgs[@]}")
[ "$group" = test ] && pkgs+=("${test_pkgs[@]}")
# Node.js: use the machine's own if present, otherwise Debian's.
if [ "$group" = test ] && ! command -v node >/dev/null 2>&1; then pkgs+=(nodejs npm); fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing missing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else
    command -v sudo >/dev/null || { echo "deps: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2; exit 1; }
    sudo=(sudo); echo "deps: using sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "deps: installed ${#missing[@]} package(s)"
  # The proxy tests run their own caddy/haproxy on free loopback ports and never use the
  # packages' services. Debian starts them on install (caddy's default site takes :80, as
  # nginx's does), so stop and disable the ones installed just now, where systemd runs.
  if [ -d /run/systemd/system ]; then
    for svc in caddy haproxy; do
      if [[ " ${missing[*]} " == *" $svc "* ]]; then
        "${sudo[@]}" systemctl disable --now "$svc.service" >/dev/null 2>&1 || true
      fi
    done
  fi
fi

if [ "$group" = test ] && [ -f tests/package.json ]; then
  stamp=tests/node_modules/.rtgw-stamp
  if [ ! -f "$stamp" ] || [ tests/package-lock.json -nt "$stamp" ]; then
    echo "deps: installing npm test packages (tests/package-lock.json)"
    (cd tests && npm ci --no-audit --no-fund --loglevel=error) && touch "$stamp"
  fi
fi
exit 0
