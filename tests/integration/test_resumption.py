"""Resumption (PROTOCOL.md 3.8) with the real binaries: a tunnel outlives
the middle proxy it rides on, and the apps never notice."""
import os
import signal
import subprocess
import tempfile
import time
import unittest

from lstp_world import World, recv_exact, sha256_file, socks_connect

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
    w.procs.remove(proc)


class ResumptionTest(unittest.TestCase):
    def test_a_download_survives_the_middle_killed_and_restarted(self):
        # curl fetches 64 MiB at 16 MiB/s through the tunnel; 1 s in, the
        # middle is killed with SIGKILL and started again on the same port.
        # The download completes, intact, and curl exits 0.
        with World() as w, tempfile.TemporaryDirectory() as d:
            payload = os.path.join(d, "payload.bin")
            with open(payload, "wb") as f:
                f.write(os.urandom(64 * 1024 * 1024))
            http = w.servers.http_dir(d)
            mport, m, mpath = w.middle("m1", log="info")
            w.end("srv", "server", mport, extra=RESUME, log="info")
            sport, cli, _ = w.end("cli", "client", mport, extra=RESUME, log="info")
            cli.wait_for_log("tunnel it up")
            out = os.path.join(d, "got.bin")
            curl = subprocess.Popen(["curl", "-sS", "--max-time", "60", "--limit-rate", "16M", "--socks5-hostname",
                                     f"127.0.0.1:{sport}", "-o", out, f"http://127.0.0.1:{http}/payload.bin"])
            time.sleep(1.0)
            self.assertIsNone(curl.poll(), "the download ended before the middle was killed")
            kill(w, m)
            w.middle("m1", port=mport, log="info")
            self.assertEqual(curl.wait(timeout=90), 0)
            self.assertEqual(sha256_file(out), sha256_file(payload))
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
            payload = os.path.join(d, "payload.bin")
            with open(payload, "wb") as f:
                f.write(os.urandom(32 * 1024 * 1024))
            http = w.servers.http_dir(d)
            p1, m1, _ = w.middle("m1", log="info")
            p2, m2, _ = w.middle("m2", log="info")
            w.end("srv", "server", [p1, p2], extra=RESUME, log="info")
            sport, cli, _ = w.end("cli", "client", [p1, p2], extra=RESUME, log="info")
            cli.wait_for_log("tunnel it up")
            in_use, other = (m1, "m2") if '-> middle "m1"' in cli.log() else (m2, "m1")
            out = os.path.join(d, "got.bin")
            curl = subprocess.Popen(["curl", "-sS", "--max-time", "60", "--limit-rate", "16M", "--socks5-hostname",
                                     f"127.0.0.1:{sport}", "-o", out, f"http://127.0.0.1:{http}/payload.bin"])
            time.sleep(0.7)
            self.assertIsNone(curl.poll(), "the download ended before the middle was killed")
            kill(w, in_use)
            self.assertEqual(curl.wait(timeout=90), 0)
            self.assertEqual(sha256_file(out), sha256_file(payload))
            cli.wait_for_log(f'tunnel it resumed after [0-9.]+ s via middle "{other}"')

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
