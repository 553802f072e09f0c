"""The admin server of every process: JSON API, actions, /metrics checked by
promtool, health checks, its own limits, and JSON logs. The real binaries
on loopback; the page in a real browser is tests/browser."""
import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import unittest

from lstp_world import World, socks_connect, recv_exact, free_port, wait_for_port

TOKEN = "lstp-token-3qSb-X69e4bjKgaIyZS4WYA75pZzBQaLRU-48-OFrNww-Ggr"  # public, tests only


def request(port, method, path, headers=None, host="127.0.0.1"):
    """(status, headers, body) of one request."""
    c = http.client.HTTPConnection(host, port, timeout=10)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def get_json(port, path="/api/v1/status", headers=None):
    status, _, body = request(port, "GET", path, headers)
    assert status == 200, (status, body)
    return json.loads(body)


def wait_until(what, check, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")


AUTH = {"Authorization": "Bearer " + TOKEN}


class AdminWorld:
    """A middle and two ends, each with an admin server (the client end's
    with a token, so that its actions work)."""

    def __init__(self, w, client_extra="", middle_extra=""):
        self.w = w
        token_path = w._write("admin.token", TOKEN + "\n")
        self.middle_admin, self.server_admin, self.client_admin = free_port(), free_port(), free_port()
        self.middle_port, self.middle, _ = w.middle(
            "m1", extra=f"admin:\n  listen: 127.0.0.1:{self.middle_admin}\n" + middle_extra)
        _, self.server, _ = w.end("srv", "server", self.middle_port,
                                  extra=f"admin:\n  listen: 127.0.0.1:{self.server_admin}\n")
        self.socks_port, self.client, _ = w.end(
            "cli", "client", self.middle_port,
            extra=f"admin:\n  listen: 127.0.0.1:{self.client_admin}\n  token_file: {token_path}\n" + client_extra)
        self.client.wait_for_log("tunnel it up")
        self.server.wait_for_log("tunnel it up")
        for p in (self.middle_admin, self.server_admin, self.client_admin):
            wait_for_port(p)
        self.echo = None

    def echo_channel(self):
        """A channel through the tunnel to an echo server, one echo done."""
        if self.echo is None:
            self.echo = self.w.servers.echo()
        s, _ = socks_connect(self.socks_port, "localhost", self.echo)
        s.sendall(b"ping")
        assert recv_exact(s, 4) == b"ping"
        return s


def assert_reset(test, sock):
    """The app's connection ends by a reset, never a clean end of stream."""
    sock.settimeout(5)
    with test.assertRaises(ConnectionResetError):
        while sock.recv(1024):
            pass


class AdminApiTest(unittest.TestCase):
    def test_status_shows_tunnels_hop_maps_and_channels(self):
        with World() as w:
            a = AdminWorld(w)
            s = a.echo_channel()
            echo = a.echo
            st = get_json(a.client_admin)
            self.assertEqual(st["process"]["kind"], "end")
            self.assertEqual(st["process"]["name"], "cli")
            self.assertTrue(st["process"]["ready"])
            self.assertGreater(st["process"]["resident_bytes"], 1 << 20)
            (t,) = st["tunnels"]
            self.assertEqual(t["name"], "it")
            self.assertEqual(t["state"], "up")
            self.assertEqual([(h["kind"], h["name"]) for h in t["hop_map"]],
                             [("client-end", "cli"), ("middle", "m1"), ("server-end", "srv")])
            self.assertEqual(t["hop_map"][1]["address"], f"127.0.0.1:{a.middle_port}")
            self.assertEqual(t["way"], f"tcp to 127.0.0.1:{a.middle_port}")
            self.assertGreater(t["rtt_seconds"], 0)
            self.assertGreater(t["bytes_sent"], 0)
            (c,) = t["channels"]
            self.assertIsInstance(c["id"], int)
            self.assertEqual(c["destination"], f"localhost:{echo}")
            self.assertEqual(c["command"], "CONNECT")
            self.assertEqual(c["app"], "%s:%d" % s.getsockname())
            self.assertEqual((c["bytes_sent"], c["bytes_received"]), (4, 4))
            self.assertFalse(c["paused"])
            self.assertGreater(c["credit_window"], 0)
            # The server end sees the same channel from its side.
            (ts,) = get_json(a.server_admin)["tunnels"]
            (cs,) = ts["channels"]
            self.assertEqual(cs["destination"], f"localhost:{echo}")
            self.assertEqual(cs["connected_to"], f"127.0.0.1:{echo}")
            # The middle: its listener and the pair, both ends named.
            ms = get_json(a.middle_admin)
            self.assertEqual(ms["process"]["kind"], "middle")
            self.assertEqual(ms["listeners"], [f"127.0.0.1:{a.middle_port}"])
            (pair,) = ms["pairs"]
            self.assertEqual(sorted([pair["first"]["end"], pair["second"]["end"]]),
                             ['client-end "cli"', 'server-end "srv"'])
            self.assertGreater(pair["bytes"], 0)
            self.assertEqual(ms["waiting"], [])
            s.close()

    def test_closing_a_channel_resets_its_app_and_spares_the_others(self):
        with World() as w:
            a = AdminWorld(w)
            victim = a.echo_channel()
            other = a.echo_channel()
            channels = get_json(a.client_admin)["tunnels"][0]["channels"]
            by_app = {c["app"]: c["id"] for c in channels}
            victim_id = by_app["%s:%d" % victim.getsockname()]
            path = f"/api/v1/channels/{victim_id}/close"
            # Without the token, with a wrong one, from another site: refused.
            self.assertEqual(request(a.client_admin, "POST", path)[0], 401)
            self.assertEqual(request(a.client_admin, "POST", path, {"Authorization": "Bearer nope"})[0], 401)
            self.assertEqual(request(a.client_admin, "POST", path,
                                     dict(AUTH, Origin="http://evil.example", **{"Sec-Fetch-Site": "cross-site"}))[0], 403)
            self.assertEqual(request(a.client_admin, "GET", path)[0], 405)
            status, _, _ = request(a.client_admin, "POST", path, AUTH)
            self.assertEqual(status, 204)
            assert_reset(self, victim)
            a.client.wait_for_log(f"channel \\d+ .*closed by the operator")
            # The other channel on the same tunnel goes on.
            other.sendall(b"still")
            self.assertEqual(recv_exact(other, 5), b"still")
            self.assertEqual(request(a.client_admin, "POST", path, AUTH)[0], 404)
            other.close()

    def test_dropping_a_tunnel_resets_its_channels_and_it_comes_back(self):
        with World() as w:
            a = AdminWorld(w)
            s = a.echo_channel()
            self.assertEqual(request(a.client_admin, "POST", "/api/v1/tunnels/nope/drop", AUTH)[0], 404)
            self.assertEqual(request(a.client_admin, "POST", "/api/v1/tunnels/it/drop", AUTH)[0], 204)
            assert_reset(self, s)
            a.client.wait_for_log("tunnel it closed: .*dropped by the operator")
            wait_until("the tunnel up again with one reconnect",
                       lambda: get_json(a.client_admin)["tunnels"][0]["reconnects"] == 1
                       and get_json(a.client_admin)["tunnels"][0]["state"] == "up")
            echo_again = a.echo_channel()
            echo_again.close()

    def test_metrics_pass_promtool_in_every_process(self):
        if not shutil.which("promtool"):
            self.fail("promtool is missing: tools/install-deps.sh installs Debian's prometheus package")
        with World() as w:
            a = AdminWorld(w)
            s = a.echo_channel()
            # A refused open, so that a result other than ok is counted.
            try:
                socks_connect(a.socks_port, "10.255.255.1", 9)
            except Exception:
                pass
            texts = {}
            for name, port in (("client", a.client_admin), ("server", a.server_admin), ("middle", a.middle_admin)):
                status, headers, body = request(port, "GET", "/metrics")
                self.assertEqual(status, 200)
                self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"))
                r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30)
                self.assertEqual(r.returncode, 0, f"{name}: {r.stdout.decode()} {r.stderr.decode()}")
                texts[name] = body.decode()
            c = texts["client"]
            for line in ('lstp_tunnel_up{tunnel="it"} 1', 'lstp_channels_open{tunnel="it"} 1',
                         'lstp_tunnel_reconnects_total{tunnel="it"} 0',
                         'lstp_channel_opens_total{tunnel="it",result="ok"} 1',
                         'lstp_channel_opens_total{tunnel="it",result="not_allowed"} 1',
                         'lstp_channel_connect_seconds_count{tunnel="it"} 2'):
                self.assertIn(line, c)
            for name in ("lstp_tunnel_rtt_seconds{", 'lstp_bytes_total{tunnel="it",direction="sent"}',
                         'lstp_bytes_total{tunnel="it",direction="received"}', "process_resident_memory_bytes ",
                         "process_open_fds "):
                self.assertIn(name, c)
            self.assertIn('lstp_channel_opens_total{tunnel="it",result="not_allowed"} 1', texts["server"])
            m = texts["middle"]
            for line in ("lstp_middle_pairs 1", "lstp_middle_waiting 0", "lstp_middle_bytes_total "):
                self.assertIn(line, m)
            # Something that is not a hop is refused, and counted by reason.
            with socket.create_connection(("127.0.0.1", a.middle_port), timeout=5) as g:
                g.sendall(b"\x00garbage that is no hop\r\n\r\n")
                g.recv(100)
            wait_until("the refusal counted", lambda: 'lstp_middle_refusals_total{reason="not_a_hop"} 1' in
                       request(a.middle_admin, "GET", "/metrics")[2].decode())
            s.close()

    def test_health_and_readiness(self):
        with World() as w:
            mp, middle, _ = w.middle("m1", extra=f"admin:\n  listen: 127.0.0.1:{(ma := free_port())}\n")
            _, cli, _ = w.end("cli", "client", mp, extra=f"admin:\n  listen: 127.0.0.1:{(ca := free_port())}\n")
            wait_for_port(ca)
            self.assertEqual(request(ca, "GET", "/healthz")[0], 200)
            # No server end yet: the client end is alive but not ready.
            status, _, body = request(ca, "GET", "/readyz")
            self.assertEqual(status, 503)
            self.assertIn(b"no tunnel is up", body)
            self.assertEqual(request(ma, "GET", "/readyz")[0], 200)
            w.end("srv", "server", mp)
            cli.wait_for_log("tunnel it up")
            self.assertEqual(request(ca, "GET", "/readyz")[0], 200)
            # The waiting list while only one end was there is gone now.
            self.assertEqual(get_json(ma)["waiting"], [])

    def test_middle_lists_a_waiting_setup(self):
        with World() as w:
            mp, middle, _ = w.middle("m1", extra=f"admin:\n  listen: 127.0.0.1:{(ma := free_port())}\n")
            w.end("lonely", "server", mp)
            middle.wait_for_log("waits for its partner")
            (waiting,) = get_json(ma)["waiting"]
            self.assertEqual(waiting["end"], 'server-end "lonely"')
            self.assertTrue(waiting["source"].startswith("127.0.0.1:"))
            self.assertEqual(len(waiting["tunnel"]), 8)

    def test_events_are_the_last_log_lines(self):
        with World() as w:
            a = AdminWorld(w)
            events = get_json(a.client_admin, "/api/v1/events")["events"]
            self.assertTrue(any("tunnel it up" in e["message"] for e in events))
            last = events[-1]["number"]
            self.assertEqual(get_json(a.client_admin, f"/api/v1/events?after={last}")["events"], [])
            self.assertTrue(all(e["level"] in ("info", "warn", "error") for e in events))


