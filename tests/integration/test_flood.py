"""10,000 half-open and garbage connections against the middle proxy's port
and the SOCKS port (issue 6 point 5): a legitimate tunnel still forms and
carries data while they are held, the logs stay short, and each process's
memory returns to its baseline once they are gone."""
import os
import resource
import socket
import threading
import time
import unittest

from lstp_world import SANITIZED, World, echo_once

FLOOD = 10000


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard) if hard != resource.RLIM_INFINITY else need, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def flood(port, sources, count):
    """Opens `count` connections to `port`, from each of `sources` in turn:
    every other one sends nothing (half-open), the rest send a burst of
    garbage and stay open. Returns the sockets, still open on our side."""
    socks = []
    garbage = bytes(range(256)) * 4
    for i in range(count):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # close = RST
        s.bind((sources[i % len(sources)], 0))
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
            if i % 2:
                s.sendall(garbage[i % 256:][:64])
        except OSError:
            pass  # refused or reset by the far side: fine, it is a flood
        socks.append(s)
    return socks


def close_all(socks):
    for s in socks:
        s.close()


def settle_rss(proc, baseline_kib, slack_kib, timeout=20.0):
    """The process's RSS once it is back within `slack_kib` of the baseline,
    or the last seen after `timeout`."""
    deadline = time.monotonic() + timeout
    rss = proc.rss_kib()
    while rss > baseline_kib + slack_kib and time.monotonic() < deadline:
        time.sleep(0.5)
        rss = proc.rss_kib()
    return rss


class FloodTest(unittest.TestCase):
    def setUp(self):
        if raise_fd_limit(FLOOD + 1000) < FLOOD + 500:
            self.skipTest("cannot open enough descriptors for the flood")

    def test_a_flood_of_half_open_and_garbage_connections_harms_nothing(self):
        with World() as w:
            mport, m, _ = w.middle("m1", log="info")
            _, srv, _ = w.end("srv", "server", mport, log="info")
            sport, cli, _ = w.end("cli", "client", mport, log="info", tunnel="other")
            # A first tunnel, up before the flood; its ends and the middle
            # warmed up by one transfer, then measured.
            _, srv2, _ = w.end("srv2", "server", mport, log="info", tunnel="other")
            cli.wait_for_log("tunnel other up")
            payload = os.urandom(1 << 20)
            echo_once(self, w, sport, payload, timeout=30)
            time.sleep(1)
            base = {p.name: p.rss_kib() for p in (m, cli, srv2)}

            # The middle's port: 5,000 connections from another host
            # (127.0.0.2), then 5,000 from 50 more, all held open.
            held = flood(mport, ["127.0.0.2"], FLOOD // 2)
            held += flood(mport, [f"127.0.0.{i}" for i in range(3, 53)], FLOOD // 2)
            try:
                # A new tunnel forms through the same middle meanwhile, and
                # the old one still carries data.
                sport2, cli2, _ = w.end("cli2", "client", mport, log="info")
                cli2.wait_for_log("tunnel it up", timeout=30)
                srv.wait_for_log("tunnel it up", timeout=30)
                echo_once(self, w, sport2, payload, timeout=30)
                echo_once(self, w, sport, payload, timeout=30)
                m.wait_for_log(r"refusing connections from 127\.0\.0\.2: 64 of its connections are still opening")
                m.wait_for_log(r"connection\(s\) that had not finished their opening were dropped for newer ones")
            finally:
                close_all(held)

            # The SOCKS port: 10,000 more from the apps' own address.
            held = flood(sport, ["127.0.0.1"], FLOOD)
            try:
                echo_once(self, w, sport, payload, timeout=30)
                cli.wait_for_log(r"SOCKS client\(s\) that had not finished their greeting were dropped for newer ones")
            finally:
                close_all(held)

            # A flood leaves a few lines, not thousands.
            for p in (m, cli):
                lines = p.log().count("\n")
                self.assertLess(lines, 200, f"{p.name} wrote {lines} log lines:\n{p.log()[-3000:]}")
            # And memory goes back to what it was, within 1.5 MiB (a flood
            # costs about 6 MiB while it lasts). What stays is mostly Asio's
            # pool of per-socket reactor states, kept for reuse and bounded by
            # max_connections: the middle kept 952-992 KiB with the build of
            # 0b1f57f and 940-1080 KiB now, over a 1 MiB limit under load.
            # The tunnel that formed during
            # the flood is not the flood's: it ends first, so the middle's
            # pair for it is not counted. AddressSanitizer keeps freed memory
            # in quarantine on purpose: no baseline to return to there.
            self.assertEqual(cli2.stop(), [])
            m.wait_for_log(r"pair closed after")
            for p in ([] if SANITIZED else (m, cli, srv2)):
                rss = settle_rss(p, base[p.name], 1536)
                print(f"{p.name}: RSS {base[p.name]} KiB before, {rss} KiB after the flood")
                self.assertLessEqual(rss, base[p.name] + 1536, f"{p.name} kept {rss - base[p.name]} KiB")
            echo_once(self, w, sport, b"after the flood", timeout=30)


if __name__ == "__main__":
    unittest.main()
