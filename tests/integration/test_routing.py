"""Many tunnels in one client end, chosen per request by routing rules
(issue 4, point 4): by domain suffix, by CIDR, by a name suffix such as
host.<tunnel>.lstp, direct routes, and the refusal of what no route takes."""
import os
import socket
import struct
import threading
import unittest

from lstp_world import World, SocksError, socks_connect, recv_exact, SECRET

OTHER_SECRET = "a-different-secret-for-lab-c-0123456789"


class RoutingTest(unittest.TestCase):
    def world(self, w, default_route):
        mport, w.m, _ = w.middle("m1")
        _, srv_a, _ = w.end("srv-a", "server", mport, tunnel="corp-a")
        _, srv_c, _ = w.end("srv-c", "server", mport, tunnel="lab-c", secret=OTHER_SECRET)
        a_secret = w._write("a.secret", SECRET + "\n")
        c_secret = w._write("c.secret", OTHER_SECRET + "\n")
        from lstp_world import free_port
        sport = free_port()
        text = (f"name: laptop\nrole: client\n"
                f"tunnels:\n"
                f"  - name: corp-a\n    secret_file: {a_secret}\n    middle: 127.0.0.1:{mport}\n    retry_interval: 200ms\n"
                f"  - name: lab-c\n    secret_file: {c_secret}\n    middle: 127.0.0.1:{mport}\n    retry_interval: 200ms\n"
                f"routes:\n"
                f"  - match: [\"*.lab-c.example\", 127.0.0.2]\n    via: lab-c\n"
                f"  - match: 127.0.0.3\n    via: direct\n"
                f"  - match: 127.0.0.1\n    via: corp-a\n"
                f"default_route: {default_route}\n"
                f"socks:\n  listen: 127.0.0.1:{sport}\n  timeout: 3s\nlog_level: debug\n")
        path = w._write("laptop.yaml", text)
        cli = w.start("laptop", ["endproxy", "-c", path])
        cli.wait_for_log("tunnel corp-a up")
        cli.wait_for_log("tunnel lab-c up")
        return sport, cli, srv_a, srv_c

    def echo_through(self, sport, host, port):
        s, _ = socks_connect(sport, host, port)
        s.sendall(b"ping")
        self.assertEqual(recv_exact(s, 4), b"ping")
        s.close()

    def test_routes_choose_the_tunnel(self):
        with World() as w:
            sport, cli, srv_a, srv_c = self.world(w, "refuse")
            echo1 = w.servers.echo("127.0.0.1")
            echo2 = w.servers.echo("127.0.0.2")
            echo3 = w.servers.echo("127.0.0.3")
            # By CIDR: 127.0.0.1 to corp-a, 127.0.0.2 to lab-c.
            self.echo_through(sport, "127.0.0.1", echo1)
            srv_a.wait_for_log(rf"tunnel corp-a channel \d+ \(127\.0\.0\.1:{echo1}\): connected")
            self.echo_through(sport, "127.0.0.2", echo2)
            srv_c.wait_for_log(rf"tunnel lab-c channel \d+ \(127\.0\.0\.2:{echo2}\): connected")
            # By domain suffix: the name goes to lab-c's server end, which
            # resolves it in its network (here it does not exist: reply 4).
            with self.assertRaises(SocksError) as e:
                socks_connect(sport, "db.lab-c.example", 80)
            self.assertEqual(e.exception.code, 4)
            srv_c.wait_for_log(r"tunnel lab-c channel \d+ \(db\.lab-c\.example:80\): connect to db\.lab-c\.example:80 failed")
            # By name suffix: localhost.corp-a.lstp is "localhost" at corp-a's end.
            self.echo_through(sport, "localhost.corp-a.lstp", echo1)
            srv_a.wait_for_log(rf"tunnel corp-a channel \d+ \(localhost:{echo1}\): connected")
            self.echo_through(sport, "127.0.0.2.lab-c.lstp", echo2)
            srv_c.wait_for_log(rf"tunnel lab-c channel \d+ \(127\.0\.0\.2:{echo2}\): connected", count=2)
            # Direct: the client end connects itself.
            self.echo_through(sport, "127.0.0.3", echo3)
            cli.wait_for_log(rf"direct \(127\.0\.0\.3:{echo3}\): SOCKS5 CONNECT from .* ok")
            self.assertNotIn("127.0.0.3", srv_a.log() + srv_c.log())
            # What no route takes is refused with 0x02, before any tunnel.
            with self.assertRaises(SocksError) as e:
                socks_connect(sport, "192.0.2.1", 80)
            self.assertEqual(e.exception.code, 2)
            cli.wait_for_log(r"CONNECT 192\.0\.2\.1:80 refused: no route leads there \(the default route is refuse\)")
            self.assertNotIn("192.0.2.1", srv_a.log() + srv_c.log())

    def test_a_direct_route_passes_a_reset_on_as_a_reset(self):
        with World() as w:
            sport, cli, _, _ = self.world(w, "refuse")
            # A destination on the direct route that resets the connection.
            listener = socket.socket()
            listener.bind(("127.0.0.3", 0))
            listener.listen(1)
            port = listener.getsockname()[1]

            def reset_one():
                conn, _ = listener.accept()
                conn.recv(4)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            t = threading.Thread(target=reset_one)
            t.start()
            s, _ = socks_connect(sport, "127.0.0.3", port)
            s.sendall(b"ping")
            t.join(timeout=10)
            s.settimeout(10)
            # The app sees the break, never a clean end of stream.
            with self.assertRaises(ConnectionResetError):
                while s.recv(1024):
                    pass
            s.close()
            listener.close()

    def test_udp_datagrams_are_routed_one_by_one(self):
        from test_bind_udp import DnsServer, socks5_request, udp_header, parse_udp_header, dns_query, dns_answer_a
        import socket
        with World() as w:
            sport, cli, srv_a, srv_c = self.world(w, "refuse")
            dns_a = DnsServer({"a.corp": "10.0.0.1"}, host="127.0.0.1")
            dns_c = DnsServer({"c.lab": "172.16.0.1"}, host="127.0.0.2")
            try:
                # No default tunnel: the association opens a channel in a
                # tunnel when its first datagram for that tunnel comes.
                ctl, (rep, host, port) = socks5_request(sport, 3, "0.0.0.0", 0)
                self.assertEqual(rep, 0)
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                u.settimeout(10)
                for qid, (dns_host, dns, name, want) in enumerate(
                        [("127.0.0.1", dns_a, "a.corp", "10.0.0.1"), ("127.0.0.2", dns_c, "c.lab", "172.16.0.1"),
                         ("127.0.0.2.lab-c.lstp", dns_c, "c.lab", "172.16.0.1")]):
                    if "lstp" in dns_host:
                        header = b"\x00\x00\x00\x03" + bytes([len(dns_host)]) + dns_host.encode() + dns.port.to_bytes(2, "big")
                    else:
                        header = udp_header(dns_host, dns.port)
                    u.sendto(header + dns_query(name, qid), (host, port))
                    _, _, payload = parse_udp_header(u.recvfrom(4096)[0])
                    self.assertEqual(dns_answer_a(payload), (qid, want))
                self.assertEqual(len(dns_a.queries), 1)
                self.assertEqual(len(dns_c.queries), 2)
                srv_a.wait_for_log(r"tunnel corp-a channel \d+ \(UDP for 0\.0\.0\.0:0\): relaying")
                srv_c.wait_for_log(r"tunnel lab-c channel \d+ \(UDP for 0\.0\.0\.0:0\): relaying")
                # What no route takes is dropped at the client end.
                u.sendto(udp_header("192.0.2.1", 53) + dns_query("x", 9), (host, port))
                cli.wait_for_log(r"datagram dropped: no route leads to 192\.0\.2\.1:53")
                ctl.close()
                cli.wait_for_log(r"UDP association ended \(the app closed its control connection\); "
                                 r"datagrams out 3, back 3, dropped 1")
                srv_a.wait_for_log(r"association ended")
                srv_c.wait_for_log(r"association ended")
                u.close()
            finally:
                dns_a.close()
                dns_c.close()

    def test_the_default_route_takes_the_rest(self):
        with World() as w:
            sport, cli, srv_a, srv_c = self.world(w, "lab-c")
            echo = w.servers.echo("127.0.0.4")
            self.echo_through(sport, "127.0.0.4", echo)
            srv_c.wait_for_log(rf"tunnel lab-c channel \d+ \(127\.0\.0\.4:{echo}\): connected")

    def test_a_tunnel_down_does_not_hold_the_others(self):
        with World() as w:
            sport, cli, srv_a, srv_c = self.world(w, "refuse")
            echo1 = w.servers.echo("127.0.0.1")
            echo2 = w.servers.echo("127.0.0.2")
            srv_c.stop()
            cli.wait_for_log("tunnel lab-c closed")
            with self.assertRaises(SocksError) as e:
                socks_connect(sport, "127.0.0.2", echo2)
            self.assertEqual(e.exception.code, 1)
            self.echo_through(sport, "127.0.0.1", echo1)


if __name__ == "__main__":
    unittest.main()
