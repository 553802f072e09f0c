"""The SOCKS reply codes that depend on the far network's routes (issue 4,
point 6): 0x03 network unreachable and 0x04 host unreachable, produced by a
server end in a network namespace of its own whose routing table says so.
The other codes are tested in test_tunnel, test_policy and test_routing."""
import secrets
import subprocess
import sys
import unittest

import netns_world
from lstp_world import World, free_port

CLIENT = r"""
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(b"\x05\x01\x00")
assert s.recv(2) == b"\x05\x00"
s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(sys.argv[2]) + struct.pack(">H", 80))
print(s.recv(10)[1])
"""


class NetworkReplyCodesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        why = netns_world.unavailable()
        if why:
            raise unittest.SkipTest(why)

    def test_network_and_host_unreachable(self):
        ns = "lstpR-" + secrets.token_hex(2)
        netns_world.run("ip", "netns", "add", ns)
        try:
            netns_world.run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            # 10.8.0.0/16 is declared unreachable (EHOSTUNREACH); 10.9.0.0/16
            # has no route at all (ENETUNREACH).
            netns_world.run("ip", "netns", "exec", ns, "ip", "route", "add", "unreachable", "10.8.0.0/16")
            with World() as w:
                mport = free_port()
                _, _, mpath = w.middle("m1", port=mport, start=False)
                w.start("m1", ["middleproxy", "-c", mpath], ns=ns).wait_for_log("listening on")
                _, _, spath = w.end("srv", "server", mport, start=False, server_extra="  allow:\n    - 10.0.0.0/8\n")
                srv = w.start("srv", ["endproxy", "-c", spath], ns=ns)
                sport, _, cpath = w.end("cli", "client", mport, start=False)
                cli = w.start("cli", ["endproxy", "-c", cpath], ns=ns)
                cli.wait_for_log("tunnel it up", timeout=30)
                path = w._write("client.py", CLIENT)
                for ip, code in (("10.9.0.1", 3), ("10.8.0.1", 4)):
                    with self.subTest(ip=ip):
                        r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, path, str(sport), ip],
                                           capture_output=True, text=True, timeout=60)
                        self.assertEqual(r.stdout.strip(), str(code), r.stderr)
                srv.wait_for_log(r"connect to 10\.9\.0\.1:80 failed: Network is unreachable")
                srv.wait_for_log(r"connect to 10\.8\.0\.1:80 failed: No route to host")
        finally:
            netns_world.run("ip", "netns", "del", ns, check=False)


if __name__ == "__main__":
    unittest.main()
