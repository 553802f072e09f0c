"""Ways out (issue 3) on loopback: WebSocket, through HTTP CONNECT
(tinyproxy) and SOCKS (Dante), the environment's proxy, the middle serving
every carrier on one port, and the adaptive choice remembered across starts."""
import hashlib
import os
import re
import socket
import threading
import subprocess
import time
import unittest

from lstp_world import World, free_port, socks_connect, recv_exact


def curl_through(socks_port, url):
    r = subprocess.run(["curl", "-sS", "--max-time", "30", "--socks5-hostname", f"127.0.0.1:{socks_port}", url],
                       capture_output=True)
    return r.returncode, r.stdout


def echo_once(socks_port, echo_port, payload=b"ping"):
    s, _ = socks_connect(socks_port, "127.0.0.1", echo_port)
    s.sendall(payload)
    got = recv_exact(s, len(payload))
    s.close()
    return got


def ways(*items):
    return "  ways:\n" + "".join(f"    - \"{i}\"\n" for i in items)


class WaysTest(unittest.TestCase):
    def serve_file(self, w):
        d = os.path.join(w.dir, "www")
        os.makedirs(d)
        with open(os.path.join(d, "index.html"), "wb") as f:
            f.write(b"behind the firewall\n")
        return w.servers.http_dir(d)

    def test_websocket_both_ends(self):
        with World() as w:
            mport, m, _ = w.middle("m1")
            w.end("srv", "server", mport, tunnel_extra=ways("ws"))
            sport, cli, _ = w.end("cli", "client", mport, tunnel_extra=ways("ws"))
            cli.wait_for_log("tunnel it up")
            cli.wait_for_log(r"connected to middle proxy 127\.0\.0\.1:\d+ by ws in")
            m.wait_for_log(r"\(websocket\) waits for its partner|paired .*\(websocket\)")
            web = self.serve_file(w)
            code, body = curl_through(sport, f"http://127.0.0.1:{web}/index.html")
            self.assertEqual((code, body), (0, b"behind the firewall\n"))
            # 8 MiB both ways through WebSocket framing on both hops.
            echo = w.servers.echo()
            data = os.urandom(8 << 20)
            s, _ = socks_connect(sport, "127.0.0.1", echo)
            s.sendall(data)
            self.assertEqual(recv_exact(s, len(data)), data)
            s.close()

    def test_tls_and_websocket_in_tls_on_the_same_port(self):
        with World() as w:
            mport, m, _ = w.middle("m1")
            w.end("srv", "server", mport, tunnel_extra=ways("tls"))
            sport, cli, _ = w.end("cli", "client", mport, tunnel_extra=ways("wss"))
            cli.wait_for_log("tunnel it up")
            cli.wait_for_log(r"by wss in")
            m.wait_for_log(r"\(tls\)")
            m.wait_for_log(r"\(tls\+websocket\)")
            echo = w.servers.echo()
            data = os.urandom(4 << 20)
            s, _ = socks_connect(sport, "127.0.0.1", echo)
            s.sendall(data)
            self.assertEqual(recv_exact(s, len(data)), data)
            s.close()
            # A browser that comes to the same port over HTTPS sees a web server.
            r = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                                f"https://127.0.0.1:{mport}/"], capture_output=True)
            self.assertEqual(r.stdout, b"404")

    def test_the_outer_tls_looks_like_a_browsers(self):
        # TLS 1.3 and ALPN, as a browser offers them: the middle picks
        # http/1.1 (a WebSocket may follow), whatever else is offered; a
        # client that offers no ALPN, or only TLS 1.2, still gets through.
        import ssl
        with World() as w:
            mport, m, _ = w.middle("m1")
            for alpn, versions, want_alpn, want_version in (
                    (["h2", "http/1.1"], None, "http/1.1", "TLSv1.3"),
                    (None, None, None, "TLSv1.3"),
                    (["http/1.1"], ssl.TLSVersion.TLSv1_2, "http/1.1", "TLSv1.2")):
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                if alpn:
                    ctx.set_alpn_protocols(alpn)
                if versions:
                    ctx.maximum_version = versions
                with socket.create_connection(("127.0.0.1", mport), timeout=5) as raw:
                    with ctx.wrap_socket(raw, server_hostname="m1.example") as t:
                        self.assertEqual(t.version(), want_version)
                        self.assertEqual(t.selected_alpn_protocol(), want_alpn)
            # And the ends' own offer, seen from a server we stand up: TLS
            # 1.3 and ALPN; no SNI, since this middle is named by an address
            # (RFC 6066 allows host names only).
            seen = {}
            srv_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            cert = os.path.join(w.dir, "cert.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-keyout", cert, "-out", cert, "-days", "1", "-subj", "/CN=x"],
                           check=True, capture_output=True)
            srv_ctx.load_cert_chain(cert)
            srv_ctx.set_alpn_protocols(["http/1.1"])
            srv_ctx.sni_callback = lambda sock, name, ctx: seen.__setitem__("sni", name)
            listener = socket.create_server(("127.0.0.1", 0))
            port = listener.getsockname()[1]

            def accept_one():
                c, _ = listener.accept()
                with srv_ctx.wrap_socket(c, server_side=True) as t:
                    seen["version"] = t.version()
                    seen["alpn"] = t.selected_alpn_protocol()
            th = threading.Thread(target=accept_one, daemon=True)
            th.start()
            w.end("cli", "client", port, tunnel_extra="  ways: tls\n", extra="")
            th.join(timeout=15)
            listener.close()
            self.assertEqual(seen.get("version"), "TLSv1.3")
            self.assertEqual(seen.get("alpn"), "http/1.1")
            self.assertIsNone(seen.get("sni"))

    def test_a_middle_reaches_its_next_hop_as_websocket_in_tls(self):
        with World() as w:
            m2port, m2, _ = w.middle("m2")
            m1port, m1, _ = w.middle("m1", next_hop=m2port, extra="next_hop_way: wss\n")
            w.end("srv", "server", m2port)
            sport, cli, _ = w.end("cli", "client", m1port)
            cli.wait_for_log("tunnel it up")
            m1.wait_for_log(rf"setup forwarded to next hop 127\.0\.0\.1:{m2port} by wss")
            m2.wait_for_log(r"\(tls\+websocket\)")
            self.assertEqual(echo_once(sport, w.servers.echo()), b"ping")

    def test_tls_carriers_carry_both_directions_at_full_load(self):
        # Uploads and downloads saturating the same TLS hops at once: a TLS
        # layer whose reader waits for its writer would stall here.
        with World() as w:
            mport, m, _ = w.middle("m1")
            w.end("srv", "server", mport, tunnel_extra=ways("wss"))
            sport, cli, _ = w.end("cli", "client", mport, tunnel_extra=ways("tls"))
            cli.wait_for_log("tunnel it up")
            echo = w.servers.echo()
            size = 24 << 20
            results = {}

            def one(k):
                s, _ = socks_connect(sport, "127.0.0.1", echo)
                data = os.urandom(size)
                t = threading.Thread(target=s.sendall, args=(data,))
                t.start()
                s.settimeout(60)
                results[k] = hashlib.sha256(recv_exact(s, size)).digest() == hashlib.sha256(data).digest()
                t.join()
                s.close()

            threads = [threading.Thread(target=one, args=(k,)) for k in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            self.assertEqual(results, {0: True, 1: True, 2: True})

    def test_websocket_in_tls_through_http_proxy(self):
        with World() as w:
            mport, m, _ = w.middle("m1")
            pport, tp = w.tinyproxy(connect_ports=[mport])
            w.end("srv", "server", mport)
            sport, cli, _ = w.end("cli", "client", mport, tunnel_extra=ways(f"wss via http://127.0.0.1:{pport}"))
            cli.wait_for_log("tunnel it up")
            tp.wait_for_log(rf"CONNECT 127\.0\.0\.1:{mport}")
            self.assertEqual(echo_once(sport, w.servers.echo()), b"ping")

    def test_through_http_connect_proxy_with_basic_auth(self):
        with World() as w:
            mport, m, _ = w.middle("m1")
            pport, tp = w.tinyproxy(connect_ports=[mport], auth=("alice", "s3cret-pass"))
            w.end("srv", "server", mport)
            sport, cli, _ = w.end("cli", "client", mport,
                                  tunnel_extra=ways(f"tcp via http://alice:s3cret%2Dpass@127.0.0.1:{pport}"))
            cli.wait_for_log("tunnel it up")
            cli.wait_for_log(rf"by tcp via http://alice@127\.0\.0\.1:{pport} in")
            tp.wait_for_log(rf"CONNECT 127\.0\.0\.1:{mport}")
            self.assertEqual(echo_once(sport, w.servers.echo()), b"ping")
            # The password never reaches a log.
            self.assertNotIn("s3cret", cli.log())

    def test_websocket_through_http_proxy_and_a_refused_password(self):
        with World() as w:
            mport, m, _ = w.middle("m1")
            pport, tp = w.tinyproxy(connect_ports=[mport], auth=("alice", "right"))
            w.end("srv", "server", mport)
            sport, cli, _ = w.end("cli", "client", mport, tunnel_extra=ways(
                f"ws via http://alice:wrong@127.0.0.1:{pport}", f"ws via http://alice:right@127.0.0.1:{pport}"))
            cli.wait_for_log("tunnel it up")
            log = cli.log()
            self.assertRegex(log, r"answered 40[17] .*refused the user name or password \(Basic\)")
            self.assertRegex(log, rf"by ws via http://alice@127\.0\.0\.1:{pport} in")
            self.assertEqual(echo_once(sport, w.servers.echo()), b"ping")

    def test_a_proxy_that_refuses_the_port_is_reported(self):
        with World() as w:
            mport, m, _ = w.middle("m1")
            pport, tp = w.tinyproxy(connect_ports=[443])
            sport, cli, _ = w.end("cli", "client", mport, tunnel_extra=ways(f"tcp via http://127.0.0.1:{pport}"))
            cli.wait_for_log(r"cannot reach middle proxy 127\.0\.0\.1:\d+ by any way: .*answered 403 .*"
                             r"\(it does not allow CONNECT to this host or port\)")

    def test_through_socks5_and_socks4a(self):
        with World() as w:
            mport, m, _ = w.middle("m1")
            dport, dante = w.danted()
            w.end("srv", "server", mport, tunnel_extra=ways(f"ws via socks4a://127.0.0.1:{dport}"))
            sport, cli, _ = w.end("cli", "client", mport, tunnel_extra=ways(f"tcp via socks5://127.0.0.1:{dport}"))
            cli.wait_for_log("tunnel it up")
            cli.wait_for_log(rf"by tcp via socks5://127\.0\.0\.1:{dport} in")
            w.procs[-1].wait_for_log("tunnel it up")
            self.assertEqual(echo_once(sport, w.servers.echo()), b"ping")

    def test_proxy_from_the_environment_and_no_proxy(self):
        with World() as w:
            mport, m, _ = w.middle("m1")
            pport, tp = w.tinyproxy()
            w.end("srv", "server", mport)
            env = dict(os.environ, https_proxy=f"http://127.0.0.1:{pport}", no_proxy="example.com")
            sport, cli, _ = w.end("cli", "client", mport, tunnel_extra=ways("tcp via env"), env=env)
            cli.wait_for_log(rf"by tcp via http://127\.0\.0\.1:{pport} in")
            tp.wait_for_log(rf"CONNECT 127\.0\.0\.1:{mport}")
            self.assertEqual(echo_once(sport, w.servers.echo()), b"ping")
            # no_proxy covering the middle: the environment gives no way.
            env2 = dict(env, no_proxy="127.0.0.0/8")
            _, cli2, _ = w.end("cli2", "client", mport, tunnel="other", tunnel_extra=ways("tcp via env"), env=env2)
            cli2.wait_for_log("no way to try: the ways go through the environment's proxy")

    def test_the_middle_answers_web_requests_and_drops_garbage(self):
        with World() as w:
            mport, m, _ = w.middle("m1")
            r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                                f"http://127.0.0.1:{mport}/"], capture_output=True)
            self.assertEqual(r.stdout, b"404")
            r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                                f"http://127.0.0.1:{mport}/lstp"], capture_output=True)
            self.assertEqual(r.stdout, b"404")  # the right path, but no upgrade
            m.wait_for_log(r"is not a hop: a web request \(GET /\), answered 404")
            s = socket.create_connection(("127.0.0.1", mport))
            s.sendall(b"\x00garbage")
            s.settimeout(5)
            self.assertEqual(s.recv(10), b"")
            s.close()
            m.wait_for_log(r"is not a hop: not LSTP, TLS or HTTP \(first byte 0\)")
            # It still pairs tunnels afterwards.
            w.end("srv", "server", mport)
            sport, cli, _ = w.end("cli", "client", mport)
            cli.wait_for_log("tunnel it up")

    def test_a_cheaper_way_that_starts_working_is_moved_to_when_idle(self):
        with World() as w:
            mport, m, _ = w.middle("m1")
            w.end("srv", "server", mport)
            pport = free_port()  # the proxy is not there yet
            extra = ways(f"tcp via http://127.0.0.1:{pport}", "ws") + "  reprobe_interval: 1s\n"
            sport, cli, _ = w.end("cli", "client", mport, tunnel_extra=extra)
            cli.wait_for_log("tunnel it up")
            self.assertRegex(cli.log(), r"by ws in")
            echo = w.servers.echo()
            s, _ = socks_connect(sport, "127.0.0.1", echo)  # a channel in use holds the move back
            w.tinyproxy(port=pport)
            cli.wait_for_log(rf"cheaper way tcp via http://127\.0\.0\.1:{pport} to 127\.0\.0\.1:{mport} works now "
                             r"\(using ws\); moving to it once no channel is open", timeout=20)
            time.sleep(2.5)
            self.assertNotIn("moving to the cheaper way", cli.log())
            s.sendall(b"still")
            self.assertEqual(recv_exact(s, 5), b"still")
            s.close()
            cli.wait_for_log("idle, moving to the cheaper way", timeout=20)
            cli.wait_for_log("tunnel it up", count=2, timeout=30)
            self.assertRegex(cli.log(), rf"by tcp via http://127\.0\.0\.1:{pport} in")
            self.assertEqual(echo_once(sport, echo), b"ping")

    def test_two_middles_the_ends_meet_at_one_and_fail_over_to_the_other(self):
        with World() as w:
            p1, m1, m1path = w.middle("m1")
            p2, m2, m2path = w.middle("m2")
            # The ends list the middles in different orders: they attach to
            # both and meet wherever both are.
            _, srv, _ = w.end("srv", "server", [p2, p1])
            sport, cli, _ = w.end("cli", "client", [p1, p2])
            cli.wait_for_log("tunnel it up")
            srv.wait_for_log("tunnel it up")
            echo = w.servers.echo()
            self.assertEqual(echo_once(sport, echo), b"ping")
            time.sleep(1)
            # Both ends keep the same one tunnel, even when it came up
            # through both middles at once.
            kept = re.findall(r'keeping the one through 127\.0\.0\.1:(\d+)', cli.log())
            last_up = re.findall(r'tunnel it up .*middle "(m\d)"', cli.log())[-1]
            first = {str(p1): "m1", str(p2): "m2"}[kept[-1]] if kept else last_up
            used, other = (m1, m2) if first == "m1" else (m2, m1)
            self.assertEqual(len(re.findall("paired", other.log())), len(re.findall("pair closed", other.log())))
            # The middle in use stops: both ends resume the tunnel at the
            # other one, and a connection opened before carries on.
            before, _ = socks_connect(sport, "127.0.0.1", echo)
            self.assertEqual(used.stop(), [])
            second = "m1" if first == "m2" else "m2"
            cli.wait_for_log(f'tunnel it resumed after [0-9.]+ s via middle "{second}"', timeout=30)
            srv.wait_for_log(f'tunnel it resumed after [0-9.]+ s via middle "{second}"', timeout=30)
            before.sendall(b"same")
            before.settimeout(20)
            self.assertEqual(recv_exact(before, 4), b"same")
            before.close()
            self.assertEqual(echo_once(sport, echo), b"ping")

    def test_the_winning_way_is_remembered_and_tried_first(self):
        with World() as w:
            mport, m, _ = w.middle("m1")
            dead = socket.socket()
            dead.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
            dead_port = dead.getsockname()[1]
            w.end("srv", "server", mport)
            state = os.path.join(w.dir, "cli.state")
            extra = ways(f"tcp via socks5://127.0.0.1:{dead_port}", "ws") + f"  state_file: {state}\n"
            sport, cli, path = w.end("cli", "client", mport, tunnel_extra=extra)
            cli.wait_for_log("tunnel it up")
            self.assertRegex(cli.log(), r"by ws in [0-9.]+ ms \(failed first; tcp via socks5://127\.0\.0\.1:\d+ "
                                        r"to 127\.0\.0\.1:\d+: cannot connect to proxy")
            with open(state) as f:
                self.assertIn(f"127.0.0.1:{mport} ws\n", f.read())
            self.assertEqual(cli.stop(), [])
            # Next start: the remembered way first, the failing one not tried.
            cli2 = w.start("cli-again", ["endproxy", "-c", path])
            cli2.wait_for_log("tunnel it up", timeout=30)
            self.assertRegex(cli2.log(), r"by ws in [0-9.]+ ms, waiting")
            self.assertNotIn("socks5", cli2.log().split("by ws in")[0].split("ways:")[-1].split("\n", 1)[-1])
            # The failing way was not tried at all this time (the line above
            # cannot see a "failed first" note, which follows "by ws in").
            self.assertNotIn("cannot connect to proxy", cli2.log())
            dead.close()


if __name__ == "__main__":
    unittest.main()
