"""SOCKS BIND and UDP ASSOCIATE through the tunnel (issue 4, points 1, 5, 6):
a BIND exchange driven by our own client (SOCKS5 and SOCKS4), a DNS query
over UDP ASSOCIATE against a DNS server on the far side, and the policy
refusing both where it should."""
import os
import socket
import struct
import threading
import time
import unittest

from lstp_world import World, read_socks5_reply, recv_exact, ipv6_loopback_works


def socks_address(host):
    try:
        return b"\x01" + socket.inet_aton(host)
    except OSError:
        pass
    try:
        return b"\x04" + socket.inet_pton(socket.AF_INET6, host)
    except OSError:
        return b"\x03" + bytes([len(host)]) + host.encode()


def socks5_request(sport, cmd, host, port, timeout=20):
    """Greeting and one request; returns the socket and the first reply."""
    s = socket.create_connection(("127.0.0.1", sport), timeout=timeout)
    s.sendall(b"\x05\x01\x00")
    assert recv_exact(s, 2) == b"\x05\x00"
    addr = socks_address(host)
    s.sendall(b"\x05" + bytes([cmd]) + b"\x00" + addr + struct.pack(">H", port))
    return s, read_socks5_reply(s)


# ------------------------------------------------------------------ DNS

def dns_query(name, qid=0x1234):
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack(">HH", 1, 1)


def dns_answer_a(reply):
    """The first A record's address in a DNS reply."""
    qid, flags, qd, an, _, _ = struct.unpack(">HHHHHH", reply[:12])
    pos = 12
    for _ in range(qd):
        while reply[pos]:
            pos += reply[pos] + 1
        pos += 5
    for _ in range(an):
        if reply[pos] & 0xC0 == 0xC0:
            pos += 2
        else:
            while reply[pos]:
                pos += reply[pos] + 1
            pos += 1
        rtype, _, _, rdlen = struct.unpack(">HHIH", reply[pos:pos + 10])
        pos += 10
        if rtype == 1:
            return qid, socket.inet_ntoa(reply[pos:pos + rdlen])
        pos += rdlen
    return qid, None