class AdminAccessTest(unittest.TestCase):
    def test_reads_on_loopback_need_a_loopback_host(self):
        with World() as w:
            mp, middle, _ = w.middle("m1", extra=f"admin:\n  listen: 127.0.0.1:{(ma := free_port())}\n")
            wait_for_port(ma)
            self.assertEqual(request(ma, "GET", "/api/v1/status", {"Host": "localhost"})[0], 200)
            # A page elsewhere, through DNS rebinding, names its own host.
            self.assertEqual(request(ma, "GET", "/api/v1/status", {"Host": "rebind.example"})[0], 403)
            # Actions are off without a token file.
            self.assertEqual(request(ma, "POST", "/api/v1/tunnels/x/drop", AUTH)[0], 403)

    def test_off_loopback_everything_needs_the_token(self):
        with World() as w:
            token_path = w._write("admin.token", TOKEN + "\n")
            port = free_port()
            mp, middle, cfg = w.middle(
                "m1", extra=f"admin:\n  listen: 0.0.0.0:{port}\n  token_file: {token_path}\n")
            wait_for_port(port)
            for path in ("/api/v1/status", "/metrics", "/healthz", "/readyz", "/api/v1/events"):
                status, headers, _ = request(port, "GET", path)
                self.assertEqual(status, 401, path)
                self.assertEqual(headers.get("WWW-Authenticate"), 'Bearer realm="lstp admin"')
                self.assertEqual(request(port, "GET", path, AUTH)[0], 200, path)
            # The page holds no facts: it is served, and asks for the token.
            status, headers, body = request(port, "GET", "/")
            self.assertEqual(status, 200)
            self.assertIn("default-src 'none'", headers["Content-Security-Policy"])
            self.assertIn(b"Admin token", body)

    def test_an_admin_listener_off_loopback_without_a_token_is_a_config_error(self):
        with World() as w:
            path = w._write("m.yaml", f"name: m\nlisten: 127.0.0.1:{free_port()}\n"
                                      f"admin:\n  listen: 0.0.0.0:{free_port()}\n")
            r = subprocess.run([os.path.join(os.environ.get("LSTP_BIN", "../../build/bin"), "middleproxy"),
                                "-c", path, "--check"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 1)
            self.assertIn("admin.listen", r.stderr)
            self.assertIn("needs token_file", r.stderr)

    def test_bad_requests_get_clear_errors_and_harm_nothing(self):
        with World() as w:
            a = AdminWorld(w)
            port = a.client_admin
            self.assertEqual(request(port, "GET", "/nope")[0], 404)
            # Not HTTP at all.
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"\x16\x03\x01\x02\x00garbage\r\n\r\n")
                self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 400"))
            # A header far too big, and a body too big.
            status, _, body = request(port, "GET", "/api/v1/status", {"X-Big": "a" * 20000})
            self.assertIn(status, (413, 431))
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"POST /api/v1/tunnels/it/drop HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n")
                self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 413"))
            # The tunnel and its processes are untouched.
            a.echo_channel().close()
            self.assertEqual(get_json(port)["tunnels"][0]["state"], "up")

    def test_its_connections_are_limited(self):
        with World() as w:
            mp, middle, _ = w.middle("m1", extra=f"admin:\n  listen: 127.0.0.1:{(ma := free_port())}\n")
            wait_for_port(ma)
            time.sleep(0.2)  # wait_for_port's own connection has gone
            idle = [socket.create_connection(("127.0.0.1", ma)) for _ in range(16)]
            time.sleep(0.3)
            with socket.create_connection(("127.0.0.1", ma), timeout=5) as s:
                self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 503"))
            for s in idle:
                s.close()
            wait_until("a free admin connection", lambda: request(ma, "GET", "/healthz")[0] == 200)


