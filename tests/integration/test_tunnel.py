"""End-to-end tests of one tunnel: real middleproxy and endproxy processes on
loopback, driven by curl and by a small SOCKS5 client."""
import base64
import hashlib
import os
import re
import socket
import struct
import subprocess
import threading
import time
import unittest

from lstp_world import (SECRET, World, SocksError, socks_connect, recv_exact, sha256_file, free_port,
                        ipv6_loopback_works, echo_once)


def pairing_id_of(key_text, tunnel, epoch):
    """PROTOCOL.md 4, derived here with Python's hmac: the pairing id of a
    tunnel whose secret is the generated key `key_text`, for `epoch`."""
    import hmac
    body = key_text[len("lstp-secret-"):]
    key = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))[:32]
    root = hmac.new(b"lstp/2 tunnel " + tunnel.encode(), key, hashlib.sha256).digest()  # HKDF-Extract
    pairing_key = hmac.new(root, b"lstp/2 pairing key\x01", hashlib.sha256).digest()  # HKDF-Expand, 32 bytes
    return hmac.new(pairing_key, b"lstp/2 pairing id " + struct.pack(">Q", epoch), hashlib.sha256).digest()


def server_end_setup(pairing_id, tag, name, nonce, features=0):
    """The two setup frames (PROTOCOL.md 2.1, 2.2) a server end named `name`
    sends first on a hop: COMMON_UNIQUE_INFO and TOPOLOGY_EXCHANGE."""
    info = (b"LSTP" + bytes([1]) + pairing_id + tag + bytes([2, len(name)]) + name + bytes([0]) + nonce +
            struct.pack(">I", features))
    topo = bytes([1, 2, len(name)]) + name + bytes([0])
    return (struct.pack(">BBHII", 1, 0, 0, 0, len(info)) + info +
            struct.pack(">BBHII", 2, 0, 0, 0, len(topo)) + topo)


def serve_random_file(w, size):
    """A web server in the world with one file of `size` random bytes:
    returns its port and the file's path."""
    www = os.path.join(w.dir, "www")
    os.makedirs(www, exist_ok=True)
    path = os.path.join(www, "big.bin")
    with open(path, "wb") as f:
        f.write(os.urandom(size))
    return w.servers.http_dir(www), path