class DnsServer:
    """A tiny authoritative DNS server on UDP loopback: answers A queries for
    names in `zone`, NXDOMAIN otherwise. It stands for the far network's DNS."""

    def __init__(self, zone, host="127.0.0.1"):
        self.zone = zone
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.queries = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            qid, flags, qd = struct.unpack(">HHH", data[:6])
            pos, labels = 12, []
            while data[pos]:
                labels.append(data[pos + 1:pos + 1 + data[pos]].decode())
                pos += data[pos] + 1
            name = ".".join(labels)
            self.queries.append((name, peer))
            question = data[12:pos + 5]
            if name in self.zone:
                answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(self.zone[name])
                out = struct.pack(">HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + answer
            else:
                out = struct.pack(">HHHHHH", qid, 0x8183, 1, 0, 0, 0) + question
            self.sock.sendto(out, peer)

    def close(self):
        self.sock.close()


def udp_header(host, port):
    return b"\x00\x00\x00" + socks_address(host) + struct.pack(">H", port)


def parse_udp_header(d):
    assert d[:3] == b"\x00\x00\x00", d[:3]
    if d[3] == 4:
        return socket.inet_ntop(socket.AF_INET6, d[4:20]), struct.unpack(">H", d[20:22])[0], d[22:]
    assert d[3] == 1
    return socket.inet_ntoa(d[4:8]), struct.unpack(">H", d[8:10])[0], d[10:]


class BindTest(unittest.TestCase):
    def test_bind_exchange_socks5(self):
        with World() as w:
            sport = w.tunnel()
            # The app (an FTP client in active mode, say) asks the far side to
            # listen for a peer from 127.0.0.1.
            app, (rep, host, port) = socks5_request(sport, 2, "127.0.0.1", 0)
            self.assertEqual(rep, 0)
            self.assertEqual(host, "127.0.0.1")  # where the server end listens, inside its network
            self.assertNotEqual(port, 0)
            # The peer (the FTP server) connects to that address over there.
            peer = socket.create_connection((host, port), timeout=10)
            rep2, phost, pport = read_socks5_reply(app)
            self.assertEqual(rep2, 0)
            self.assertEqual((phost, pport), peer.getsockname())  # the second reply names the peer
            peer.sendall(b"150 data follows\r\n")
            self.assertEqual(recv_exact(app, 18), b"150 data follows\r\n")
            app.sendall(b"thanks")
            self.assertEqual(recv_exact(peer, 6), b"thanks")
            peer.shutdown(socket.SHUT_WR)
            self.assertEqual(app.recv(10), b"")  # the peer's EOF crosses as FIN
            app.close()
            self.assertEqual(peer.recv(10), b"")
            w.s.wait_for_log(r"BIND for 127\.0\.0\.1:0\): peer 127\.0\.0\.1:\d+ connected")
            w.c.wait_for_log(r"SOCKS5 BIND from .* ok, bound 127\.0\.0\.1:\d+")

    def test_bind_exchange_socks4(self):
        with World() as w:
            sport = w.tunnel()
            app = socket.create_connection(("127.0.0.1", sport), timeout=20)
            app.sendall(b"\x04\x02" + struct.pack(">H", 21) + socket.inet_aton("127.0.0.1") + b"me\0")
            first = recv_exact(app, 8)
            self.assertEqual(first[:2], b"\x00\x5a")
            port = struct.unpack(">H", first[2:4])[0]
            self.assertEqual(socket.inet_ntoa(first[4:8]), "127.0.0.1")
            peer = socket.create_connection(("127.0.0.1", port), timeout=10)
            second = recv_exact(app, 8)
            self.assertEqual(second[:2], b"\x00\x5a")
            self.assertEqual(struct.unpack(">H", second[2:4])[0], peer.getsockname()[1])
            peer.sendall(b"four")
            self.assertEqual(recv_exact(app, 4), b"four")
            app.close()
            peer.close()

    @unittest.skipUnless(ipv6_loopback_works(), "needs IPv6 on loopback")
    def test_bind_over_ipv6(self):
        with World() as w:
            sport = w.tunnel()
            app, (rep, host, port) = socks5_request(sport, 2, "::1", 0)
            self.assertEqual((rep, host), (0, "::1"))
            peer = socket.create_connection(("::1", port), timeout=10)
            rep2, phost, pport = read_socks5_reply(app)
            self.assertEqual((rep2, phost, pport), (0, "::1", peer.getsockname()[1]))
            peer.sendall(b"six")
            self.assertEqual(recv_exact(app, 3), b"six")
            app.close()
            peer.close()

    def test_bind_takes_only_the_expected_peer(self):
        with World() as w:
            sport = w.tunnel()
            app, (rep, host, port) = socks5_request(sport, 2, "127.0.0.2", 0)
            self.assertEqual(rep, 0)
            # 127.0.0.1 is not the peer the app named: turned away, still waiting.
            stranger = socket.create_connection((host, port), timeout=10)
            self.assertEqual(stranger.recv(10), b"")
            stranger.close()
            w.s.wait_for_log(r"closed a connection from 127\.0\.0\.1:\d+, not the expected peer")
            peer = socket.socket()
            peer.bind(("127.0.0.2", 0))
            peer.connect((host, port))
            rep2, phost, _ = read_socks5_reply(app)
            self.assertEqual((rep2, phost), (0, "127.0.0.2"))
            peer.sendall(b"ok")
            self.assertEqual(recv_exact(app, 2), b"ok")
            app.close()
            peer.close()

    def test_bind_refused_by_policy_and_timed_out(self):
        with World() as w:
            mport, w.m, _ = w.middle("m1")
            _, w.s, _ = w.end("srv", "server", mport,
                              server_extra=World.LOOPBACK_ONLY + "  deny:\n    - 127.0.0.3\n  bind_timeout: 1s\n")
            sport, w.c, _ = w.end("cli", "client", mport)
            w.c.wait_for_log("tunnel it up")
            for host in ("192.0.2.1", "127.0.0.3"):
                with self.subTest(host=host):
                    app, (rep, _, _) = socks5_request(sport, 2, host, 0)
                    self.assertEqual(rep, 2)
                    app.close()
            w.s.wait_for_log(r"BIND for 127\.0\.0\.3:0\): refused by policy \(127\.0\.0\.3: deny rule \"127\.0\.0\.3\"\)")
            # No peer within bind_timeout: the second reply is 0x06 (TTL expired / timed out).
            app, (rep, _, _) = socks5_request(sport, 2, "127.0.0.1", 0)
            self.assertEqual(rep, 0)
            rep2, _, _ = read_socks5_reply(app)
            self.assertEqual(rep2, 6)
            app.close()
            w.s.wait_for_log(r"no peer connected within 1 s")

    def test_bind_for_another_spelling_of_this_host_is_refused(self):
        # allow "*" with loopback denied (issue 15, point 4): a BIND whose
        # expected peer is loopback mapped into IPv6, inside a NAT64 or 6to4
        # address, or a name that resolves to loopback gets reply 0x02; a
        # BIND for any peer (0.0.0.0) turns away a peer from loopback.
        with World() as w:
            mport, w.m, _ = w.middle("m1")
            _, w.s, _ = w.end("srv", "server", mport,
                              server_extra="  allow: \"*\"\n  deny:\n    - 127.0.0.0/8\n    - \"::1\"\n"
                                           "  bind_timeout: 2s\n")
            sport, w.c, _ = w.end("cli", "client", mport)
            w.c.wait_for_log("tunnel it up")
            for host in ("::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1", "localhost", "127.0.0.1"):
                with self.subTest(host=host):
                    app, (rep, _, _) = socks5_request(sport, 2, host, 0)
                    self.assertEqual(rep, 2)
                    app.close()
            w.s.wait_for_log(r"BIND for .*\): refused by policy", count=5)
            app, (rep, host, port) = socks5_request(sport, 2, "0.0.0.0", 0)
            self.assertEqual(rep, 0)
            # The listener is on the server end's own address; this peer
            # comes from loopback.
            peer = socket.socket()
            peer.settimeout(10)
            peer.bind(("127.0.0.1", 0))
            peer.connect((host, port))
            w.s.wait_for_log(r"closed a connection from 127\.0\.0\.1:\d+: refused by policy")
            self.assertEqual(peer.recv(10), b"")
            peer.close()
            rep2, _, _ = read_socks5_reply(app)
            self.assertEqual(rep2, 6)  # no allowed peer came within bind_timeout
            app.close()

    def test_an_app_that_gives_up_ends_the_far_listener(self):
        with World() as w:
            sport = w.tunnel()
            app, (rep, host, port) = socks5_request(sport, 2, "127.0.0.1", 0)
            self.assertEqual(rep, 0)
            app.close()
            w.c.wait_for_log(r"BIND ended without a peer")
            # The listener over there is closed: nobody is accepted any more.
            w.s.wait_for_log(r"\(BIND\): stopped listening: the peer ended the channel")
            with self.assertRaises(OSError):
                socket.create_connection((host, port), timeout=5).recv(1)


class UdpAssociateTest(unittest.TestCase):
    def associate(self, sport):
        ctl, (rep, host, port) = socks5_request(sport, 3, "0.0.0.0", 0)
        self.assertEqual(rep, 0)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(10)
        return ctl, u, (host, port)

    def test_dns_query_over_udp_associate(self):
        with World() as w:
            sport = w.tunnel()
            dns = DnsServer({"intranet.corp": "10.1.2.3", "files.corp": "10.1.2.4"})
            try:
                ctl, u, relay = self.associate(sport)
                self.assertEqual(relay[0], "127.0.0.1")
                for qid, name, want in ((1, "intranet.corp", "10.1.2.3"), (2, "files.corp", "10.1.2.4"),
                                        (3, "nothing.corp", None)):
                    u.sendto(udp_header("127.0.0.1", dns.port) + dns_query(name, qid), relay)
                    src_host, src_port, payload = parse_udp_header(u.recvfrom(4096)[0])
                    self.assertEqual((src_host, src_port), ("127.0.0.1", dns.port))  # the reply's source
                    self.assertEqual(dns_answer_a(payload), (qid, want))
                # The far side's DNS saw the queries come from the server end's relay.
                self.assertEqual([q[0] for q in dns.queries], ["intranet.corp", "files.corp", "nothing.corp"])
                # Fragments are dropped (RFC 1928 lets a relay drop them).
                u.sendto(b"\x00\x00\x01\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", dns.port) +
                         dns_query("intranet.corp", 9), relay)
                u.settimeout(1)
                with self.assertRaises(socket.timeout):
                    u.recvfrom(4096)
                self.assertEqual(len(dns.queries), 3)
                # The association lives as long as the control connection.
                ctl.close()
                w.c.wait_for_log(r"UDP association ended \(the app closed its control connection\); "
                                 r"datagrams out 3, back 3, dropped 1")
                w.s.wait_for_log(r"association ended .*datagrams out 3, back 3")
                u.close()
            finally:
                dns.close()

    def test_the_relay_takes_datagrams_only_from_the_declared_port(self):
        # RFC 1928 7: DST of UDP ASSOCIATE is where the app will send from.
        # Declared as 0.0.0.0:P (the app's own host, port P), a datagram from
        # any other port of that host is dropped.
        with World() as w:
            sport = w.tunnel()
            dns = DnsServer({"intranet.corp": "10.1.2.3"})
            try:
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                u.bind(("127.0.0.1", 0))
                u.settimeout(10)
                ctl, (rep, host, port) = socks5_request(sport, 3, "0.0.0.0", u.getsockname()[1])
                self.assertEqual(rep, 0)
                relay = (host, port)
                other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                other.settimeout(1)
                other.sendto(udp_header("127.0.0.1", dns.port) + dns_query("intranet.corp", 7), relay)
                with self.assertRaises(socket.timeout):
                    other.recvfrom(4096)
                u.sendto(udp_header("127.0.0.1", dns.port) + dns_query("intranet.corp", 8), relay)
                _, _, payload = parse_udp_header(u.recvfrom(4096)[0])
                self.assertEqual(dns_answer_a(payload), (8, "10.1.2.3"))
                self.assertEqual([q[0] for q in dns.queries], ["intranet.corp"])  # only the declared port's query
                ctl.close()
                w.c.wait_for_log(r"UDP association ended .*datagrams out 1, back 1, dropped 1")
                u.close()
                other.close()
            finally:
                dns.close()

    @unittest.skipUnless(ipv6_loopback_works(), "needs IPv6 on loopback")
    def test_dns_over_ipv6(self):
        with World() as w:
            sport = w.tunnel()
            dns = DnsServer({"v6.corp": "10.6.6.6"}, host="::1")
            try:
                ctl, u, relay = self.associate(sport)
                u.sendto(udp_header("::1", dns.port) + dns_query("v6.corp", 66), relay)
                src_host, src_port, payload = parse_udp_header(u.recvfrom(4096)[0])
                self.assertEqual((src_host, src_port), ("::1", dns.port))
                self.assertEqual(dns_answer_a(payload), (66, "10.6.6.6"))
                ctl.close()
                u.close()
            finally:
                dns.close()

    def test_udp_by_name_and_the_policy(self):
        with World() as w:
            mport, w.m, _ = w.middle("m1")
            _, w.s, _ = w.end("srv", "server", mport, server_extra="  allow:\n    - 127.0.0.1\n    - localhost\n"
                                                                   "  deny:\n    - 127.0.0.2\n")
            sport, w.c, _ = w.end("cli", "client", mport)
            w.c.wait_for_log("tunnel it up")
            dns = DnsServer({"a.corp": "10.0.0.1"})
            try:
                ctl, u, relay = self.associate(sport)
                # A name, resolved at the server end.
                u.sendto(b"\x00\x00\x00\x03\x09localhost" + struct.pack(">H", dns.port) + dns_query("a.corp", 7), relay)
                src_host, src_port, payload = parse_udp_header(u.recvfrom(4096)[0])
                self.assertEqual(dns_answer_a(payload), (7, "10.0.0.1"))
                # Denied and not-allowed destinations are dropped and logged.
                for host in ("127.0.0.2", "192.0.2.1"):
                    u.sendto(udp_header(host, dns.port) + dns_query("a.corp", 8), relay)
                w.s.wait_for_log(r"datagram to 127\.0\.0\.2:\d+ refused by policy \(deny rule \"127\.0\.0\.2\"\)")
                w.s.wait_for_log(r"datagram to 192\.0\.2\.1:\d+ refused by policy \(no allow rule matches\)")
                # Only the app's own host may use the relay; a datagram from
                # elsewhere (here 127.0.0.5) is dropped.
                other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                other.bind(("127.0.0.5", 0))
                other.sendto(udp_header("127.0.0.1", dns.port) + dns_query("a.corp", 9), relay)
                other.close()
                u.sendto(udp_header("127.0.0.1", dns.port) + dns_query("a.corp", 10), relay)
                _, _, payload = parse_udp_header(u.recvfrom(4096)[0])
                self.assertEqual(dns_answer_a(payload)[0], 10)
                self.assertEqual(len(dns.queries), 2)
                ctl.close()
                u.close()
            finally:
                dns.close()

    def test_udp_to_another_spelling_of_this_host_is_refused(self):
        # allow "*" with loopback denied (issue 15, point 4): a datagram to
        # 0.0.0.0 (which would reach this host), to loopback mapped into
        # IPv6 or inside a NAT64 address, is dropped and logged; nothing
        # reaches the DNS server listening on loopback.
        with World() as w:
            mport, w.m, _ = w.middle("m1")
            _, w.s, _ = w.end("srv", "server", mport,
                              server_extra="  allow: \"*\"\n  deny:\n    - 127.0.0.0/8\n    - \"::1\"\n")
            sport, w.c, _ = w.end("cli", "client", mport)
            w.c.wait_for_log("tunnel it up")
            dns = DnsServer({"a.corp": "10.0.0.1"})
            try:
                ctl, u, relay = self.associate(sport)
                for i, host in enumerate(("0.0.0.0", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "127.0.0.1", "::",
                                          "localhost")):
                    u.sendto(udp_header(host, dns.port) + dns_query("a.corp", 20 + i), relay)
                w.s.wait_for_log(r"datagram to 0\.0\.0\.0:\d+ refused by policy \(unspecified \(0\.0\.0\.0/8\) addresses")
                w.s.wait_for_log(r"refused by policy \(deny rule \"127\.0\.0\.0/8\" \(embedded in the IPv6 address\)\)")
                w.s.wait_for_log(r"datagram to \[0:0:0:0:0:0:0:0\]:\d+ refused by policy \(unspecified \(::\)")
                w.s.wait_for_log(r"datagram to localhost:\d+ refused by policy")
                time.sleep(0.5)
                self.assertEqual(len(dns.queries), 0)
                ctl.close()
                u.close()
            finally:
                dns.close()

    def test_udp_refused_when_nothing_is_allowed(self):
        with World() as w:
            mport, w.m, _ = w.middle("m1")
            _, w.s, _ = w.end("srv", "server", mport, server_extra="  deny:\n    - 10.0.0.0/8\n")
            sport, w.c, _ = w.end("cli", "client", mport)
            w.c.wait_for_log("tunnel it up")
            ctl, (rep, _, _) = socks5_request(sport, 3, "0.0.0.0", 0)
            self.assertEqual(rep, 2)
            ctl.close()


if __name__ == "__main__":
    unittest.main()
