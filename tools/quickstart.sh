#!/usr/bin/env bash
# The main job in one command: installs what is missing, builds, starts the
# quickstart tunnel (middle proxy, server end, client end, all on loopback)
# and shows a real transfer through it with curl. With --keep the tunnel
# stays up (SOCKS5 on 127.0.0.1:1080) until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
keep=0
[ "${1:-}" = "--keep" ] && keep=1

bash tools/build.sh
logs=$(mktemp -d /tmp/lstp-quickstart.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

start() {  # name, command...
  local name=$1; shift
  "$@" >"$logs/$name.log" 2>&1 &
  pids+=($!)
}
# The tunnel's secret is made here, once (keys are never shipped).
[ -e conf/quickstart/quickstart.secret ] || build/bin/endproxy --new-secret conf/quickstart/quickstart.secret
start middle build/bin/middleproxy -c conf/quickstart/middle.yaml
start server build/bin/endproxy -c conf/quickstart/server.yaml
start client build/bin/endproxy -c conf/quickstart/client.yaml

# A destination on loopback: a web server with a 100 MiB file, on a free port.
mkdir -p "$logs/www"
head -c $((100 * 1024 * 1024)) /dev/urandom >"$logs/www/file.bin"
web_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start web python3 -m http.server "$web_port" --bind 127.0.0.1 --directory "$logs/www"

for _ in $(seq 1 100); do
  grep -q "tunnel quickstart up" "$logs/client.log" 2>/dev/null && break
  sleep 0.1
done
grep "tunnel quickstart up" "$logs/client.log" || { cat "$logs"/*.log; exit 1; }
for _ in $(seq 1 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $web_port), 1)" 2>/dev/null && break
  sleep 0.1
done

echo
echo "curl --socks5-hostname 127.0.0.1:1080 http://localhost:$web_port/file.bin"
curl -sS --fail --socks5-hostname 127.0.0.1:1080 "http://localhost:$web_port/file.bin" -o "$logs/out.bin" \
  -w 'transferred %{size_download} bytes in %{time_total} s (%{speed_download} bytes/s)\n'
a=$(sha256sum <"$logs/www/file.bin" | cut -d' ' -f1)
b=$(sha256sum <"$logs/out.bin" | cut -d' ' -f1)
echo "sha256 sent     $a"
echo "sha256 received $b"
[ "$a" = "$b" ] || { echo "MISMATCH"; exit 1; }
echo "ok: the file crossed the tunnel intact. Logs: $logs"

if [ $keep = 1 ]; then
  echo "The tunnel stays up: SOCKS5 on 127.0.0.1:1080. Ctrl-C stops it."
  wait
fi
