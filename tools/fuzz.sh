#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (AddressSanitizer and
# UndefinedBehaviorSanitizer on) in build-fuzz/ and runs each for SECONDS
# (default 30), starting from the seed corpus in tests/fuzz/corpus/.
#   tools/fuzz.sh [SECONDS] [TARGET...]     targets: frame tunnel socks5 config config_checks proxy_reply http_sniff setup records access_gate resumption admin_request
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(frame tunnel socks5 config config_checks proxy_reply http_sniff setup records access_gate resumption admin_request)

bash tools/install-deps.sh
if ! command -v clang++ >/dev/null || ! dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q "ok installed"; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get install -y -q --no-install-recommends clang libclang-rt-14-dev
fi
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DLSTP_FUZZ=ON -DLSTP_SANITIZE=ON -DLSTP_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}")

# One target per core at a time: each fuzzer is single-threaded, and the
# test command runs this with nothing else beside it.
parallel=$(nproc 2>/dev/null || echo 1)
run_target() {
  local t=$1 corpus=tests/fuzz/corpus/$1 work rc=0
  work=$(mktemp -d /tmp/lstp-fuzz-$t.XXXXXX)
  mkdir -p "$corpus"
  # New inputs go to a scratch folder; the committed seeds stay small.
  build-fuzz/bin/fuzz_$t -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "$work" "$corpus" > "$work.log" 2>&1 || rc=$?
  echo "fuzz_$t: ${seconds}s"
  if [ $rc -eq 0 ]; then tail -n 12 "$work.log"; else tail -n 80 "$work.log"; echo "fuzz_$t FAILED ($rc)"; fi
  rm -rf "$work" "$work.log"
  return $rc
}
failed=0
for ((i = 0; i < ${#targets[@]}; i += parallel)); do
  pids=()
  outs=()
  for t in "${targets[@]:i:parallel}"; do
    out=$(mktemp /tmp/lstp-fuzz-out.XXXXXX)
    run_target "$t" > "$out" 2>&1 &
    pids+=($!)
    outs+=("$out")
  done
  for k in "${!pids[@]}"; do
    wait "${pids[$k]}" || failed=1
    cat "${outs[$k]}"
    rm -f "${outs[$k]}"
  done
done
exit $failed
