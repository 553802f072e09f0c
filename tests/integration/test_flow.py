"""Multiplexing and flow control through the real binaries."""
import os
import socket
import threading
import time
import unittest

from lstp_world import SANITIZED, World, socks_connect, recv_exact


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
