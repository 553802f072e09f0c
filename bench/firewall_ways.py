#!/usr/bin/env python3
"""Downloads through the firewalled namespace world of test_firewalls, one
way out at a time, in one run (issue 17 point 4's own scenario). Needs root.

  python3 bench/firewall_ways.py [--size-mib N] [--rounds N]
      (binaries from build/bin, or LSTP_BIN)

Company B reaches the internet only through its gateway's tinyproxy
(CONNECT to 80 and 443); the middle is on the "internet"; the server end in
company A goes out by tcp. For each way the client end in B uses (`tcp`,
`tls`, `ws`, `wss`, each `via http://gateway:8888`), curl in B fetches a
file from a web server in A through the client end's SOCKS port. Prints
MiB/s per way and round, then medians and each way's share of tcp's.
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import netns_world  # noqa: E402
from netns_world import A_HOST, B_GATEWAY, PUBLIC  # noqa: E402
from test_firewalls import Firewalled  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    why = netns_world.unavailable()
    if why:
        sys.exit(why)
    ways = [("tcp", 443), ("tls", 443), ("ws", 80), ("wss", 443)]
    speeds = {w: [] for w, _ in ways}
    with Firewalled(None) as f:
        f.company_a_servers()
        with open(os.path.join(f.w.dir, "www", "big.bin"), "wb") as out:
            out.truncate(args.size_mib << 20)
        f.company_b_gateway()
        f.middle()
        f.end("srv", "server", f.n.a, f"{PUBLIC}:7000")
        print(f"size_mib={args.size_mib} rounds={args.rounds} proxy=tinyproxy world=namespaces")
        for r in range(args.rounds):
            for i, (carrier, port) in enumerate(ways if r % 2 == 0 else list(reversed(ways))):
                way = f"{carrier} via http://{B_GATEWAY}:8888"
                socks = 1081 + i
                cli, _ = f.end(f"cli{r}{i}", "client", f.n.b, f"{PUBLIC}:{port}",
                               tunnel_extra=f"  ways: \"{way}\"\n", socks_port=socks)
                cli.wait_for_log("tunnel t up", timeout=20)
                res = f.n.ns(f.n.b, "curl", "-sS", "-o", "/dev/null", "-w", "%{size_download} %{speed_download}",
                             "--max-time", "120", "--socks5-hostname", f"127.0.0.1:{socks}",
                             f"http://{A_HOST}:8080/big.bin", check=False)
                cli.stop()
                size, speed = res.stdout.split()
                assert int(size) == args.size_mib << 20, f"{way}: got {size} bytes ({res.stderr.strip()})"
                speeds[carrier].append(float(speed) / 2**20)
                print(f"round={r + 1} way=\"{way}\" MiBps={speeds[carrier][-1]:.1f}", flush=True)
    tcp = statistics.median(speeds["tcp"])
    for carrier, _ in ways:
        m = statistics.median(speeds[carrier])
        print(f"median way=\"{carrier} via http://proxy\" MiBps={m:.1f} share_of_tcp={m / tcp * 100:.0f}%")


if __name__ == "__main__":
    main()
