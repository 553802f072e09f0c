"""Stopping a process with SIGTERM (or SIGINT) while transfers are in flight:
it stops accepting, tells its peer, gives what is in flight
limits.shutdown_grace (1 s by default), then resets the rest, and exits 0
within 2 s; a second signal exits at once; the other processes log why and
carry on."""

import os
import signal
import socket
import time
import unittest

from lstp_world import World, recv_exact, socks_connect, echo_once


def stop_timed(proc, sig=signal.SIGTERM, timeout=10.0):
    """Sends `sig`; returns (seconds until the process exited, its status)."""
    t0 = time.monotonic()
    proc.proc.send_signal(sig)
    proc.proc.wait(timeout=timeout)
    return time.monotonic() - t0, proc.proc.returncode


def reads_until_end(s, timeout=10.0):
    """Reads until the stream ends; returns 'reset' or 'eof'."""
    s.settimeout(timeout)
    try:
        while s.recv(1 << 16):
            pass
    except ConnectionResetError:
        return "reset"
    return "eof"


def half_open_socks_client(sport):
    """A SOCKS client that sent half a greeting and then nothing."""
    s = socket.create_connection(("127.0.0.1", sport))
    s.sendall(b"\x05")
    return s


class ShutdownTest(unittest.TestCase):
    def _download_in_flight(self, w, sport):
        hose = w.servers.firehose("k")
        s, _ = socks_connect(sport, "127.0.0.1", hose)
        recv_exact(s, 4 * 1024 * 1024)  # the download is in full flow
        return s

    def test_a_client_end_stops_within_two_seconds_and_resets_its_apps(self):
        with World() as w:
            sport = w.tunnel()
            s = self._download_in_flight(w, sport)
            idle = half_open_socks_client(sport)
            took, status = stop_timed(w.c)
            self.assertEqual(status, 0)
            self.assertLess(took, 2.0)
            # The download did not end: the app sees a reset, never a FIN.
            self.assertEqual(reads_until_end(s), "reset")
            s.close()
            idle.close()
            self.assertIn("stopping", w.c.log())
            # The server end heard why and carries on, waiting for a new partner.
            w.s.wait_for_log(r"tunnel it closed", timeout=10)
            time.sleep(0.3)
            self.assertIsNone(w.s.proc.poll())
            self.assertIsNone(w.m.proc.poll())
            _, w.c, _ = w.end("cli2", "client", w.mport, socks_port=sport)
            w.c.wait_for_log("tunnel it up", timeout=30)
            echo_once(self, w, sport)

    def test_a_server_end_stops_within_two_seconds_and_the_client_end_carries_on(self):
        with World() as w:
            sport = w.tunnel()
            s = self._download_in_flight(w, sport)
            took, status = stop_timed(w.s)
            self.assertEqual(status, 0)
            self.assertLess(took, 2.0)
            # The client end passes the reset on to its app.
            self.assertEqual(reads_until_end(s), "reset")
            s.close()
            w.c.wait_for_log(r"tunnel it closed", timeout=10)
            time.sleep(0.3)
            self.assertIsNone(w.c.proc.poll())
            _, w.s, _ = w.end("srv2", "server", w.mport)
            w.c.wait_for_log("tunnel it up", count=2, timeout=30)
            echo_once(self, w, sport)

    def test_a_middle_stops_within_two_seconds_and_the_ends_carry_on(self):
        # With resumption (the default) the ends wait resume_window for a
        # middle; here none comes back within it.
        with World() as w:
            sport = w.tunnel(extra="limits:\n  resume_window: 2s\n")
            s = self._download_in_flight(w, sport)
            took, status = stop_timed(w.m, signal.SIGINT)
            self.assertEqual(status, 0)
            self.assertLess(took, 2.0)
            self.assertEqual(reads_until_end(s), "reset")
            s.close()
            w.c.wait_for_log(r"tunnel it closed: .*could not be resumed within 2 s", timeout=10)
            w.s.wait_for_log(r"tunnel it closed: .*could not be resumed within 2 s", timeout=10)
            time.sleep(0.3)
            self.assertIsNone(w.c.proc.poll())
            self.assertIsNone(w.s.proc.poll())

    def test_a_short_exchange_in_flight_finishes_within_the_grace(self):
        for who in ("server", "client"):
            with self.subTest(stopping=who), World() as w:
                sport = w.tunnel()
                echo = w.servers.echo()
                s, _ = socks_connect(sport, "127.0.0.1", echo)
                s.sendall(b"a" * 1000)
                self.assertEqual(recv_exact(s, 1000), b"a" * 1000)
                # The channel is open both ways when the end is told to stop.
                proc = w.s if who == "server" else w.c
                t0 = time.monotonic()
                proc.proc.send_signal(signal.SIGTERM)
                time.sleep(0.2)
                s.sendall(b"b" * 1000)
                s.shutdown(socket.SHUT_WR)
                self.assertEqual(recv_exact(s, 1000), b"b" * 1000)
                # All of it, then a clean end: the exchange ended, nothing was cut.
                self.assertEqual(reads_until_end(s), "eof")
                s.close()
                proc.proc.wait(timeout=10)
                self.assertEqual(proc.proc.returncode, 0)
                self.assertLess(time.monotonic() - t0, 2.0)

    def test_a_second_signal_exits_at_once(self):
        with World() as w:
            mport, w.m, _ = w.middle("m1")
            _, w.s, _ = w.end("srv", "server", mport)
            sport, w.c, _ = w.end("cli", "client", mport, extra="limits:\n  shutdown_grace: 30s\n")
            w.c.wait_for_log("tunnel it up")
            s = self._download_in_flight(w, sport)
            t0 = time.monotonic()
            w.c.proc.send_signal(signal.SIGTERM)
            w.c.wait_for_log(r"30000 ms for what is in flight")
            w.c.proc.send_signal(signal.SIGTERM)
            w.c.proc.wait(timeout=10)
            self.assertLess(time.monotonic() - t0, 3.0)
            self.assertEqual(w.c.proc.returncode, 0)
            self.assertIn("again: stopping at once", w.c.log())
            s.close()


if __name__ == "__main__":
    unittest.main()