def curl(socks_port, url, out, mode="--socks5-hostname"):
    r = subprocess.run(["curl", "-sS", "--max-time", "120", mode, f"127.0.0.1:{socks_port}", url, "-o", out,
                        "-w", "%{http_code}"], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


class TunnelTest(unittest.TestCase):
    def test_curl_socks5_hostname_and_64mib_download(self):
        with World() as w:
            sport = w.tunnel()
            hport, big = serve_random_file(w, 64 * 1024 * 1024)
            out = os.path.join(w.dir, "out.bin")
            # "localhost" is resolved by the server end, not by curl.
            rc, code, err = curl(sport, f"http://localhost:{hport}/big.bin", out)
            self.assertEqual((rc, code), (0, "200"), err)
            self.assertEqual(sha256_file(out), sha256_file(big))
            # curl --socks5 resolves the name itself and sends an address.
            rc, code, err = curl(sport, f"http://localhost:{hport}/big.bin", out, mode="--socks5")
            self.assertEqual((rc, code), (0, "200"), err)
            self.assertEqual(sha256_file(out), sha256_file(big))
            w.c.wait_for_log(rf"SOCKS5 CONNECT from .* ok", count=2)
            self.assertRegex(w.s.log(), rf"channel \d+ \((127\.0\.0\.1|\[::1\]):{hport}\): connected")
            # The hop map, in one line, on both ends.
            for p in (w.c, w.s):
                self.assertIn('client-end "cli" -> middle "m1" (127.0.0.1:', p.log())
                self.assertIn('-> server-end "srv"', p.log())

    def test_64mib_upload_with_half_close(self):
        with World() as w:
            sport = w.tunnel()
            sink = w.servers.sink()
            s, _ = socks_connect(sport, "127.0.0.1", sink)
            data = os.urandom(64 * 1024 * 1024)
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)  # the app half-closes; the reply must still arrive
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = s.recv(4096)
                self.assertTrue(chunk, "connection closed before the reply")
                reply += chunk
            s.close()
            self.assertEqual(reply.decode().split(), [hashlib.sha256(data).hexdigest(), str(len(data))])

    def test_100_concurrent_connections(self):
        with World() as w:
            sport = w.tunnel()
            echo = w.servers.echo()
            errors = []

            def one(i):
                try:
                    s, _ = socks_connect(sport, "127.0.0.1", echo)
                    payload = os.urandom(64 * 1024 + i)
                    threading.Thread(target=s.sendall, args=(payload,), daemon=True).start()
                    got = recv_exact(s, len(payload))
                    s.close()
                    if got != payload:
                        errors.append(f"channel {i}: data differs")
                except Exception as e:  # noqa: BLE001 - collected and reported below
                    errors.append(f"channel {i}: {e!r}")

            threads = [threading.Thread(target=one, args=(i,)) for i in range(100)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            self.assertEqual(errors, [])
            # Every channel was one channel of the same tunnel.
            self.assertEqual(w.c.log().count("CONNECT from"), 100)

    def test_address_types(self):
        with World() as w:
            sport = w.tunnel()
            echo = w.servers.echo()
            for host in ["127.0.0.1", "localhost"]:
                s, bound = socks_connect(sport, host, echo)
                s.sendall(b"ping")
                self.assertEqual(recv_exact(s, 4), b"ping")
                self.assertEqual(bound[0], "127.0.0.1")  # the server end's local address
                self.assertNotEqual(bound[1], 0)
                s.close()
            if ipv6_loopback_works():
                with socket.socket(socket.AF_INET6) as lsn:
                    lsn.bind(("::1", 0))
                    lsn.listen()
                    s, bound = socks_connect(sport, "::1", lsn.getsockname()[1])
                    conn, _ = lsn.accept()
                    conn.sendall(b"v6")
                    self.assertEqual(recv_exact(s, 2), b"v6")
                    self.assertEqual(bound[0], "::1")
                    conn.close()
                    s.close()

    def test_reply_codes(self):
        with World() as w:
            sport = w.tunnel()
            cases = {
                "refused": (("127.0.0.1", free_port()), 5),
                "no such name": (("no-such-host.invalid", 80), 4),
            }
            for what, ((host, port), code) in cases.items():
                with self.subTest(what):
                    with self.assertRaises(SocksError) as e:
                        socks_connect(sport, host, port)
                    self.assertEqual(e.exception.code, code)
            with self.subTest("a command SOCKS5 does not have"):
                with self.assertRaises(SocksError) as e:
                    socks_connect(sport, "127.0.0.1", 80, cmd=9)
                self.assertEqual(e.exception.code, 7)
            with self.subTest("unknown address type"):
                with self.assertRaises(SocksError) as e:
                    socks_connect(sport, "127.0.0.1", 80, atyp=b"\x09")
                self.assertEqual(e.exception.code, 8)
            with self.subTest("a destination that does not answer in time"):
                # A listener whose accept queue is full drops new SYNs: connect hangs.
                with socket.socket() as full:
                    full.bind(("127.0.0.1", 0))
                    full.listen(0)
                    filler = socket.create_connection(full.getsockname())
                    with self.assertRaises(SocksError) as e:
                        socks_connect(sport, *full.getsockname())
                    self.assertEqual(e.exception.code, 6)
                    filler.close()
            # Network/host unreachable depend on this machine's routes; their
            # mapping is unit-tested (tests/endproxy/addresses_test.cpp).

    def test_username_password(self):
        with World() as w:
            mport, _, _ = w.middle("m1")
            w.end("srv", "server", mport)
            sport, c, _ = w.end("cli", "client", mport)
            c.wait_for_log("SOCKS5 listening")
            self.assertEqual(c.stop(), [])
            # Restart the client end with users configured.
            path = os.path.join(w.dir, "cli.yaml")
            with open(path) as f:
                text = f.read().replace("  timeout: 3s\n", "  timeout: 3s\n  users:\n    - username: alice\n"
                                                          "      password: wonderland\n")
            with open(path, "w") as f:
                f.write(text)
            c = w.start("cli2", ["endproxy", "-c", path])
            c.wait_for_log("tunnel it up")
            echo = w.servers.echo()
            s, _ = socks_connect(sport, "127.0.0.1", echo, user="alice", password="wonderland")
            s.close()
            with self.assertRaises(SocksError) as e:
                socks_connect(sport, "127.0.0.1", echo, user="alice", password="wrong")
            self.assertEqual(e.exception.code, -2)
            with self.assertRaises(SocksError) as e:
                socks_connect(sport, "127.0.0.1", echo)  # offers only no-auth
            self.assertEqual(e.exception.code, -1)
            # A login message that does not parse (version 7) is refused,
            # and the log says why.
            bad = socket.create_connection(("127.0.0.1", sport), timeout=5)
            bad.sendall(b"\x05\x01\x02")
            self.assertEqual(recv_exact(bad, 2), b"\x05\x02")
            bad.sendall(b"\x07\x05alice\x0awonderland")
            self.assertEqual(recv_exact(bad, 2)[1:], b"\x01")  # failure status, then closed
            bad.close()
            c.wait_for_log(r"bad login message")
            self.assertNotIn("wonderland", c.log())

    def test_record_keys_update_many_times_during_a_long_transfer(self):
        # A tiny key_update_after (256 KiB instead of 16 GiB): a 32 MiB
        # download crosses about 128 updates one way, and arrives intact.
        with World() as w:
            sport = w.tunnel(extra="limits:\n  key_update_after: 256KiB\n  key_update_interval: 2s\n")
            hport, big = serve_random_file(w, 32 * 1024 * 1024)
            out = os.path.join(w.dir, "out.bin")
            rc, code, err = curl(sport, f"http://localhost:{hport}/big.bin", out)
            self.assertEqual((rc, code), (0, "200"), err)
            self.assertEqual(sha256_file(out), sha256_file(big))
            time.sleep(2.5)  # an idle tunnel updates its keys when the interval is over
            echo_once(self, w, sport)
            for p in (w.s, w.c):
                self.assertEqual(p.stop(), [])
            m = re.search(r"record keys updated (\d+) times sending, (\d+) receiving", w.s.log())
            self.assertIsNotNone(m, "the server end logged no key update")
            self.assertGreaterEqual(int(m.group(1)), 100)  # 32 MiB / 256 KiB, and the idle one
            m2 = re.search(r"record keys updated (\d+) times sending, (\d+) receiving", w.c.log())
            self.assertEqual(m2.group(2), m.group(1))  # every update sent was received, in order
            self.assertEqual(m.group(2), m2.group(1))
            self.assertGreaterEqual(int(m2.group(1)), 1)

    def test_ends_with_different_secrets_never_pair_and_are_told_why(self):
        with World() as w:
            mport, m, _ = w.middle("m1", extra="limits:\n  waiting_timeout: 3s\n")
            _, srv, _ = w.end("srv", "server", mport, secret="a-different-secret-0123456789")
            sport, cli, _ = w.end("cli", "client", mport)
            # The middle says so at once, and evicts neither.
            m.wait_for_log(r"waits beside an end of the same tunnel name with another pairing id: the two ends' "
                           r"secrets differ, or someone who knows the name is probing \(possible attack\)")
            # Each end is told when its wait ends, and tries again.
            for p in (cli, srv):
                p.wait_for_log("another end of this tunnel name waited here with a different pairing id: check that "
                               "both ends use the same secret", timeout=20)
                self.assertNotIn("a-different-secret", p.log())
                self.assertNotIn(SECRET[12:], p.log())
            # The passphrase end is warned that a key would be better.
            srv.wait_for_log(r"is a passphrase: .* make one with endproxy --new-secret FILE")
            self.assertNotIn("tunnel it up", cli.log())
            with self.assertRaises(SocksError) as e:
                socks_connect(sport, "127.0.0.1", 9)
            self.assertEqual(e.exception.code, 1)

    def test_a_stranger_who_knows_the_tunnel_name_cannot_block_it(self):
        # A setup with the tunnel's (public) tag and a made-up pairing id
        # waits at the middle first; the real ends pair anyway, and the
        # stranger's hop is not the one evicted either.
        with World() as w:
            mport, m, _ = w.middle("m1")
            tag = hashlib.sha256(b"lstp/1 tunnel tag it").digest()[:16]
            name = b"stranger"
            stranger = socket.create_connection(("127.0.0.1", mport), timeout=5)
            stranger.sendall(server_end_setup(os.urandom(32), tag, name, os.urandom(16)))
            m.wait_for_log(r'server-end "stranger" from .* waits for its partner')
            _, srv, _ = w.end("srv", "server", mport)
            sport, cli, _ = w.end("cli", "client", mport)
            cli.wait_for_log("tunnel it up")
            m.wait_for_log("possible attack")
            echo_once(self, w, sport)
            # The stranger still waits: it heard only PAIRING_NOTICE frames
            # (hashes, no pairing id), no setup and no ERROR.
            stranger.settimeout(0.5)
            heard = b""
            try:
                while True:
                    chunk = stranger.recv(4096)
                    if not chunk:
                        break
                    heard += chunk
            except socket.timeout:
                pass
            self.assertTrue(heard, "the stranger was closed or told nothing")
            pos = 0
            while pos < len(heard):
                self.assertEqual(heard[pos], 0x05, "only PAIRING_NOTICE frames")
                length = struct.unpack(">I", heard[pos + 8:pos + 12])[0]
                self.assertEqual(length, 32)
                pos += 12 + length
            self.assertEqual(pos, len(heard))
            stranger.close()

    def test_a_stranger_flooding_a_tunnel_name_from_one_address_holds_two_places(self):
        # Twenty made-up pairing ids for the tunnel's name from one address
        # (127.0.0.66): each new one replaces that address's oldest, so the
        # name never fills and the real ends (from 127.0.0.1) pair.
        with World() as w:
            mport, m, _ = w.middle("m1")
            tag = hashlib.sha256(b"lstp/1 tunnel tag it").digest()[:16]
            conns = []
            for i in range(20):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind(("127.0.0.66", 0))
                s.settimeout(5)
                s.connect(("127.0.0.1", mport))
                s.sendall(server_end_setup(os.urandom(32), tag, b"stranger%d" % i, os.urandom(16)))
                conns.append(s)
                m.wait_for_log(rf'server-end "stranger{i}" from .* wait')
            m.wait_for_log("is replaced by a newer setup for the same tunnel name from the same source", count=18)
            _, srv, _ = w.end("srv", "server", mport)
            sport, cli, _ = w.end("cli", "client", mport)
            cli.wait_for_log("tunnel it up")
            echo_once(self, w, sport)
            # The replaced ones were closed; the last two still wait.
            closed = []
            for s in conns:
                s.settimeout(0.2)
                try:
                    while True:
                        d = s.recv(4096)
                        if not d:
                            closed.append(True)
                            break
                except socket.timeout:
                    closed.append(False)
                except ConnectionResetError:
                    closed.append(True)
                s.close()
            self.assertEqual(closed, [True] * 18 + [False] * 2)
            self.assertNotRegex(m.log(), "TOO_MANY_WAITING|too many setups")

    def test_a_socks_port_off_loopback_serves_only_the_networks_it_lists(self):
        with World() as w:
            mport, _, _ = w.middle("m1")
            _, srv, _ = w.end("srv", "server", mport)
            sport, _, cfg = w.end("cli", "client", mport, start=False)
            with open(cfg) as f:
                text = f.read()
            # Without users or allow_from it does not start.
            w._write("cli.yaml", text.replace(f"listen: 127.0.0.1:{sport}", f"listen: 0.0.0.0:{sport}"))
            import lstp_world
            r = subprocess.run([os.path.join(lstp_world.BIN, "endproxy"), "-c", cfg], capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(r.returncode, 1)
            self.assertIn(f"0.0.0.0:{sport} is not a loopback address", r.stderr)
            w._write("cli.yaml", text.replace(f"listen: 127.0.0.1:{sport}",
                                              f"listen: 0.0.0.0:{sport}\n  allow_from: [127.0.0.2]"))
            cli = w.start("cli", ["endproxy", "-c", cfg])
            cli.wait_for_log("tunnel it up")
            # 127.0.0.2 is let in...
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.settimeout(10)
            s.connect(("127.0.0.1", sport))
            s.sendall(b"\x05\x01\x00")
            self.assertEqual(recv_exact(s, 2), b"\x05\x00")
            s.close()
            # ...127.0.0.1 is closed at once, and the log says why.
            s = socket.create_connection(("127.0.0.1", sport), timeout=10)
            try:
                s.sendall(b"\x05\x01\x00")
                self.assertEqual(s.recv(16), b"")  # closed without a word...
            except ConnectionResetError:
                pass  # ...or reset, as the greeting came after the close
            s.close()
            cli.wait_for_log(r"refusing SOCKS client 127\.0\.0\.1:\d+: not in socks.allow_from")

    def test_ends_started_in_any_order(self):
        orders = [("middle", "server", "client"), ("client", "server", "middle"), ("server", "middle", "client"),
                  ("client", "middle", "server")]
        for order in orders:
            with self.subTest(order=order), World() as w:
                mport = free_port()
                procs = {}
                for who in order:
                    if who == "middle":
                        procs[who] = w.middle("m1", port=mport)[1]
                    elif who == "server":
                        procs[who] = w.end("srv", "server", mport)[1]
                    else:
                        sport, procs[who], _ = w.end("cli", "client", mport)
                    time.sleep(0.3)
                procs["client"].wait_for_log("tunnel it up")
                echo = w.servers.echo()
                s, _ = socks_connect(sport, "localhost", echo)
                s.sendall(b"hello")
                self.assertEqual(recv_exact(s, 5), b"hello")
                s.close()

    def test_third_end_cannot_take_over_a_paired_tunnel(self):
        with World() as w:
            sport = w.tunnel()
            echo = w.servers.echo()
            s, _ = socks_connect(sport, "127.0.0.1", echo)
            s.sendall(b"before")
            self.assertEqual(recv_exact(s, 6), b"before")
            _, intruder, _ = w.end("intruder", "server", w.mport)
            w.m.wait_for_log("already paired")
            intruder.wait_for_log("refused the setup")
            s.sendall(b"after")
            self.assertEqual(recv_exact(s, 5), b"after")
            s.close()

    def test_data_sent_with_the_request_is_kept(self):
        # Some clients send their first bytes right behind the CONNECT request,
        # before the reply; those bytes must reach the destination first, once.
        with World() as w:
            sport = w.tunnel()
            echo = w.servers.echo()
            s = socket.create_connection(("127.0.0.1", sport), timeout=20)
            s.sendall(b"\x05\x01\x00" + b"\x05\x01\x00\x01\x7f\x00\x00\x01" + struct.pack(">H", echo) + b"early")
            self.assertEqual(recv_exact(s, 2), b"\x05\x00")
            reply = recv_exact(s, 10)
            self.assertEqual(reply[:2], b"\x05\x00")
            s.sendall(b"+late")
            self.assertEqual(recv_exact(s, 10), b"early+late")
            s.close()

    def test_an_app_reset_closes_the_far_connection(self):
        with World() as w:
            sport = w.tunnel()
            watcher = w.servers.watcher("far")
            s, _ = socks_connect(sport, "127.0.0.1", watcher)
            s.sendall(b"some bytes")
            time.sleep(0.2)
            self.assertFalse(w.servers.closed["far"].is_set())
            # An abortive close (RST), not a half-close.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            self.assertTrue(w.servers.closed["far"].wait(10), "the destination connection stayed open")
            w.s.wait_for_log("aborted: the peer ended the channel")

    def test_client_end_connection_limit(self):
        with World() as w:
            mport, _, _ = w.middle("m1")
            w.end("srv", "server", mport)
            sport, cli, _ = w.end("cli", "client", mport, extra="limits:\n  max_connections: 3\n")
            cli.wait_for_log("tunnel it up")
            echo = w.servers.echo()
            held = [socks_connect(sport, "127.0.0.1", echo)[0] for _ in range(3)]
            # The fourth is refused: closed before any SOCKS reply.
            with self.assertRaises((ConnectionError, OSError)):
                socks_connect(sport, "127.0.0.1", echo)
            cli.wait_for_log("refusing a SOCKS client: 3 open, the limit is 3")
            # The three still work, and closing one frees its place.
            for s in held:
                s.sendall(b"k")
                self.assertEqual(recv_exact(s, 1), b"k")
            held.pop().close()
            cli.wait_for_log("closed after", count=1)
            s, _ = socks_connect(sport, "127.0.0.1", echo)
            s.close()
            for s in held:
                s.close()

    def test_both_roles_in_one_process_each(self):
        # Each end serves SOCKS and opens connections: channels go both ways
        # through the same tunnel (odd ids from the master, even from the other).
        with World() as w:
            mport, _, _ = w.middle("m1")
            a_socks, a, _ = w.end("a", "both", mport)
            b_socks, b, _ = w.end("b", "both", mport)
            a.wait_for_log("tunnel it up")
            b.wait_for_log("tunnel it up")
            echo = w.servers.echo()
            for port in (a_socks, b_socks):
                s, _ = socks_connect(port, "127.0.0.1", echo)
                s.sendall(b"both ways")
                self.assertEqual(recv_exact(s, 9), b"both ways")
                s.close()
            self.assertIn("channel 1 ", a.log() + b.log())
            self.assertIn("channel 2 ", a.log() + b.log())


class CommandLineTest(unittest.TestCase):
    def run_bin(self, *args):
        import lstp_world
        return subprocess.run([os.path.join(lstp_world.BIN, args[0])] + list(args[1:]), capture_output=True,
                              text=True, timeout=30)

    def test_help_and_check(self):
        for binary in ("middleproxy", "endproxy"):
            r = self.run_bin(binary, "--help")
            self.assertEqual(r.returncode, 0)
            self.assertIn("-c, --config FILE", r.stdout)
            r = self.run_bin(binary)
            self.assertEqual(r.returncode, 2)
            self.assertIn("no configuration given", r.stderr)

    def test_config_errors_name_file_line_and_problem(self):
        with World() as w:
            path = w._write("bad.yaml", "name: x\nrole: client\ntunnel:\n  name: t\n  secret_env: LSTP_IT_UNSET\n"
                                        "  middle: 127.0.0.1:7000\nsocks:\n  listen: localhost\n")
            r = self.run_bin("endproxy", "--check", "-c", path)
            self.assertEqual(r.returncode, 1)
            self.assertRegex(r.stderr, r"bad\.yaml:\d+: ")
            r = self.run_bin("endproxy", "-c", path)  # starting fails the same way, before doing anything
            self.assertEqual(r.returncode, 1)
            path = w._write("bad-middle.yaml", "name: m\nlisten: 127.0.0.1:7000\nnext_hop: nowhere\n")
            r = self.run_bin("middleproxy", "--check", "-c", path)
            self.assertEqual(r.returncode, 1)
            self.assertIn("bad-middle.yaml:3: next_hop:", r.stderr)

    def test_secret_never_logged(self):
        with World() as w:
            w.tunnel()
            for p in w.procs:
                self.assertNotIn(SECRET[len("lstp-secret-"):], p.log())
                self.assertNotIn(SECRET[len("lstp-secret-"):][:8], p.log())



def run_as_nobody(w, binary, cfg, env):
    """Starts `binary -c cfg` as nobody (a process of root's is root's in
    /proc anyway), with `env` added to the environment and one more
    variable, LSTP_IT_OTHER, that must stay."""
    import lstp_world
    os.chown(cfg, 65534, 65534)
    os.chmod(w.dir, 0o711)
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", os.path.join(lstp_world.BIN, binary),
            "-c", cfg]
    p = lstp_world.Proc(f"{binary}-nobody", argv, os.path.join(w.dir, f"{binary}-nobody.log"),
                        env=dict(os.environ, LSTP_IT_OTHER="stays", **env))
    w.procs.append(p)
    return p


class SecretsTest(unittest.TestCase):
    def assert_wiped_and_not_dumpable(self, p, gone):
        """None of `gone` is left in the process's environment, the rest of
        it is untouched, and its /proc files belong to root, not to the user
        it runs as (it is not dumpable)."""
        pid = p.proc.pid
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read()
        for text in gone:
            self.assertNotIn(text.encode(), environ)
        self.assertIn(b"LSTP_IT_OTHER=stays", environ)
        self.assertEqual(os.stat(f"/proc/{pid}/environ").st_uid, 0)
        self.assertEqual(os.stat(f"/proc/{pid}").st_uid, 65534)

    def run_bin(self, *args, **kw):
        import lstp_world
        return subprocess.run([os.path.join(lstp_world.BIN, args[0])] + list(args[1:]), capture_output=True,
                              text=True, timeout=30, **kw)

    def test_new_keys_are_private_checked_and_never_overwritten(self):
        with World() as w:
            path = os.path.join(w.dir, "made.secret")
            r = self.run_bin("endproxy", "--new-secret", path)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("wrote a new tunnel secret to " + path + " (mode 0600)", r.stdout)
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
            with open(path) as f:
                key = f.read()
            self.assertRegex(key, r"^lstp-secret-[A-Za-z0-9_-]{48}\n$")
            r = self.run_bin("endproxy", "--new-secret", path)
            self.assertEqual(r.returncode, 1)
            self.assertIn("already exists: not overwritten", r.stderr)
            with open(path) as f:
                self.assertEqual(f.read(), key)
            token = os.path.join(w.dir, "made.token")
            r = self.run_bin("middleproxy", "--new-token", token)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(token) as f:
                self.assertRegex(f.read(), r"^lstp-token-[A-Za-z0-9_-]{48}\n$")
            # A made key serves a tunnel; opened to others, it is refused.
            _, _, cfg = w.end("e", "server", 9, start=False,
                              tunnel_extra="")
            with open(cfg) as f:
                text = f.read().replace(os.path.join(w.dir, "e.secret"), path)
            cfg = w._write("e2.yaml", text)
            r = self.run_bin("endproxy", "--check", "-c", cfg)
            self.assertEqual(r.returncode, 0, r.stderr)
            os.chmod(path, 0o644)
            r = self.run_bin("endproxy", "--check", "-c", cfg)
            self.assertEqual(r.returncode, 1)
            self.assertIn(f'may be read by group or others (mode 0644): run chmod 600 {path}', r.stderr)
            self.assertNotIn(key.strip()[12:], r.stderr)

    def test_the_pairing_id_is_what_protocol_md_4_says_and_never_logged(self):
        # An independent derivation (PROTOCOL.md 4, here with Python's hmac)
        # must give the pairing id an end sends in its setup; no byte of it
        # may reach the end's log.
        key_text = SECRET[len("lstp-secret-"):]
        raw = base64.urlsafe_b64decode(key_text + "=" * (-len(key_text) % 4))
        self.assertEqual(hashlib.sha256(b"lstp key checksum lstp-secret-" + raw[:32]).digest()[:4], raw[32:])

        def pairing_id(epoch):
            return pairing_id_of(SECRET, "it", epoch)

        with World() as w:
            fake = socket.socket()
            fake.bind(("127.0.0.1", 0))
            fake.listen(1)
            fake.settimeout(15)
            _, cli, _ = w.end("cli", "client", fake.getsockname()[1], tunnel_extra="  ways: tcp\n")
            conn, _ = fake.accept()
            conn.settimeout(10)
            head = recv_exact(conn, 12)
            self.assertEqual(head[0], 0x01)  # COMMON_UNIQUE_INFO first: no access credential here
            info = recv_exact(conn, struct.unpack(">I", head[8:12])[0])
            self.assertEqual(info[:5], b"LSTP\x01")
            sent = info[5:37]
            epoch = int(time.time()) // 3600
            self.assertIn(sent, (pairing_id(epoch), pairing_id(epoch - 1), pairing_id(epoch + 1)))
            self.assertEqual(info[37:53], hashlib.sha256(b"lstp/1 tunnel tag it").digest()[:16])
            conn.close()
            fake.close()
            cli.wait_for_log("tunnel it")
            for p in w.procs:
                for pid in (pairing_id(epoch), pairing_id(epoch - 1), pairing_id(epoch + 1)):
                    self.assertNotIn(pid.hex()[:8], p.log())
                self.assertNotIn(key_text[:12], p.log())

    def test_a_passphrase_goes_through_argon2id_as_protocol_md_4_says(self):
        # Argon2id with 64 MiB, 3 passes, one lane, salted by SHA-256 of the
        # tunnel's label, derived here with argon2-cffi (the reference C
        # implementation): a cheaper stretch would give another pairing id.
        import hmac
        passphrase = "correct horse battery staple, twice"
        salt = hashlib.sha256(b"lstp/2 tunnel it").digest()
        # Debian's python3-argon2 (tools/install-deps.sh) is for Debian's
        # python3, which may not be the one running this test.
        code = ("import sys; from argon2.low_level import hash_secret_raw, Type; "
                "sys.stdout.write(hash_secret_raw(sys.argv[1].encode(), bytes.fromhex(sys.argv[2]), time_cost=3, "
                "memory_cost=64 * 1024, parallelism=1, hash_len=32, type=Type.ID).hex())")
        r = subprocess.run(["/usr/bin/python3", "-c", code, passphrase, salt.hex()], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        root = bytes.fromhex(r.stdout)
        pairing_key = hmac.new(root, b"lstp/2 pairing key\x01", hashlib.sha256).digest()

        def pairing_id(epoch):
            return hmac.new(pairing_key, b"lstp/2 pairing id " + struct.pack(">Q", epoch), hashlib.sha256).digest()

        with World() as w:
            fake = socket.socket()
            fake.bind(("127.0.0.1", 0))
            fake.listen(1)
            fake.settimeout(15)
            _, cli, _ = w.end("cli", "client", fake.getsockname()[1], secret=passphrase,
                              tunnel_extra="  ways: tcp\n")
            conn, _ = fake.accept()
            conn.settimeout(10)
            head = recv_exact(conn, 12)
            info = recv_exact(conn, struct.unpack(">I", head[8:12])[0])
            epoch = int(time.time()) // 3600
            self.assertIn(info[5:37], (pairing_id(epoch), pairing_id(epoch - 1), pairing_id(epoch + 1)))
            conn.close()
            fake.close()
            self.assertRegex(cli.log(), r"passphrase.*Argon2id.*endproxy --new-secret FILE")

    def test_no_byte_of_a_pairing_id_reaches_any_log(self):
        # Every 4-byte window of this hour's (and the neighbours') pairing id,
        # in hex and base64, is absent from the logs of both ends and the
        # middle, with debug logging on.
        with World() as w:
            sport = w.tunnel()
            echo_once(self, w, sport)
            epoch = int(time.time()) // 3600
            for p in w.procs:
                log = p.log()
                for e in (epoch - 1, epoch, epoch + 1):
                    pid = pairing_id_of(SECRET, "it", e)
                    self.assertNotIn(base64.b64encode(pid).decode()[:8], log)
                    self.assertNotIn(base64.urlsafe_b64encode(pid).decode()[:8], log)
                    for i in range(len(pid) - 3):
                        self.assertNotIn(pid[i:i + 4].hex(), log, f"{p.name} logged part of a pairing id")

    def test_an_impostor_holding_the_pairing_id_does_not_starve_the_real_ends(self):
        # Someone who captured this hour's pairing id (on a tcp hop, say)
        # takes the waiting slot first. The client end pairs with it, fails
        # (no secret, no handshake), sets up again, and meets the real
        # server end.
        with World() as w:
            mport, m, _ = w.middle("m1")
            name = b"impostor"
            pid = pairing_id_of(SECRET, "it", int(time.time()) // 3600)
            tag = hashlib.sha256(b"lstp/1 tunnel tag it").digest()[:16]
            imp = socket.create_connection(("127.0.0.1", mport), timeout=10)
            # The smallest nonce: the impostor is master.
            imp.sendall(server_end_setup(pid, tag, name, b"\x00" * 16, features=0xF))
            m.wait_for_log(r'server-end "impostor" from .* waits for its partner')
            sport, cli, _ = w.end("cli", "client", mport)
            m.wait_for_log(r'paired server-end "impostor" .* with client-end "cli"')
            imp.close()  # it cannot go on: no TLS without the secret
            _, srv, _ = w.end("srv", "server", mport)
            cli.wait_for_log("tunnel it up", timeout=20)
            echo_once(self, w, sport)

    def test_a_middles_token_from_the_environment_leaves_no_trace_and_it_is_not_dumpable(self):
        token = "a-token-passphrase-from-the-environment-0123456789"
        with World() as w:
            _, _, cfg = w.middle("m1", start=False, extra="access:\n  - {name: alice, token_env: LSTP_IT_TOKEN}\n")
            m = run_as_nobody(w, "middleproxy", cfg, {"LSTP_IT_TOKEN": token})
            m.wait_for_log("listening on")
            self.assert_wiped_and_not_dumpable(m, [token, token[:12]])  # the value is wiped in place
            self.assertNotIn(token, m.log())

    def test_a_secret_from_the_environment_leaves_no_trace_and_the_process_is_not_dumpable(self):
        # The client end runs as nobody (a process of root's is root's in
        # /proc anyway), with its secret in the environment.
        with World() as w:
            mport, _, _ = w.middle("m1")
            _, srv, _ = w.end("srv", "server", mport)
            sport, _, cfg = w.end("cli", "client", mport, start=False)
            with open(cfg) as f:
                text = f.read().replace("secret_file: " + os.path.join(w.dir, "cli.secret"),
                                        "secret_env: LSTP_IT_SECRET")
            cfg = w._write("cli-env.yaml", text)
            cli = run_as_nobody(w, "endproxy", cfg, {"LSTP_IT_SECRET": SECRET,
                                                     "XDG_STATE_HOME": os.path.join(w.dir, "state")})
            cli.wait_for_log("tunnel it up")
            self.assert_wiped_and_not_dumpable(cli, [SECRET, SECRET[12:24], "LSTP_IT_SECRET=lstp"])
            echo_once(self, w, sport)


if __name__ == "__main__":
    unittest.main()
