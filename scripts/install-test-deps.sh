#!/usr/bin/env bash
# Installs the system programs the test suite runs for real: Chromium (browser tests),
# Prometheus with promtool, Alertmanager with amtool (alerting tests), nginx (mTLS ingress
# tests) and openssl. Idempotent: with everything present it changes nothing. As root it
# installs what is missing with apt-get; otherwise it prints the one command to run and
# exits 1 with the list of what is missing.
set -euo pipefail

# program → Debian package
declare -A PROGRAMS=(
  [/usr/bin/chromium]=chromium
  [/usr/bin/prometheus]=prometheus
  [/usr/bin/promtool]=prometheus
  [/usr/bin/prometheus-alertmanager]=prometheus-alertmanager
  [/usr/bin/amtool]=prometheus-alertmanager
  [/usr/sbin/nginx]=nginx
  [/usr/bin/openssl]=openssl
)

missing=()
for program in "${!PROGRAMS[@]}"; do
  [ -x "$program" ] && continue
  pkg=${PROGRAMS[$program]}
  [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-test-deps: chromium, prometheus, prometheus-alertmanager, nginx and openssl are present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-deps: missing Debian packages: ${missing[*]}" >&2
  echo "install-test-deps: run this once, then the tests again:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "install-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# A package may start its service where an init system exists; the tests run their own
# instances on their own loopback ports, so stop any the install started.
pkill -x prometheus 2>/dev/null || true
pkill -f prometheus-alertmanager 2>/dev/null || true
pkill -x nginx 2>/dev/null || true

for program in "${!PROGRAMS[@]}"; do
  [ -x "$program" ] || { echo "install-test-deps: $program still missing after installing ${PROGRAMS[$program]}" >&2; exit 1; }
done
echo "install-test-deps: done"
