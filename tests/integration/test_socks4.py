"""SOCKS4 and SOCKS4a on the client end's port, next to SOCKS5 (issue 4,
point 1): curl --socks4 and --socks4a through the tunnel, and the refusals."""
import os
import socket
import struct
import subprocess
import unittest

from lstp_world import World, recv_exact


def socks4(port, ip, dport, host=None, cmd=1, userid=b"me"):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    addr = socket.inet_aton(ip) if host is None else b"\0\0\0\x01"
    s.sendall(b"\x04" + bytes([cmd]) + struct.pack("!H", dport) + addr + userid + b"\0" +
              (host.encode() + b"\0" if host else b""))
    return s, recv_exact(s, 8)


class Socks4Test(unittest.TestCase):
    def test_curl_socks4_and_socks4a(self):
        with World() as w:
            d = os.path.join(w.dir, "www")
            os.makedirs(d)
            with open(os.path.join(d, "f.txt"), "wb") as f:
                f.write(b"four\n")
            web = w.servers.http_dir(d)
            sport = w.tunnel()
            for mode, host in (("--socks4", "127.0.0.1"), ("--socks4a", "localhost")):
                with self.subTest(mode=mode):
                    r = subprocess.run(["curl", "-sS", "--max-time", "20", mode, f"127.0.0.1:{sport}",
                                        f"http://{host}:{web}/f.txt"], capture_output=True)
                    self.assertEqual((r.returncode, r.stdout), (0, b"four\n"), r.stderr)
            w.c.wait_for_log("SOCKS4 CONNECT from .* ok", count=2)

    def test_replies_and_refusals(self):
        with World() as w:
            sport = w.tunnel()
            echo = w.servers.echo()
            s, reply = socks4(sport, "127.0.0.1", echo)
            self.assertEqual(reply[:2], b"\x00\x5a")
            s.sendall(b"hi")
            self.assertEqual(recv_exact(s, 2), b"hi")
            s.close()
            # SOCKS4a by name, resolved at the server end.
            s, reply = socks4(sport, None, echo, host="localhost")
            self.assertEqual(reply[:2], b"\x00\x5a")
            s.close()
            # A command SOCKS4 does not have: rejected, not hung.
            s, reply = socks4(sport, "127.0.0.1", echo, cmd=3)
            self.assertEqual(reply[:2], b"\x00\x5b")
            s.close()
            # Refused by the server end's policy (loopback only): rejected.
            s, reply = socks4(sport, "192.0.2.1", 80)
            self.assertEqual(reply[:2], b"\x00\x5b")
            s.close()

    def test_socks4_is_refused_when_users_are_configured(self):
        with World() as w:
            mport, _, _ = w.middle("m1")
            w.end("srv", "server", mport)
            sport, cli, _ = w.end("cli", "client", mport)
            cli.wait_for_log("tunnel it up")
            self.assertEqual(cli.stop(), [])
            # Same client end, now with a user list.
            path = os.path.join(w.dir, "cli.yaml")
            with open(path) as f:
                text = f.read().replace("  timeout: 3s\n", "  timeout: 3s\n  users:\n    - username: alice\n"
                                                           "      password: secret\n")
            with open(path, "w") as f:
                f.write(text)
            cli2 = w.start("cli-users", ["endproxy", "-c", path])
            cli2.wait_for_log("tunnel it up", timeout=30)
            s, reply = socks4(sport, "127.0.0.1", w.servers.echo())
            self.assertEqual(reply[:2], b"\x00\x5b")
            s.close()
            cli2.wait_for_log("SOCKS4 request refused: users are configured, and SOCKS4 has no passwords")


if __name__ == "__main__":
    unittest.main()
