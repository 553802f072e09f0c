"""Multiplexing and flow control through the real binaries."""
import os
import re
import socket
import threading
import time
import unittest

from lstp_world import SANITIZED, Relay, World, socks_connect, recv_exact



class FlowTest(unittest.TestCase):
    def test_a_stalled_reader_pauses_only_its_channel(self):
        with World() as w:
            sport = w.tunnel()
            hose = w.servers.firehose("stalled")
            echo = w.servers.echo()
            stalled, _ = socks_connect(sport, "127.0.0.1", hose)
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            # The app never reads `stalled`. Meanwhile another channel of the
            # same tunnel keeps answering.
            other, _ = socks_connect(sport, "127.0.0.1", echo)
            for i in range(200):
                msg = os.urandom(1024)
                other.sendall(msg)
                self.assertEqual(recv_exact(other, len(msg)), msg, f"round trip {i}")
            # Let the firehose push as hard as it can while nobody reads.
            time.sleep(2)
            sent = w.servers.firehose_sent["stalled"]
            time.sleep(1)
            later = w.servers.firehose_sent["stalled"]
            print(f"\nstalled_channel_bytes_in_flight={sent} (taken from the firehose before it stopped)")
            # It is stopped: PAUSE reached the server end, which stopped reading.
            self.assertEqual(sent, later)
            # What is held on the way is bounded: the high watermark (256 KiB)
            # plus socket buffers on each hop, far from the gigabytes an
            # unpaused firehose would push in 3 s.
            self.assertLess(sent, 32 * 1024 * 1024)
            # Now read: the stream resumes and is intact (byte k is k % 251).
            got = recv_exact(stalled, sent + 1024 * 1024)
            pattern = bytes(i % 251 for i in range(251 * 256))
            whole = pattern * (len(got) // len(pattern) + 1)
            self.assertEqual(got, whole[:len(got)])
            stalled.close()
            other.close()

    def test_credit_window_grows_on_a_long_path_and_not_on_a_short_one(self):
        """Credit windows (PROTOCOL.md 5.4): a window sized for loopback would
        starve a path with a 40 ms round trip; it must grow there, to keep
        the path full, while a trickle on loopback keeps the first window."""
        with World() as w:
            mport, w.m, _ = w.middle("m1")
            _, w.s, _ = w.end("srv", "server", mport)
            relay = Relay(mport, delay=0.020)
            try:
                sport, w.c, _ = w.end("cli", "client", relay.port)
                w.c.wait_for_log(r"tunnel it up", timeout=30)
                hose = w.servers.firehose("far")
                s, _ = socks_connect(sport, "127.0.0.1", hose)
                got = recv_exact(s, 24 * 1024 * 1024)
                pattern = bytes(i % 251 for i in range(251 * 256))
                self.assertEqual(got[:len(pattern)], pattern)
                s.close()
                w.c.wait_for_log(r"closed after .* \(credit window \d+ KiB\)")
                window = int(re.search(r"credit window (\d+) KiB", w.c.log()).group(1))
                print(f"\nlong_path_window_kib={window}")
                self.assertGreaterEqual(window, 1024)
                # A 64-byte exchange never needs more than the first window.
                echo = w.servers.echo()
                e, _ = socks_connect(sport, "127.0.0.1", echo)
                for _ in range(5):
                    e.sendall(b"k" * 64)
                    self.assertEqual(recv_exact(e, 64), b"k" * 64)
                e.close()
                w.c.wait_for_log(r"closed after .* 320 bytes received \(credit window 256 KiB\)")
            finally:
                relay.close()

    def test_idle_channel_memory(self):
        """Measures what an idle channel costs at both ends (printed for the report)."""
        with World() as w:
            sport = w.tunnel()
            echo = w.servers.echo()
            warm = [socks_connect(sport, "127.0.0.1", echo)[0] for _ in range(50)]
            base = w.c.rss_kib() + w.s.rss_kib()
            n = 2000
            socks = [socks_connect(sport, "127.0.0.1", echo)[0] for _ in range(n)]
            time.sleep(0.5)
            after = w.c.rss_kib() + w.s.rss_kib()
            per_channel = (after - base) * 1024 / n
            print(f"\nidle_channel_bytes={per_channel:.0f} (client end + server end, {n} channels)")
            # A read buffer per idle channel would cost 2 x 64 KiB; we hold none.
            # (Sanitizers add their own bookkeeping to every allocation.)
            self.assertLess(per_channel, (64 if SANITIZED else 16) * 1024)
            # All still work.
            for s in socks[:20] + warm[:5]:
                s.sendall(b"x")
                self.assertEqual(recv_exact(s, 1), b"x")
            for s in socks + warm:
                s.close()


if __name__ == "__main__":
    unittest.main()
