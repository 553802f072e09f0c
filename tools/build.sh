#!/usr/bin/env bash
# Installs what is missing, then builds lstp into build/ (binaries in build/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLSTP_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
