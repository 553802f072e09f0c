#!/usr/bin/env python3
"""The cost of a feature, measured steadily: two lstp-1 worlds up at once,
one with the feature on and one with it off, and the same downloads through
each in turn (A, B, A, B...), so the machine's drift hits both alike; then
again with the worlds started in the other order. Prints
each side's medians of MB/s and CPU seconds per GiB (both ends and the
middle, from /proc), for one stream and for parallel streams.

  python3 bench/feature_cost.py                       resumption on vs off (issue 14)
  python3 bench/feature_cost.py --turns 10 --mib 512 --streams 16
  python3 bench/feature_cost.py --admin               an admin server in every process (issue 16),
                                                      polled as an open status page and a
                                                      Prometheus scraper would, vs none

run.py's rounds restart every process per scenario and vary ±10% here;
this keeps the processes and alternates only the transfers.
"""
import argparse
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from lstp_world import World, free_port, socks_connect  # noqa: E402

GIB = 1 << 30


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def admin_section(port):
    return f"admin:\n  listen: 127.0.0.1:{port}\n"


class AdminPoller:
    """What an operator's open status page and a Prometheus scraper ask of
    each process: status and events every second, metrics every second."""

    def __init__(self, ports):
        self.ports = ports
        self.stop = threading.Event()
        self.requests = 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        import urllib.request
        while not self.stop.wait(1.0):
            for port in self.ports:
                for path in ("/api/v1/status", "/api/v1/events?after=0", "/metrics"):
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).read()
                        self.requests += 1
                    except OSError:
                        pass

    def close(self):
        self.stop.set()
        self.thread.join()


class Side:
    def __init__(self, w, label, limits, admin=False):
        self.label = label
        self.poller = None
        ports = [free_port() for _ in range(3)] if admin else [None, None, None]
        extra = [limits + (admin_section(p) if p else "") for p in ports]
        mport, m, _ = w.middle(f"m-{label}", log="info", extra=admin_section(ports[0]) if admin else "")
        w.end(f"srv-{label}", "server", mport, extra=extra[1], log="warn", tunnel_extra="  ways: tcp\n")
        self.sport, cli, _ = w.end(f"cli-{label}", "client", mport, extra=extra[2], log="warn",
                                   tunnel_extra="  ways: tcp\n")
        if admin:
            self.poller = AdminPoller(ports)
        self.pids = [p.proc.pid for p in w.procs if p.name.endswith("-" + label)]
        self.firehose = w.servers.firehose(label)
        deadline = time.monotonic() + 30
        while True:
            try:
                socks_connect(self.sport, "127.0.0.1", self.firehose, timeout=5)[0].close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.single, self.parallel, self.cpu = [], [], []

    def download(self, streams, size):
        socks = [socks_connect(self.sport, "127.0.0.1", self.firehose, timeout=30)[0] for _ in range(streams)]
        got = [0] * streams

        def one(i):
            buf = bytearray(1 << 20)
            while got[i] < size:
                n = socks[i].recv_into(buf, min(len(buf), size - got[i]))
                if n == 0:
                    raise RuntimeError("stream ended early")
                got[i] += n
            socks[i].close()
        c0 = sum(cpu_seconds(p) for p in self.pids)
        t0 = time.perf_counter()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        dt = time.perf_counter() - t0
        cpu = sum(cpu_seconds(p) for p in self.pids) - c0
        total = sum(got)
        (self.single if streams == 1 else self.parallel).append(total / dt / 1e6)
        self.cpu.append(cpu / (total / GIB))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turns", type=int, default=8)
    ap.add_argument("--mib", type=int, default=512, help="bytes per turn, split over the streams")
    ap.add_argument("--streams", type=int, default=16)
    ap.add_argument("--on", default="limits:\n  resumption: on\n")
    ap.add_argument("--off", default="limits:\n  resumption: off\n")
    ap.add_argument("--admin", action="store_true",
                    help="on: an admin server in each process, polled every second; off: none (same limits)")
    args = ap.parse_args()
    if args.admin:
        args.on = args.off = ""
    size = args.mib << 20
    pooled = {"on": [[], [], []], "off": [[], [], []]}
    # The world started first ran up to 8% faster here whatever its config
    # (ports, cache, scheduler): each order once, half the turns each.
    for first in ("on", "off"):
        with World() as w:
            configs = {"on": args.on, "off": args.off}
            second = "off" if first == "on" else "on"
            sides = [Side(w, first, configs[first], admin=args.admin and first == "on"),
                     Side(w, second, configs[second], admin=args.admin and second == "on")]
            for turn in range((args.turns + 1) // 2):
                for streams in (1, args.streams):
                    order = sides if turn % 2 == 0 else sides[::-1]
                    for s in order:
                        s.download(streams, size // streams)
                print(f"{first}-first turn={turn + 1} " + " ".join(
                    f"{s.label}_single_MBps={s.single[-1]:.0f} {s.label}_parallel_MBps={s.parallel[-1]:.0f}"
                    for s in sides), flush=True)
            for s in sides:
                for i, v in enumerate((s.single, s.parallel, s.cpu)):
                    pooled[s.label][i] += v
                if s.poller:
                    s.poller.close()
                    print(f"{s.label}: {s.poller.requests} admin requests answered meanwhile", flush=True)

    class Pool:
        def __init__(self, v):
            self.single, self.parallel, self.cpu = v
    on, off = Pool(pooled["on"]), Pool(pooled["off"])
    med = statistics.median
    for what, a, b in (("1 stream MB/s", on.single, off.single), (f"{args.streams} streams MB/s", on.parallel,
                                                                       off.parallel),
                       ("CPU s/GiB", on.cpu, off.cpu)):
        print(f"{what}: on {med(a):.3g}, off {med(b):.3g} ({(med(a) / med(b) - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    main()