class JsonLogTest(unittest.TestCase):
    def test_every_line_is_one_json_object_with_tunnel_and_channel(self):
        with World() as w:
            mp, middle, _ = w.middle("m1", extra="log_format: json\n")
            w.end("srv", "server", mp, extra="log_format: json\n")
            sport, cli, _ = w.end("cli", "client", mp, extra="log_format: json\n")
            cli.wait_for_log('"message":"tunnel it up')
            s, _ = socks_connect(sport, "localhost", w.servers.echo())
            s.sendall(b"ping")
            self.assertEqual(recv_exact(s, 4), b"ping")
            s.close()
            cli.wait_for_log('"channel":')
            for proc in (middle, cli):
                lines = [l for l in proc.log().splitlines() if l.strip()]
                self.assertGreater(len(lines), 3)
                objs = [json.loads(l) for l in lines]
                for o in objs:
                    self.assertTrue({"time", "level", "component", "message"} <= set(o), o)
            objs = [json.loads(l) for l in cli.log().splitlines() if l.strip()]
            up = [o for o in objs if o["message"].startswith("tunnel it up")]
            self.assertEqual(up[0]["tunnel"], "it")
            self.assertTrue(any(o.get("channel") is not None and o.get("tunnel") == "it" for o in objs))


if __name__ == "__main__":
    unittest.main()
