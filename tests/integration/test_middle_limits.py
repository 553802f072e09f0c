"""The middle proxy's own limits: a setup that never completes, a setup that
waits too long for its partner, and a full waiting list. Each refuses the
one offender and the middle keeps serving. Also the share of the waiting
list one source address may hold."""
import socket
import unittest

from lstp_world import World, socks_connect, recv_exact

LIMITS = "limits:\n  setup_timeout: 1s\n  waiting_timeout: 2s\n  max_waiting: 1\n"


class MiddleLimitsTest(unittest.TestCase):
    def pair_and_carry(self, w, mport, tunnel):
        """A client end for `tunnel`: it pairs with the waiting server end and carries bytes."""
        sport, cli, _ = w.end("cli", "client", mport, tunnel=tunnel)
        cli.wait_for_log(f"tunnel {tunnel} up")
        echo = w.servers.echo()
        s, _ = socks_connect(sport, "127.0.0.1", echo)
        s.sendall(b"ok")
        self.assertEqual(recv_exact(s, 2), b"ok")
        s.close()

    def test_half_a_setup_is_dropped_after_the_setup_timeout(self):
        with World() as w:
            mport, m, _ = w.middle("m1", extra=LIMITS)
            s = socket.create_connection(("127.0.0.1", mport))
            s.sendall(b"\x01\x00\x00\x00")  # the start of a frame header, then nothing
            s.settimeout(10)
            data = s.recv(4096)  # the middle answers ERROR and closes
            self.assertIn(b"no complete setup in time", data)
            self.assertEqual(s.recv(4096), b"")
            m.wait_for_log("refused: bad setup: no complete setup in time")
            s.close()

    def test_half_a_tls_handshake_or_web_request_is_dropped_after_the_setup_timeout(self):
        with World() as w:
            mport, m, _ = w.middle("m1", extra=LIMITS)
            # The start of a TLS ClientHello, and the start of an HTTP request.
            for first, logged in ((b"\x16\x03\x01\x00\x50\x01\x00", "no complete TLS handshake in time"),
                                  (b"GET /lstp HTTP/1.1\r\nHost: x\r\n", "no complete HTTP request in time")):
                with self.subTest(logged=logged):
                    s = socket.create_connection(("127.0.0.1", mport))
                    s.sendall(first)
                    s.settimeout(10)
                    try:
                        rest = s.recv(4096)
                        while rest:  # whatever it answers, it then closes
                            rest = s.recv(4096)
                    except ConnectionResetError:
                        pass
                    m.wait_for_log(logged)
                    s.close()
            # And it still pairs tunnels.
            _, srv, _ = w.end("srv", "server", mport)
            srv.wait_for_log("waiting for the other end")
            self.pair_and_carry(w, mport, "it")

    def test_the_oldest_opener_is_dropped_for_a_newcomer(self):
        with World() as w:
            mport, m, _ = w.middle("m1", extra="limits:\n  setup_timeout: 60s\n  max_openings: 3\n")
            silent = [socket.create_connection(("127.0.0.1", mport)) for _ in range(3)]
            m.wait_for_log(r"\"m1\" listening")
            import time
            time.sleep(0.5)  # all three accepted and waiting for a first byte
            newcomer = socket.create_connection(("127.0.0.1", mport))
            # The oldest is closed now, long before its 60 s setup timeout...
            silent[0].settimeout(10)
            try:
                self.assertEqual(silent[0].recv(16), b"")
            except ConnectionResetError:
                pass
            m.wait_for_log(r"1 connection\(s\) that had not finished their opening were dropped for newer ones")
            # ...the others are still open.
            for s in silent[1:] + [newcomer]:
                s.settimeout(0.5)
                with self.assertRaises(socket.timeout):
                    s.recv(16)
            for s in silent + [newcomer]:
                s.close()

    def test_a_lonely_setup_waits_only_waiting_timeout(self):
        with World() as w:
            mport, m, _ = w.middle("m1", extra=LIMITS)
            _, srv, _ = w.end("srv", "server", mport)
            m.wait_for_log("waits for its partner")
            m.wait_for_log("refused: no partner arrived in time", timeout=10)
            srv.wait_for_log("the middle proxy refused the setup: no partner arrived in time")

    def test_a_full_waiting_list_refuses_only_the_newcomer(self):
        with World() as w:
            mport, m, _ = w.middle("m1", extra="limits:\n  max_waiting: 1\n")
            _, first, _ = w.end("first", "server", mport, tunnel="one")
            m.wait_for_log("waits for its partner")
            _, second, _ = w.end("second", "server", mport, tunnel="two")
            second.wait_for_log("too many setups waiting here")
            # The waiting one is undisturbed and pairs when its partner comes.
            self.pair_and_carry(w, mport, "one")

    def test_one_source_holds_only_its_share_of_the_waiting_list(self):
        with World() as w:
            mport, m, _ = w.middle("m1", extra="limits:\n  max_waiting: 100\n  max_waiting_per_source: 1\n")
            _, first, _ = w.end("first", "server", mport, tunnel="one")
            m.wait_for_log("waits for its partner")
            _, second, _ = w.end("second", "server", mport, tunnel="two")
            second.wait_for_log(r"too many setups waiting from 127\.0\.0\.1 \(1\)")
            m.wait_for_log(r"too many setups waiting from 127\.0\.0\.1 \(1\)")
            # A partner pairs even from that source: only waiting is limited.
            self.pair_and_carry(w, mport, "one")


if __name__ == "__main__":
    unittest.main()
