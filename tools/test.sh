#!/usr/bin/env bash
# Runs every test: installs what is missing, builds, then runs the unit tests
# (no sockets), the checks of every shipped configuration, and the
# integration tests that start the real binaries on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash tools/build.sh
ctest --test-dir build --output-on-failure -L unit
ctest --test-dir build --output-on-failure -L conf
ctest --test-dir build --output-on-failure -L integration
echo "test.sh: all tests passed in $(( $(date +%s) - start )) s"
