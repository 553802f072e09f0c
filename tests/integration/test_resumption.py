"""Resumption (PROTOCOL.md 3.8) with the real binaries: a tunnel outlives
the middle proxy it rides on, and the apps never notice."""
import hashlib
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from lstp_world import SANITIZED, Relay, World, free_port, recv_exact, sha256_file, socks_connect

RESUME = "limits:\n  resumption: on\n  resume_window: 30s\n"


def echo_through_tunnel(test, w, limits):
    """A middle, two ends with `limits`, and an echo connection through them
    that has carried one byte: (middle port, middle, client end, socket)."""
    mport, m, _ = w.middle("m1", log="info")
    w.end("srv", "server", mport, extra=limits, log="info")
    sport, cli, _ = w.end("cli", "client", mport, extra=limits, log="info")
    cli.wait_for_log("tunnel it up")
    s, _ = socks_connect(sport, "127.0.0.1", w.servers.echo())
    s.sendall(b"x")
    test.assertEqual(recv_exact(s, 1), b"x")
    return mport, m, cli, s


def kill(w, proc):
    proc.proc.send_signal(signal.SIGKILL)
    proc.proc.wait()
    proc.log_file.close()
    w.procs.remove(proc)


class ResumptionTest(unittest.TestCase):
    def test_a_download_survives_the_middle_killed_and_restarted(self):
        # curl fetches 64 MiB at 16 MiB/s through the tunnel; 1 s in, the
        # middle is killed with SIGKILL and started again on the same port.
        # The download completes, intact, and curl exits 0.
        with World() as w, tempfile.TemporaryDirectory() as d:
            mport, m, mpath = w.middle("m1", log="info")
            w.end("srv", "server", mport, extra=RESUME, log="info")
            sport, cli, _ = w.end("cli", "client", mport, extra=RESUME, log="info")
            cli.wait_for_log("tunnel it up")

            def restart_middle():
                kill(w, m)
                w.middle("m1", port=mport, log="info")
            self.download_across(w, d, sport, 64, restart_middle, after=1.0)
            cli.wait_for_log(r"tunnel it resumed after [0-9.]+ s via middle \"m1\"")
            # Resumed, not reconnected: the tunnel came up once.
            self.assertEqual(cli.log().count("tunnel it up ("), 1)

    def test_an_interactive_connection_survives_the_middle_killed(self):
        # An echo connection that stays open across the failure answers
        # afterwards, byte for byte, and nothing was reset.
        with World() as w:
            mport, m, cli, s = echo_through_tunnel(self, w, RESUME)
            kill(w, m)
            # Written while no middle runs: kept, and delivered after.
            s.sendall(b"during")
            time.sleep(0.5)
            w.middle("m1", port=mport, log="info")
            s.settimeout(30)
            self.assertEqual(recv_exact(s, 6), b"during")
            s.sendall(b"after")
            self.assertEqual(recv_exact(s, 5), b"after")
            s.close()
            cli.wait_for_log("tunnel it resumed after")

    def test_when_the_window_passes_the_apps_see_a_reset_not_an_end(self):
        with World() as w:
            _, m, cli, s = echo_through_tunnel(self, w, "limits:\n  resumption: on\n  resume_window: 2s\n")
            kill(w, m)
            cli.wait_for_log("could not be resumed within 2 s", timeout=20)
            s.settimeout(10)
            with self.assertRaises(ConnectionResetError):
                s.recv(10)
            s.close()

    def test_two_middles_listed_the_one_in_use_killed_for_good(self):
        # Both ends list both middles; the one the tunnel rides on is killed
        # and never comes back: the download finishes through the other.
        with World() as w, tempfile.TemporaryDirectory() as d:
            p1, m1, _ = w.middle("m1", log="info")
            p2, m2, _ = w.middle("m2", log="info")
            w.end("srv", "server", [p1, p2], extra=RESUME, log="info")
            sport, cli, _ = w.end("cli", "client", [p1, p2], extra=RESUME, log="info")
            cli.wait_for_log("tunnel it up")
            # The tunnel may come up through both middles at the same
            # instant; the end then says which one it keeps.
            time.sleep(0.3)
            kept = re.search(r"keeping the one through 127\.0\.0\.1:(\d+)", cli.log())
            if kept:
                first = int(kept.group(1)) == p1
            else:
                first = '-> middle "m1"' in cli.log()
            in_use, other = (m1, "m2") if first else (m2, "m1")
            self.download_across(w, d, sport, 32, lambda: kill(w, in_use))
            cli.wait_for_log(f'tunnel it resumed after [0-9.]+ s via middle "{other}"')

    def download_across(self, w, d, sport, size_mib, fault, after=0.7):
        """curl fetches `size_mib` MiB at 16 MiB/s through the tunnel;
        `after` seconds in, `fault()` runs. The download completes intact."""
        payload = os.path.join(d, "payload.bin")
        with open(payload, "wb") as f:
            f.write(os.urandom(size_mib * 1024 * 1024))
        http = w.servers.http_dir(d)
        out = os.path.join(d, "got.bin")
        curl = subprocess.Popen(["curl", "-sS", "--max-time", "60", "--limit-rate", "16M", "--socks5-hostname",
                                 f"127.0.0.1:{sport}", "-o", out, f"http://127.0.0.1:{http}/payload.bin"])
        time.sleep(after)
        self.assertIsNone(curl.poll(), "the download ended before the fault")
        fault()
        self.assertEqual(curl.wait(timeout=90), 0)
        self.assertEqual(sha256_file(out), sha256_file(payload))

    def test_a_middle_of_a_three_middle_cascade_restarted_mid_transfer(self):
        # client end -> m1 -> m2 -> m3 <- server end; m2 is killed with
        # SIGKILL and started again: m1 and m3 lose their next hop and drop
        # the ends' hops, the ends resume along the whole chain again.
        with World() as w, tempfile.TemporaryDirectory() as d:
            p3, _, _ = w.middle("m3", log="info")
            p2, m2, _ = w.middle("m2", next_hop=p3, log="info")
            p1, _, _ = w.middle("m1", next_hop=p2, log="info")
            w.end("srv", "server", p3, log="info")
            sport, cli, _ = w.end("cli", "client", p1, log="info")
            cli.wait_for_log("tunnel it up")

            def restart_m2():
                kill(w, m2)
                time.sleep(0.3)
                w.middle("m2", port=p2, next_hop=p3, log="info")
            self.download_across(w, d, sport, 32, restart_m2)
            cli.wait_for_log(r'tunnel it resumed after [0-9.]+ s via middle "m1"')
            self.assertEqual(cli.log().count("tunnel it up ("), 1)

    def test_a_byte_flipping_relay_in_front_of_one_of_two_middles(self):
        # Every connection through the relay in front of m1 gets one byte
        # flipped after 512 KiB. The tunnel comes up through m1 (m2 starts
        # later); each altered record costs a hop, never data, and the
        # download completes intact, through m2 or through m1 again.
        at = 512 * 1024

        def flip_each(to_middle, offset, data):
            if to_middle and offset <= at < offset + len(data):
                i = at - offset
                data = data[:i] + bytes([data[i] ^ 0x10]) + data[i + 1:]
            return data
        with World() as w, tempfile.TemporaryDirectory() as d:
            p1, _, _ = w.middle("m1", log="info")
            p2 = free_port()
            relay = Relay(p1, tamper=flip_each)  # the server end's way to m1
            try:
                w.end("srv", "server", [relay.port, p2], log="info")
                sport, cli, _ = w.end("cli", "client", [p1, p2], log="info")
                cli.wait_for_log('tunnel it up .*middle "m1"')
                w.middle("m2", port=p2, log="info")
                self.download_across(w, d, sport, 32, lambda: None, after=0.2)
            finally:
                relay.close()
            log = cli.log()
            self.assertIn("a record failed authentication", log)
            resumed = re.findall(r'tunnel it resumed after .* via middle "(m\d)"', log)
            self.assertTrue(resumed)
            print(f"\nresumptions: {len(resumed)}, through m1 {resumed.count('m1')}, m2 {resumed.count('m2')}")
            self.assertEqual(log.count("tunnel it up ("), 1)

    def test_a_stalled_hop_holds_the_client_end_within_its_replay_buffer(self):
        # The hop stalls: it takes every byte and passes none on, so
        # nothing is acknowledged. 64 apps then upload as fast as they can:
        # their channels' first credit alone is 16 MiB, but the client end
        # stops reading them once limits.replay_buffer (4 MiB) is
        # unacknowledged, so its memory grows by about that much, not by
        # what the apps offer. The stall ends: every byte arrives, once.
        limits = os.environ.get("LSTP_TEST_LIMITS", "limits:\n  replay_buffer: 4MiB\n")
        with World() as w:
            mport, _, _ = w.middle("m1", log="info")
            relay = Relay(mport)
            try:
                w.end("srv", "server", mport, extra=limits, log="info")
                sport, cli, _ = w.end("cli", "client", relay.port, extra=limits, log="info")
                cli.wait_for_log("tunnel it up")
                sink = w.servers.sink()
                stop = threading.Event()
                sent = [0] * 64
                hashes = [hashlib.sha256() for _ in sent]
                socks = [socks_connect(sport, "127.0.0.1", sink)[0] for _ in sent]
                block = os.urandom(64 * 1024)
                time.sleep(0.5)
                rss_before = cli.rss_kib()
                relay.keep.set()

                def upload(i):
                    s = socks[i]
                    s.settimeout(0.2)
                    while not stop.is_set():
                        try:
                            n = s.send(block[sent[i] % 4096:])
                            hashes[i].update(block[sent[i] % 4096:][:n])
                            sent[i] += n
                        except socket.timeout:
                            pass
                threads = [threading.Thread(target=upload, args=(i,)) for i in range(len(sent))]
                for t in threads:
                    t.start()
                time.sleep(3)
                rss_stalled = cli.rss_kib()
                relay.keep.clear()
                stop.set()
                for t in threads:
                    t.join()
                grew = (rss_stalled - rss_before) / 1024
                print(f"\nstalled hop, 64 apps uploading: the client end's RSS {rss_before / 1024:.1f} -> "
                      f"{rss_stalled / 1024:.1f} MiB (+{grew:.1f}); the apps wrote {sum(sent) / 2**20:.1f} MiB "
                      "(the rest waits in their sockets)")
                # The replay buffer (4 MiB) plus each channel's read buffer
                # holding what the tunnel could not take yet (64 x 64 KiB),
                # and some slack; with a 256 MiB replay buffer it grew by 20.
                # (AddressSanitizer keeps freed memory in quarantine: its
                # RSS says nothing about what the program holds.)
                if not SANITIZED:
                    self.assertLess(grew, 4 + 4 + 3)
                for i, s in enumerate(socks):
                    s.settimeout(60)
                    s.shutdown(socket.SHUT_WR)
                    reply = s.makefile().readline().split()
                    self.assertEqual((int(reply[1]), reply[0]), (sent[i], hashes[i].hexdigest()), f"upload {i}")
                    s.close()
            finally:
                relay.close()

    def test_a_restarted_peer_cannot_resume_and_the_app_sees_a_reset(self):
        # The server end is killed and started again: it knows nothing of
        # the tunnel, so the client end's resumption is refused at once
        # (the middle sees a fresh setup of the same tunnel), the app's
        # stream is reset, never ended, and a new tunnel serves.
        with World() as w:
            mport, m, cli, s = echo_through_tunnel(self, w, RESUME)
            srv = next(p for p in w.procs if p.name == "srv")
            kill(w, srv)
            cli.wait_for_log("hop lost")
            w.end("srv2", "server", mport, extra=RESUME, log="info")
            s.settimeout(20)
            with self.assertRaises(ConnectionResetError):
                s.recv(10)
            s.close()
            cli.wait_for_log("tunnel it up", count=2, timeout=30)
            sport = int(cli.log().split("SOCKS5 listening on 127.0.0.1:")[1].split()[0])
            s2, _ = socks_connect(sport, "127.0.0.1", w.servers.echo())
            s2.sendall(b"again")
            self.assertEqual(recv_exact(s2, 5), b"again")
            s2.close()


if __name__ == "__main__":
    unittest.main()
