#!/usr/bin/env bash
# Installs lstp's build and test dependencies from Debian's packages, only
# when something is missing. Needs root (CI runs as root) or sudo.
set -euo pipefail

packages=(
  g++ cmake make pkg-config ccache
  libboost1.81-dev libboost-program-options1.81-dev libboost-json1.81-dev libssl-dev
  libbotan-2-dev libyaml-cpp-dev catch2
  # HTTP proxy logins: NTLM and Negotiate (Kerberos through GSSAPI)
  libntlm0-dev libkrb5-dev
  # proxy discovery: PAC files evaluated by libpacparser
  libpacparser-dev
  # proxies that want a login, and a Kerberos realm to log in with
  squid krb5-kdc krb5-admin-server krb5-user
  # integration tests drive real clients
  curl python3 netcat-openbsd iproute2
  # ways out: third-party proxies to go through, firewalls for test worlds
  tinyproxy dante-server nftables
  # forwards: an X server and X clients to carry
  xvfb x11-utils xauth
  # real clients through the tunnel: ssh (and an sshd to reach), proxychains
  openssh-server openssh-client proxychains4
  # an independent Argon2id (the reference implementation) checks the
  # passphrase stretch of PROTOCOL.md 4
  python3-argon2
  # operating it: promtool checks /metrics, Chromium loads the admin pages
  # (driven by playwright-core from npm, below), systemd units are verified
  prometheus chromium nodejs libsystemd-dev systemd
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# playwright-core for the browser tests, from the npm registry, pinned by
# tests/browser/package-lock.json (node_modules stays out of git).
browser_modules() {
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
  if [ ! -d "$dir/node_modules/playwright-core" ]; then
    if ! command -v npm >/dev/null; then
      $sudo apt-get install -y -q --no-install-recommends npm
    fi
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  browser_modules
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# squid and the KDC are for test worlds only: their packages must not start
# them as services (a squid on port 3128 of this host, say).
made_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod 755 /usr/sbin/policy-rc.d
  made_policy=1
fi
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
if [ -n "$made_policy" ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
browser_modules
