#!/usr/bin/env bash
# Install the system packages the test-suite uses for real: OpenSSH server and
# client (real sshd on loopback), sudo, iproute2 (network namespaces), net-tools
# (netstat fallback), Debian's chromium (HTML report in a real browser),
# poppler-utils (pdftotext reads the report printed to PDF back),
# postgresql (the history store's tests start a throwaway cluster with initdb),
# and for the exposure probes nftables (firewall rules in test namespaces) and
# netcat-openbsd (the probe program's nc fallback), and redis-server (the broker
# of the distributed-scan tests, started by the tests).
# Idempotent: does nothing when everything is present. Needs root for apt-get.
set -euo pipefail
need=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v sudo >/dev/null 2>&1 || need+=(sudo)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v ss >/dev/null 2>&1 || need+=(iproute2)
command -v netstat >/dev/null 2>&1 || need+=(net-tools)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 \
  || need+=(postgresql)
command -v runuser >/dev/null 2>&1 || need+=(util-linux)
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || need+=(nftables)
command -v nc >/dev/null 2>&1 || need+=(netcat-openbsd)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "test-deps: missing ${need[*]}; run as root (or install them) to run the real-sshd/browser tests" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# a mirror hiccup must not fail CI: three tries, a short pause between them
for try in 1 2 3; do
  if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
    exit 0
  fi
  echo "test-deps: apt-get failed (try $try of 3)" >&2
  sleep 5
done
exit 1
