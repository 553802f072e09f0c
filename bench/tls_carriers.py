#!/usr/bin/env python3
"""The TLS carriers against plain tcp, in one run (issue 17 point 4). Prints
`metric=value` lines.

  python3 bench/tls_carriers.py [--size-mib N] [--rounds N] [--proxy] [--reference DIR]
      (binaries from build/bin, or LSTP_BIN; --proxy needs tinyproxy)

With --reference, a second build's binaries (another commit's build/bin)
run each carrier right after this one's, in the same rounds, and the
medians are printed for both.

For each of tcp, tls, ws and wss: one middle, both hops carried that way,
a single-stream download (median of 3), CPU seconds per GiB of all tunnel
processes and of each. With --proxy the client end reaches the middle
through tinyproxy (`<carrier> via http://...`, CONNECT), as a company
network would make it. Rounds alternate the carriers, so drift on a shared
machine hits them alike; the medians over rounds are printed last, with
each TLS carrier's share of tcp's throughput and its CPU relative to tcp's.

The floor: a tls hop's bytes are encrypted and decrypted once per hop, by
the sending end, twice by the middle (it opens and reseals them: the outer
TLS ends there) and by the receiving end: four AEAD passes per byte with
one middle. `openssl speed` measures the cipher this OpenSSL picks for TLS
1.3 (AES-256-GCM first), and `cipher_floor_cpu_s_per_GiB` is what four
passes cost at that speed, before any copy or system call. Targets (issue
17): tls and wss at least 75% of tcp's throughput and at most 1.3x its CPU
per GiB; `cpu_budget_for_tls_s_per_GiB` is what 1.3x leaves above tcp.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lstp_world  # noqa: E402
from lstp_world import World, socks_connect  # noqa: E402
from quick import download, file_server, wait_through  # noqa: E402


def cipher_speed(name):
    """Bytes per second of `openssl speed -evp name` on 16 KiB blocks."""
    out = subprocess.run(["openssl", "speed", "-elapsed", "-seconds", "2", "-bytes", "16384", "-evp", name],
                         capture_output=True, text=True, check=True).stdout
    line = [l for l in out.splitlines() if l.upper().startswith(name.upper())][-1]
    kbps = float(re.findall(r"([\d.]+)k", line)[-1])
    return kbps * 1000


def one(w, carrier, proxy_port, size, fport):
    mport, _, _ = w.middle("m1", log="info")
    way = f"'{carrier} via http://127.0.0.1:{proxy_port}'" if proxy_port else carrier
    w.end("srv", "server", mport, log="info", tunnel_extra=f"  ways: {carrier}\n")
    sport, _, _ = w.end("cli", "client", mport, log="info", tunnel_extra=f"  ways: {way}\n")
    wait_through(sport, w.servers.echo())
    procs = [p for p in w.procs if p.name in ("m1", "srv", "cli")]
    speed, cpu, split = download(lambda: socks_connect(sport, "127.0.0.1", fport)[0],
                                 [p.proc.pid for p in procs], size)
    return speed, cpu, dict(zip([p.name for p in procs], split))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--proxy", action="store_true", help="the client end goes through tinyproxy (CONNECT)")
    ap.add_argument("--carriers", default="tcp,tls,ws,wss")
    ap.add_argument("--reference", help="a directory with another build's endproxy and middleproxy")
    args = ap.parse_args()
    builds = [("this", lstp_world.BIN)] + ([("reference", args.reference)] if args.reference else [])
    carriers = args.carriers.split(",")
    size = args.size_mib * 1024 * 1024
    aes256 = cipher_speed("aes-256-gcm")
    aes128 = cipher_speed("aes-128-gcm")
    floor = 4 * (2**30) / aes256
    print(f"machine_cores={os.cpu_count()} size_mib={args.size_mib} rounds={args.rounds} "
          f"proxy={'tinyproxy' if args.proxy else 'none'}")
    print(f"openssl_aes_256_gcm_MBps={aes256 / 1e6:.0f} openssl_aes_128_gcm_MBps={aes128 / 1e6:.0f} "
          f"cipher_floor_cpu_s_per_GiB={floor:.2f}")
    results = {(b, c): [] for b, _ in builds for c in carriers}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "payload.bin")
        with open(path, "wb") as f:
            f.truncate(size)
        fport = file_server(path)
        for r in range(args.rounds):
            order = carriers if r % 2 == 0 else list(reversed(carriers))
            for carrier in order:
                for build, bindir in (builds if r % 2 == 0 else list(reversed(builds))):
                    lstp_world.BIN = bindir
                    with World() as w:
                        pport = None
                        if args.proxy:
                            from http_carrier import tinyproxy
                            pport, _ = tinyproxy(w)
                        speed, cpu, split = one(w, carrier, pport, size, fport)
                    results[(build, carrier)].append((speed, cpu))
                    parts = ",".join(f"{n}:{c:.2f}" for n, c in split.items())
                    print(f"round={r + 1} build={build} carrier={carrier} single_stream_MBps={speed:.0f} "
                          f"cpu_s_per_GiB={cpu:.2f} cpu_s_per_GiB_by_process={parts}", flush=True)
    med = {k: (statistics.median(s for s, _ in v), statistics.median(x for _, x in v)) for k, v in results.items()}
    for build, _ in builds:
        for c in carriers:
            m = med[(build, c)]
            line = f"median build={build} carrier={c} single_stream_MBps={m[0]:.0f} cpu_s_per_GiB={m[1]:.2f}"
            if c != "tcp" and (build, "tcp") in med:
                t = med[(build, "tcp")]
                line += f" share_of_tcp={m[0] / t[0] * 100:.0f}% cpu_vs_tcp={m[1] / t[1]:.2f}x"
            print(line)
        if (build, "tcp") in med:
            print(f"build={build} cpu_budget_for_tls_s_per_GiB={0.3 * med[(build, 'tcp')][1]:.2f} "
                  f"(what 1.3x tcp leaves above tcp; the cipher alone needs {floor:.2f})")


if __name__ == "__main__":
    main()
