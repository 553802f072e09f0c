#!/usr/bin/env bash
# Runs every test: installs what is missing, builds, then runs the unit tests
# (no sockets), the checks of every shipped configuration, and the
# integration tests that start the real binaries on loopback. Then the same
# unit and integration tests again, built with AddressSanitizer and
# UndefinedBehaviorSanitizer (build-asan/); any sanitizer report fails them.
# Then every fuzz target for 30 s under the same sanitizers (build-fuzz/).
#   LSTP_SKIP_SANITIZERS=1 tools/test.sh   skips the second pass
#   LSTP_SKIP_FUZZ=1 tools/test.sh         skips the fuzzing (30 s per target)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
jobs=$(nproc 2>/dev/null || echo 2)
bash tools/build.sh
ctest --test-dir build --output-on-failure -j"$jobs" -L unit
ctest --test-dir build --output-on-failure -L conf
ctest --test-dir build --output-on-failure -L package
# Integration tests mostly wait on sockets: three at a time (those that must
# run alone say so, RUN_SERIAL in tests/CMakeLists.txt).
ctest --test-dir build --output-on-failure -j3 -L integration
# The benchmark suite in smoke mode: small sizes, only to prove it still runs
# (numbers from a shared CI machine mean nothing; nothing asserts on them).
python3 bench/run.py --smoke

if [ "${LSTP_SKIP_SANITIZERS:-0}" != 1 ]; then
  cmake -S . -B build-asan -DLSTP_SANITIZE=ON -DLSTP_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build-asan -j"$jobs"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -L unit
  ctest --test-dir build-asan --output-on-failure -j3 -L integration
fi
# Every parser's fuzz target for 30 s, built with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer (build-fuzz/): a crash, a leak or undefined
# behaviour fails the run.
if [ "${LSTP_SKIP_FUZZ:-0}" != 1 ]; then
  bash tools/fuzz.sh 30
fi
echo "test.sh: all tests passed in $(( $(date +%s) - start )) s"
