#!/usr/bin/env bash
# Installs lstp's build and test dependencies from Debian's packages, only
# when something is missing. Needs root (CI runs as root) or sudo.
set -euo pipefail

packages=(
  g++ cmake make pkg-config ccache
  libboost1.81-dev libboost-program-options1.81-dev libboost-json1.81-dev
  libbotan-2-dev libyaml-cpp-dev catch2
  # integration tests drive real clients
  curl python3 netcat-openbsd iproute2
  # ways out: third-party proxies to go through, firewalls for test worlds
  tinyproxy dante-server nftables
  # forwards: an X server and X clients to carry
  xvfb x11-utils xauth
  # real clients through the tunnel: ssh (and an sshd to reach), proxychains
  openssh-server openssh-client proxychains4
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
