"""Fixed forwards (issue 4, point 2): a client end listener that always leads
to one destination behind the tunnel. X11 first: an X client on this side
draws on an Xvfb display on the far side, with the X authority cookie passed
as the README says; and any TCP service the same way."""
import os
import shutil
import socket
import subprocess
import unittest

from lstp_world import World, free_port, recv_exact, wait_for_port


def free_display():
    for d in range(20, 100):
        if os.path.exists(f"/tmp/.X{d}-lock") or os.path.exists(f"/tmp/.X11-unix/X{d}"):
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", 6000 + d))
            except OSError:
                continue
        return d
    raise RuntimeError("no free X display number")


class ForwardTest(unittest.TestCase):
    def test_a_tcp_forward(self):
        with World() as w:
            echo = w.servers.echo()
            mport, _, _ = w.middle("m1")
            w.end("srv", "server", mport)
            lport = free_port()
            _, cli, _ = w.end("cli", "client", mport,
                              extra=f"forwards:\n  - listen: 127.0.0.1:{lport}\n    to: localhost:{echo}\n")
            cli.wait_for_log("tunnel it up")
            cli.wait_for_log(rf"forward listening on 127\.0\.0\.1:{lport} to localhost:{echo}")
            s = socket.create_connection(("127.0.0.1", lport), timeout=20)
            s.sendall(b"through the forward")
            self.assertEqual(recv_exact(s, 19), b"through the forward")
            s.close()
            cli.wait_for_log(rf"channel \d+ \(localhost:{echo}\): forwarded from 127\.0\.0\.1")

    def test_a_reverse_forward(self):
        # A service on the client end's side (B) reached from the server
        # end's side (A): the listener is at the server end, the destination
        # at the client end. Either end may open channels; the one that
        # connects applies its own policy (server.allow), so both are
        # role "both" here.
        with World() as w:
            echo_in_b = w.servers.echo()
            mport, _, _ = w.middle("m1")
            lport = free_port()
            _, a_end, _ = w.end("a-end", "both", mport,
                                extra=f"forwards:\n  - listen: 127.0.0.1:{lport}\n    to: 127.0.0.1:{echo_in_b}\n")
            _, b_end, _ = w.end("b-end", "both", mport, server_extra=f"  allow:\n    - 127.0.0.1:{echo_in_b}\n")
            a_end.wait_for_log("tunnel it up")
            b_end.wait_for_log("tunnel it up")
            s = socket.create_connection(("127.0.0.1", lport), timeout=20)
            s.sendall(b"from A into B")
            self.assertEqual(recv_exact(s, 13), b"from A into B")
            s.close()
            b_end.wait_for_log(rf"channel \d+ \(127\.0\.0\.1:{echo_in_b}\): connected from")

    def test_a_reverse_forward_to_a_client_role_end_is_refused(self):
        with World() as w:
            echo = w.servers.echo()
            mport, _, _ = w.middle("m1")
            lport = free_port()
            _, a_end, _ = w.end("a-end", "both", mport,
                                extra=f"forwards:\n  - listen: 127.0.0.1:{lport}\n    to: 127.0.0.1:{echo}\n")
            _, b_end, _ = w.end("b-end", "client", mport)
            a_end.wait_for_log("tunnel it up")
            s = socket.create_connection(("127.0.0.1", lport), timeout=20)
            self.assertEqual(s.recv(10), b"")  # closed: the client end opens nothing for its peer
            s.close()
            a_end.wait_for_log(r"CONNECT 127\.0\.0\.1:\d+ failed: not allowed: this end is a client end and opens no connections")

    @unittest.skipUnless(shutil.which("Xvfb") and shutil.which("xdpyinfo") and shutil.which("xauth"),
                         "needs Xvfb, xdpyinfo and xauth (tools/install-deps.sh installs them)")
    def test_x11_through_display_10_style_forward(self):
        with World() as w:
            far, near = free_display(), None
            cookie = os.urandom(16).hex()
            far_auth = os.path.join(w.dir, "far.Xauthority")
            subprocess.run(["xauth", "-f", far_auth, "add", f":{far}", "MIT-MAGIC-COOKIE-1", cookie], check=True,
                           capture_output=True)
            xvfb = w.third_party_process(f"Xvfb-{far}", ["Xvfb", f":{far}", "-auth", far_auth, "-listen", "tcp",
                                                         "-screen", "0", "800x600x24"])
            wait_for_port(6000 + far)
            near = free_display()
            mport, _, _ = w.middle("m1")
            w.end("srv", "server", mport)
            _, cli, _ = w.end("cli", "client", mport,
                              extra=f"forwards:\n  - listen: 127.0.0.1:{6000 + near}\n"
                                    f"    to: 127.0.0.1:{6000 + far}\n")
            cli.wait_for_log("tunnel it up")
            # As the README says: DISPLAY names the forward, and the far X
            # server's cookie is added for that display name here.
            near_auth = os.path.join(w.dir, "near.Xauthority")
            subprocess.run(["xauth", "-f", near_auth, "add", f"127.0.0.1:{near}", "MIT-MAGIC-COOKIE-1", cookie],
                           check=True)
            env = dict(os.environ, DISPLAY=f"127.0.0.1:{near}", XAUTHORITY=near_auth)
            r = subprocess.run(["xdpyinfo"], env=env, capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(f"name of display:    127.0.0.1:{near}", r.stdout)
            self.assertIn("dimensions:    800x600 pixels", r.stdout)
            # Without the cookie the far X server refuses: its access control
            # holds through the tunnel.
            env_none = dict(env, XAUTHORITY=os.path.join(w.dir, "empty.Xauthority"))
            r = subprocess.run(["xdpyinfo"], env=env_none, capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0)
            self.assertEqual(xvfb.proc.poll(), None)


if __name__ == "__main__":
    unittest.main()
