#!/usr/bin/env bash
# Prepare this machine for Corral: Debian packages (when root) and a virtualenv in .venv.
#   bash scripts/setup.sh          what `corral demo` needs (libvirt's client library + headers)
#   bash scripts/setup.sh --test   also a real hypervisor (libvirtd, QEMU), PostgreSQL, VictoriaMetrics, promtool,
#                                  and Chromium (the HTML report is checked in a real headless browser)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

base_pkgs=(libvirt-dev pkg-config)
test_pkgs=(libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils busybox-static
           postgresql victoria-metrics prometheus iproute2 chromium
           snmp snmptrapd prometheus-alertmanager  # alert channels: SNMP traps, Alertmanager
           qemu-guest-agent e2fsprogs)  # the guest-agent test guest (app-consistent backups)
test_pkgs+=(wrk)  # benchmarks/bench_scale.py: a C load generator for the REST pages
pkgs=("${base_pkgs[@]}")
[ "${1:-}" = "--test" ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: please install these Debian packages first (as root):" >&2
    echo "  apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

py=${PYTHON:-python3}
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: Corral needs Python 3.11 or newer ($py is $("$py" --version 2>&1))." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
stamp=.venv/.corral-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Corral and its Python dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[dev]"
  touch "$stamp"
fi
