"""Hostile relays and hostile bytes against the real binaries (issue 6): a
middle that alters one byte, a capture of the middle's links, random bytes at
the SOCKS port and random bytes from a "middle". Each harms only the one
connection it arrives on."""
import os
import socket
import struct
import threading
import time
import unittest

from lstp_world import Relay, SocksError, World, echo_once, socks_connect, recv_exact

# The firehose's stream: byte k is k % 251.
PATTERN = bytes(i % 251 for i in range(251 * 256))


def pattern_prefix(n):
    return (PATTERN * (n // len(PATTERN) + 1))[:n]


class Capture:
    """Every TCP payload on loopback to or from `ports`, read with a raw packet
    socket (needs root), as a sniffer on the middle's host would see it."""

    def __init__(self, ports):
        self.ports = set(ports)
        self.payloads = []  # (source port, destination port, bytes)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
        so_rcvbufforce = 33  # Linux; not exported by the socket module
        self.sock.setsockopt(socket.SOL_SOCKET, so_rcvbufforce, 256 << 20)
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped:
            try:
                frame, addr = self.sock.recvfrom(1 << 17)
            except socket.timeout:
                continue
            except OSError:
                return
            # Loopback shows every packet twice: going out and coming in.
            if addr[2] == socket.PACKET_OUTGOING or len(frame) < 34 or frame[12:14] != b"\x08\x00":
                continue
            ip = frame[14:]
            if ip[9] != 6:  # TCP
                continue
            header = (ip[0] & 0x0F) * 4
            total = struct.unpack(">H", ip[2:4])[0]
            tcp = ip[header:total]
            sport, dport = struct.unpack(">HH", tcp[:4])
            data = tcp[(tcp[12] >> 4) * 4:]
            if data and (sport in self.ports or dport in self.ports):
                self.payloads.append((sport, dport, bytes(data)))

    def close(self):
        self.stopped = True
        self.thread.join()
        self.sock.close()

    def streams(self, port):
        """Each direction of each connection on `port`, reassembled in order."""
        out = {}
        for sport, dport, data in self.payloads:
            if port in (sport, dport):
                out.setdefault((sport, dport), bytearray()).extend(data)
        return out


def read_until_closed(s, timeout=30.0):
    """Everything the app receives until its connection ends (EOF or reset)."""
    s.settimeout(timeout)
    got = bytearray()
    while True:
        try:
            chunk = s.recv(1 << 16)
        except ConnectionResetError:
            return bytes(got), "reset"
        if not chunk:
            return bytes(got), "eof"
        got.extend(chunk)


class HostileTest(unittest.TestCase):
    def test_a_capture_of_the_middles_links_never_shows_the_data(self):
        marker = os.urandom(16)
        data = marker * (4 * 1024 * 1024 // len(marker))
        with World() as w:
            sport = w.tunnel()
            sink = w.servers.sink()
            cap = Capture([w.mport, sport])
            try:
                s, _ = socks_connect(sport, "127.0.0.1", sink)
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                reply, _ = read_until_closed(s)
                s.close()
                time.sleep(0.3)
            finally:
                cap.close()
            self.assertEqual(reply.split()[1], str(len(data)).encode())
            middle = cap.streams(w.mport)
            seen = sum(len(v) for v in middle.values())
            print(f"\ncaptured_middle_link_bytes={seen}")
            # Both of the middle's links carried the data (in and out)...
            self.assertGreater(seen, 1.5 * len(data))
            # ...and the capture works: the app's own link shows it in the clear.
            self.assertTrue(any(marker in v for v in cap.streams(sport).values()))
            for (a, b), stream in middle.items():
                self.assertNotIn(marker, stream, f"the marker crossed {a} -> {b} in the clear")

    @staticmethod
    def _flip_once_at(at):
        flipped = []

        def flip_one(to_middle, offset, data):
            if to_middle and not flipped and offset + len(data) > at:
                i = at - offset
                data = data[:i] + bytes([data[i] ^ 0x20]) + data[i + 1:]
                flipped.append(at)
            return data
        return flipped, flip_one

    def test_a_middle_that_flips_one_byte_costs_the_hop_never_the_data(self):
        # With resumption (the default): the altered record is refused, the
        # hop is dropped, the ends resume, and the download goes on intact.
        with World() as w:
            mport, w.m, _ = w.middle("m1")
            flipped, flip_one = self._flip_once_at(2 * 1024 * 1024)
            relay = Relay(mport, tamper=flip_one)  # the server end's hop passes through it
            try:
                _, w.s, _ = w.end("srv", "server", relay.port)
                sport, w.c, _ = w.end("cli", "client", mport)
                w.c.wait_for_log(r"tunnel it up")
                s, _ = socks_connect(sport, "127.0.0.1", w.servers.firehose("flip"))
                s.settimeout(30)
                want = 8 * 1024 * 1024
                got = recv_exact(s, want)
                s.close()
                self.assertTrue(flipped, "the download ended before the flip")
                self.assertEqual(got, pattern_prefix(want))
                w.c.wait_for_log(r"a record failed authentication \(altered on the way\?\)")
                w.c.wait_for_log(r"tunnel it resumed after")
                self.assertEqual(w.c.log().count("tunnel it up ("), 1)
            finally:
                relay.close()

    def test_a_middle_that_flips_one_byte_breaks_the_tunnel_never_the_data(self):
        # Without resumption: the tunnel closes, the app is reset, and a new
        # tunnel comes up.
        off = "limits:\n  resumption: off\n"
        with World() as w:
            mport, w.m, _ = w.middle("m1")
            flipped, flip_one = self._flip_once_at(2 * 1024 * 1024)
            relay = Relay(mport, tamper=flip_one)  # the server end's hop passes through it
            try:
                _, w.s, _ = w.end("srv", "server", relay.port, extra=off)
                sport, w.c, _ = w.end("cli", "client", mport, extra=off)
                w.c.wait_for_log(r"tunnel it up")
                s, _ = socks_connect(sport, "127.0.0.1", w.servers.firehose("flip"))
                got, how = read_until_closed(s)
                s.close()
                print(f"\nbytes_before_the_close={len(got)} ({how})")
                self.assertTrue(flipped, "the download ended before the flip")
                # The app saw its connection end, and every byte it got is right.
                self.assertGreater(len(got), 0)
                self.assertEqual(got, pattern_prefix(len(got)))
                w.c.wait_for_log(r"a record failed authentication \(altered on the way\?\)")
                # The tunnel comes back (the relay no longer alters anything).
                w.c.wait_for_log(r"tunnel it up", count=2, timeout=30)
            finally:
                relay.close()

    def test_random_bytes_at_the_socks_port_close_only_that_connection(self):
        with World() as w:
            sport = w.tunnel()
            echo = w.servers.echo()
            busy, _ = socks_connect(sport, "127.0.0.1", echo)  # a channel in use throughout
            for first in (0x05, 0x04, 0x00, 0x47, 0xFF) * 4:
                junk = socket.create_connection(("127.0.0.1", sport))
                try:
                    junk.sendall(bytes([first]) + os.urandom(4096))
                    junk.shutdown(socket.SHUT_WR)
                except OSError:
                    pass  # already refused and closed
                read_until_closed(junk, timeout=15)  # it is closed, not left hanging
                junk.close()
                busy.sendall(b"ping")
                self.assertEqual(recv_exact(busy, 4), b"ping")
            busy.close()
            self.assertIsNone(w.c.proc.poll())
            w.c.wait_for_log(r"bad greeting")
            # New clients are served as before.
            s, _ = socks_connect(sport, "127.0.0.1", echo)
            s.sendall(b"after")
            self.assertEqual(recv_exact(s, 5), b"after")
            s.close()

    def test_half_a_socks_greeting_or_request_is_dropped_after_the_socks_timeout(self):
        with World() as w:  # socks.timeout is 3 s in these worlds
            sport = w.tunnel()
            half_greeting = b"\x05\x02\x00"  # two methods announced, one sent
            half_request = b"\x05\x01\x00" + b"\x05\x01\x00\x03\x20intra"  # a name cut short
            for first, logged in ((half_greeting, "no greeting in time"),
                                  (half_request, "no complete request in time")):
                s = socket.create_connection(("127.0.0.1", sport))
                s.sendall(first)
                read_until_closed(s, timeout=15)  # dropped, not held
                s.close()
                w.c.wait_for_log(logged)
            echo_once(self, w, sport, b"still")

    def test_the_oldest_socks_opener_is_dropped_for_a_newcomer(self):
        with World() as w:
            mport, _, _ = w.middle("m1")
            _, srv, _ = w.end("srv", "server", mport)
            sport, _, path = w.end("cli", "client", mport, extra="limits:\n  max_openings: 3\n", start=False)
            # A long greeting timeout, so only the eviction can close a silent client soon.
            with open(path) as f:
                text = f.read().replace("  timeout: 3s\n", "  timeout: 60s\n")
            with open(path, "w") as f:
                f.write(text)
            cli = w.start("cli", ["endproxy", "-c", path])
            cli.wait_for_log("tunnel it up")
            silent = [socket.create_connection(("127.0.0.1", sport)) for _ in range(3)]
            time.sleep(0.3)
            # A real client gets through; the oldest silent one makes room.
            echo_once(self, w, sport, b"in")
            cli.wait_for_log(r"1 SOCKS client\(s\) that had not finished their greeting were dropped for newer ones")
            self.assertEqual(read_until_closed(silent[0], timeout=10)[0], b"")
            for c in silent:
                c.close()

    def test_an_end_fed_random_bytes_by_its_middle_logs_it_and_keeps_serving(self):
        fake = socket.socket()
        fake.bind(("127.0.0.1", 0))
        fake.listen(16)
        served = []

        def serve():
            while True:
                try:
                    c, _ = fake.accept()
                except OSError:
                    return
                c.recv(65536)  # the end's setup
                c.sendall(os.urandom(64 * 1024))
                served.append(c)  # held open: the end must close it itself
        threading.Thread(target=serve, daemon=True).start()
        try:
            with World() as w:
                sport, cli, _ = w.end("cli", "client", fake.getsockname()[1])
                cli.wait_for_log(r"bad setup from the middle proxy|the middle proxy refused the setup", timeout=20)
                self.assertIsNone(cli.proc.poll())
                # Its SOCKS port still answers: "general failure", the tunnel is down.
                with self.assertRaises(SocksError) as refused:
                    socks_connect(sport, "127.0.0.1", 9, timeout=20)
                self.assertEqual(refused.exception.code, 1)
                # It tries again, and meets the same garbage without harm.
                cli.wait_for_log(r"bad setup from the middle proxy|the middle proxy refused the setup",
                                 count=2, timeout=30)
                self.assertIsNone(cli.proc.poll())
        finally:
            fake.close()
            for c in served:
                c.close()


if __name__ == "__main__":
    unittest.main()
