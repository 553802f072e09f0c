#!/usr/bin/env python3
"""A first, quick benchmark: the same transfers direct and through lstp, in
one run, on loopback. Prints `metric=value` lines. The full suite (OpenSSH
jump host as the peer to beat, parallel streams, latency percentiles) is
still to come; this one exists so every number quoted is reproducible.

  python3 bench/quick.py [--size-mib N] [--carriers tcp,tls,ws,wss]   (binaries from build/bin)

Scenarios: direct (no proxy), lstp-1 (one middle; also lstp-1-tls, -ws,
-wss with --carriers: both hops carried that way), lstp-3 (three middles).
Metrics: single-stream download MB/s (median of 3), CPU seconds per GiB of
all tunnel processes, tunnel setup time (processes started -> first byte
through), bytes of memory per idle channel (both ends together).
"""
import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from lstp_world import World, socks_connect, recv_exact  # noqa: E402


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def file_server(path):
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen(64)

    def serve():
        while True:
            c, _ = lsn.accept()
            def one(c=c):
                try:
                    with open(path, "rb") as f:
                        c.sendfile(f)
                except OSError:
                    pass  # a reader that stopped early (a bulk load ended by its bench)
                c.close()
            threading.Thread(target=one, daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    return lsn.getsockname()[1]


def drain(s):
    buf = bytearray(1 << 20)
    n = 0
    while True:
        k = s.recv_into(buf)
        if not k:
            return n
        n += k


def download(connect, procs, size):
    """Median MB/s, median CPU s/GiB of `procs` together, and each process's
    own CPU s/GiB (median over the runs) in the order given."""
    speeds, cpu, split = [], [], [[] for _ in procs]
    for _ in range(3):
        c0 = [cpu_seconds(p) for p in procs]
        t0 = time.perf_counter()
        s = connect()
        n = drain(s)
        dt = time.perf_counter() - t0
        s.close()
        assert n == size, f"got {n} of {size} bytes"
        speeds.append(n / dt / 1e6)
        used = [cpu_seconds(p) - c for p, c in zip(procs, c0)]
        cpu.append(sum(used) / (n / 2**30))
        for i, u in enumerate(used):
            split[i].append(u / (n / 2**30))
    return statistics.median(speeds), statistics.median(cpu), [statistics.median(x) for x in split]


def wait_through(sport, echo, limit=20):
    """Waits until a byte goes through the tunnel to the echo server and
    back (SOCKS port `sport`), for at most `limit` seconds."""
    deadline = time.monotonic() + limit
    while True:
        try:
            s, _ = socks_connect(sport, "127.0.0.1", echo)
            s.sendall(b"x")
            recv_exact(s, 1)
            s.close()
            return
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def lstp_world(w, middles, way="tcp"):
    ports = []
    nxt = None
    for i in reversed(range(middles)):
        port, _, _ = w.middle(f"m{i + 1}", next_hop=nxt, log="info")
        ports.insert(0, port)
        nxt = port
    t0 = time.perf_counter()
    ways = f"  ways: {way}\n"
    w.end("srv", "server", ports[-1], log="info", tunnel_extra=ways)
    sport, cli, _ = w.end("cli", "client", ports[0], log="info", tunnel_extra=ways)
    return sport, cli, t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--carriers", default="tcp",
                    help="comma-separated carriers for lstp-1 to compare (tcp,tls,ws,wss); lstp-3 always uses tcp")
    args = ap.parse_args()
    size = args.size_mib * 1024 * 1024
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "payload.bin")
        with open(path, "wb") as f:
            f.truncate(size)  # sparse zeros: sendfile serves them from the page cache
        port = file_server(path)
        print(f"machine_cores={os.cpu_count()} size_mib={args.size_mib}")
        speed, _, _ = download(lambda: socket.create_connection(("127.0.0.1", port)), [], size)
        print(f"scenario=direct single_stream_MBps={speed:.0f}")
        scenarios = [("lstp-1" if c == "tcp" else f"lstp-1-{c}", 1, c) for c in args.carriers.split(",")]
        scenarios.append(("lstp-3", 3, "tcp"))
        for name, middles, carrier in scenarios:
            with World() as w:
                sport, cli, t0 = lstp_world(w, middles, carrier)
                echo = w.servers.echo()
                # Setup time: processes started -> first byte through.
                while True:
                    try:
                        s, _ = socks_connect(sport, "127.0.0.1", echo)
                        break
                    except Exception:  # noqa: BLE001 - not up yet
                        time.sleep(0.005)
                s.sendall(b"x")
                recv_exact(s, 1)
                setup_ms = (time.perf_counter() - t0) * 1000
                s.close()
                pids = [p.proc.pid for p in w.procs]
                speed, cpu, split = download(lambda: socks_connect(sport, "127.0.0.1", port)[0], pids, size)
                names = [p.name for p in w.procs]
                # Idle channels: memory across both ends per open channel.
                ends = [p for p in w.procs if p.name in ("cli", "srv")]
                base = sum(p.rss_kib() for p in ends)
                idle = [socks_connect(sport, "127.0.0.1", echo)[0] for _ in range(1000)]
                time.sleep(0.3)
                per_channel = (sum(p.rss_kib() for p in ends) - base) * 1024 / len(idle)
                for s in idle:
                    s.close()
                print(f"scenario={name} single_stream_MBps={speed:.0f} cpu_s_per_GiB={cpu:.2f} "
                      f"setup_ms={setup_ms:.0f} idle_channel_bytes={per_channel:.0f} "
                      f"cpu_s_per_GiB_by_process={','.join(f'{n}:{c:.2f}' for n, c in zip(names, split))}")


if __name__ == "__main__":
    main()
