#!/usr/bin/env python3
"""Failover stall (issue 14): how long the apps' bytes stop when the middle
proxy a tunnel rides on is killed with SIGKILL and a second middle is listed.

  python3 bench/failover.py                 5 runs; prints p50 and max
  python3 bench/failover.py --runs 10 --out /tmp/failover.md
  python3 bench/failover.py --reconnect     the same with resumption off (the
                                            stream dies: time until a NEW
                                            connection carries a byte)

Each run starts two middles and two ends (both list both middles,
resumption on), opens one echo connection through the tunnel and sends a
small ping on it every 2 ms, each after the previous one's answer. While a
rate-limited download (8 MiB/s) runs beside it, the middle in use (read
from the client end's log) is killed with SIGKILL. The stall is the time
from the kill until the first answer to a ping sent after it: the stream
itself carries bytes again (nothing is re-opened). Both middles are on
loopback, so this is the cost of noticing the loss, dialling, the new hop's
handshake and RESUME, not of a network's round trips.
"""
import argparse
import os
import re
import signal
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from lstp_world import World, recv_exact, socks_connect  # noqa: E402

RESUME = "limits:\n  resumption: {}\n"


def one_run(resumption):
    with World() as w:
        p1, m1, _ = w.middle("m1", log="info")
        p2, m2, _ = w.middle("m2", log="info")
        limits = RESUME.format("on" if resumption else "off")
        w.end("srv", "server", [p1, p2], extra=limits, log="info")
        sport, cli, _ = w.end("cli", "client", [p1, p2], extra=limits, log="info")
        cli.wait_for_log("tunnel it up")
        in_use = m1 if '-> middle "m1"' in cli.log() else m2
        echo = w.servers.echo()
        firehose = w.servers.firehose("bulk")
        s, _ = socks_connect(sport, "127.0.0.1", echo)
        s.settimeout(70)
        stop = threading.Event()
        bulk_bytes = [0]

        def bulk():
            # Something to replay: a stream that keeps the tunnel busy.
            try:
                b, _ = socks_connect(sport, "127.0.0.1", firehose)
                b.settimeout(70)
                deadline = time.monotonic()
                while not stop.is_set():
                    n = len(b.recv(65536))
                    if n == 0:
                        break
                    bulk_bytes[0] += n
                    deadline += n / (8 * 1024 * 1024)
                    pause = deadline - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                b.close()
            except OSError:
                pass
        threading.Thread(target=bulk, daemon=True).start()
        for _ in range(50):  # warm: the path answers
            s.sendall(b"p")
            recv_exact(s, 1)
        killed_at = None
        stall = None
        n = 0
        deadline = time.monotonic() + 75
        while stall is None and time.monotonic() < deadline:
            sent_at = time.monotonic()
            if killed_at is None and n == 100:
                in_use.proc.send_signal(signal.SIGKILL)
                killed_at = time.monotonic()
                in_use.proc.wait()
                w.procs.remove(in_use)
                sent_at = time.monotonic()
            n += 1
            try:
                s.sendall(b"p")
                recv_exact(s, 1)
            except OSError:
                if resumption:
                    raise
                # Resumption off: the stream died with the hop; a new
                # connection is the way back.
                s.close()
                while time.monotonic() < deadline:
                    try:
                        s, _ = socks_connect(sport, "127.0.0.1", echo, timeout=5)
                        s.settimeout(70)
                        s.sendall(b"p")
                        recv_exact(s, 1)
                        break
                    except OSError:
                        time.sleep(0.002)
                stall = time.monotonic() - killed_at
                break
            if killed_at is not None and sent_at >= killed_at:
                stall = time.monotonic() - killed_at
            time.sleep(0.002)
        stop.set()
        s.close()
        if stall is None:
            raise RuntimeError("no byte flowed within 75 s of the kill")
        note = ""
        if resumption:
            cli.wait_for_log(r"tunnel it resumed after", timeout=5)
            note = re.search(r"tunnel it resumed after .*", cli.log()).group(0)
        return stall, bulk_bytes[0], note


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--reconnect", action="store_true", help="resumption off: time until a new connection works")
    ap.add_argument("--out", default=None, help="also write a Markdown line to this file")
    args = ap.parse_args()
    stalls = []
    for i in range(args.runs):
        stall, bulk, note = one_run(not args.reconnect)
        stalls.append(stall)
        print(f"run={i + 1} stall_ms={stall * 1000:.1f} bulk_MiB={bulk / 2**20:.1f} client_end_log={note!r}",
              flush=True)
    what = "reconnect (resumption off)" if args.reconnect else "resumption"
    line = (f"failover stall, {what}, {args.runs} runs: p50 {statistics.median(stalls) * 1000:.0f} ms, "
            f"max {max(stalls) * 1000:.0f} ms (runs: {', '.join(f'{s * 1000:.0f}' for s in stalls)} ms)")
    print(line)
    if args.out:
        with open(args.out, "a") as f:
            f.write(f"- {line}\n")


if __name__ == "__main__":
    main()
