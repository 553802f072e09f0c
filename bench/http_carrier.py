#!/usr/bin/env python3
"""The `http` carrier against `ws`, both through tinyproxy on loopback, in
one run (issue 17 point 1). Prints `metric=value` lines.

  python3 bench/http_carrier.py [--size-mib N]   (binaries from build/bin; needs tinyproxy)

For each carrier, the client end reaches the middle through tinyproxy
(`ws via http://...`: CONNECT; `http via http://...`: plain requests); the
server end goes direct. Metrics:
  single_stream_MBps   one download through the tunnel (median of 3)
  echo_p50_ms/p99_ms   1-byte echo round trips on an idle tunnel (200)
  busy_echo_p50_ms     the same while a bulk download runs on another
                       channel (interactive latency under bulk)
Targets (issue 17): http at least 25% of ws's throughput, echo p50 at
most 2 ms.
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lstp_world import World, free_port, socks_connect, recv_exact  # noqa: E402
from quick import download, file_server, wait_through  # noqa: E402


def tinyproxy(w):
    port = free_port()
    conf = w._write("tinyproxy.conf", f"Port {port}\nListen 127.0.0.1\nTimeout 600\nAllow 127.0.0.1\n"
                                      "LogLevel Error\nMaxClients 200\n")
    p = w.start("tinyproxy", [shutil.which("tinyproxy") or "/usr/bin/tinyproxy", "-d", "-c", conf])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return port, p
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("tinyproxy did not start")


def echo_rtts(sport, echo_port, rounds=200):
    s, _ = socks_connect(sport, "127.0.0.1", echo_port)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        s.sendall(b"x")
        recv_exact(s, 1)
        out.append((time.perf_counter() - t0) * 1000)
    s.close()
    out.sort()
    return statistics.median(out), out[int(len(out) * 0.99) - 1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=128)
    args = ap.parse_args()
    size = args.size_mib * 1024 * 1024
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "payload.bin")
        with open(path, "wb") as f:
            f.truncate(size)
        fport = file_server(path)
        print(f"machine_cores={os.cpu_count()} size_mib={args.size_mib} proxy=tinyproxy")
        results = {}
        for carrier in ("ws", "http"):
            with World() as w:
                pport, proxy = tinyproxy(w)
                mport, _, _ = w.middle("m1", log="info")
                w.end("srv", "server", mport, log="info", tunnel_extra="  ways: ws\n")
                sport, cli, _ = w.end("cli", "client", mport, log="info",
                                      tunnel_extra=f"  ways: '{carrier} via http://127.0.0.1:{pport}'\n")
                echo = w.servers.echo()
                wait_through(sport, echo)
                pids = [p.proc.pid for p in w.procs]
                speed, cpu, _ = download(lambda: socks_connect(sport, "127.0.0.1", fport)[0], pids, size)
                p50, p99 = echo_rtts(sport, echo)
                # Under bulk: a download runs on another channel meanwhile.
                stop = threading.Event()

                def bulk():
                    while not stop.is_set():
                        s, _ = socks_connect(sport, "127.0.0.1", fport)
                        buf = bytearray(1 << 20)
                        while not stop.is_set() and s.recv_into(buf):
                            pass
                        s.close()
                t = threading.Thread(target=bulk, daemon=True)
                t.start()
                time.sleep(0.5)
                busy50, _ = echo_rtts(sport, echo, rounds=100)
                stop.set()
                t.join(30)
                results[carrier] = speed
                print(f"carrier={carrier} single_stream_MBps={speed:.0f} cpu_s_per_GiB={cpu:.2f} "
                      f"echo_p50_ms={p50:.2f} echo_p99_ms={p99:.2f} busy_echo_p50_ms={busy50:.2f}")
        print(f"http_share_of_ws={results['http'] / results['ws'] * 100:.0f}%")


if __name__ == "__main__":
    main()
