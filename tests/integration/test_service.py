"""Running as a service: readiness and status for systemd (Type=notify,
through NOTIFY_SOCKET as systemd sets it), and --version."""
import os
import socket
import subprocess
import unittest

from lstp_world import BIN, World


class NotifySocket:
    """The datagram socket systemd listens on for sd_notify messages."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(15)

    def env(self):
        return dict(os.environ, NOTIFY_SOCKET=self.path)

    def next(self):
        return self.sock.recv(4096).decode()

    def until(self, needle):
        seen = []
        while True:
            try:
                msg = self.next()
            except socket.timeout:
                raise AssertionError(f"no {needle!r} from the process; saw {seen}")
            seen.append(msg)
            if needle in msg:
                return seen

    def close(self):
        self.sock.close()


class ServiceTest(unittest.TestCase):
    def test_a_client_end_is_ready_once_its_tunnel_is_up(self):
        with World() as w:
            n = NotifySocket(w.dir)
            try:
                mp, middle, _ = w.middle("m1")
                _, cli, _ = w.end("cli", "client", mp, env=n.env())
                first = n.next()
                # Serving SOCKS already, but not ready: no tunnel yet.
                self.assertEqual(first, "STATUS=no tunnel up")
                w.end("srv", "server", mp)
                seen = n.until("READY=1")
                self.assertIn("READY=1\nSTATUS=up: it", seen[-1])
                cli.proc.terminate()
                self.assertIn("STOPPING=1", n.until("STOPPING=1")[-1])
            finally:
                n.close()

    def test_a_server_end_and_a_middle_are_ready_once_started(self):
        with World() as w:
            nm, ns = NotifySocket(w.dir), None
            try:
                port = 0
                from lstp_world import free_port
                port = free_port()
                path = w._write("m1.yaml", f"name: m1\nlisten: 127.0.0.1:{port}\n")
                w.start("m1", ["middleproxy", "-c", path], env=nm.env())
                self.assertEqual(nm.next(), "READY=1\nSTATUS=listening")
                os.makedirs(os.path.join(w.dir, "s"))
                ns = NotifySocket(os.path.join(w.dir, "s"))
                w.end("srv", "server", port, env=ns.env())
                self.assertTrue(ns.next().startswith("READY=1\n"))
            finally:
                nm.close()
                if ns:
                    ns.close()

    def test_version(self):
        for program in ("endproxy", "middleproxy"):
            for flag in ("--version", "-V"):
                r = subprocess.run([os.path.join(BIN, program), flag], capture_output=True, text=True, timeout=10)
                self.assertEqual(r.returncode, 0)
                self.assertRegex(r.stdout, rf"^{program} \(lstp\) \d+\.\d+\.\d+\n$")


if __name__ == "__main__":
    unittest.main()
