"""Proxy discovery (issue 17 point 3): company B's way out is named by a PAC
file (fetched by HTTP, or found by WPAD through B's search domain), which
names a dead proxy first and the working one second. Needs root."""
import os
import re
import shutil
import sys
import unittest

import netns_world
from netns_world import A_HOST, B_GATEWAY, PUBLIC
from test_firewalls import PAGE, Firewalled

PAC = """function FindProxyForURL(url, host) {
  if (isInNet(host, "198.51.100.0", "255.255.255.0"))
    return "PROXY %(gw)s:9999; PROXY %(gw)s:8888";
  return "DIRECT";
}
""" % {"gw": B_GATEWAY}


class DiscoveryWorld(Firewalled):
    def pac_server(self, port, files):
        www = os.path.join(self.w.dir, f"pac{port}")
        os.makedirs(www)
        for name, text in files.items():
            with open(os.path.join(www, name), "w") as f:
                f.write(text)
        self.third_party(f"pac-server-{port}", self.n.gw, [sys.executable, "-m", "http.server", str(port), "--bind",
                                                          B_GATEWAY, "--directory", www])
        self.wait_until(self.n.b, ["bash", "-c", f"exec 3<>/dev/tcp/{B_GATEWAY}/{port}"])

    def client(self, proxy_setting):
        return self.end("cli", "client", self.n.b, f"{PUBLIC}:443", tunnel_extra=f"  proxy: {proxy_setting}\n")[0]

    def crossed(self, tc, cli):
        cli.wait_for_log("tunnel t up", timeout=40)
        r = self.curl_from_b()
        tc.assertEqual((r.returncode, r.stdout.encode()), (0, PAGE), r.stderr)
        # The dead proxy the PAC file names first was tried, the second carried it.
        tc.assertRegex(cli.log(), rf"by tcp via http://{re.escape(B_GATEWAY)}:8888 in")
        tc.assertRegex(cli.log(), rf"tcp via http://{re.escape(B_GATEWAY)}:9999 to {re.escape(PUBLIC)}:443: "
                                  "cannot connect to proxy")


class ProxyDiscoveryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        why = netns_world.unavailable()
        if why:
            raise unittest.SkipTest(why)

    def test_a_pac_file_names_a_dead_proxy_first_and_a_working_one_second(self):
        with DiscoveryWorld(self) as f:
            f.company_a_servers()
            f.company_b_gateway()
            f.middle()
            f.pac_server(8080, {"proxy.pac": PAC})
            f.end("srv", "server", f.n.a, f"{PUBLIC}:7000")
            cli = f.client(f"pac+http://{B_GATEWAY}:8080/proxy.pac")
            f.crossed(self, cli)
            self.assertRegex(cli.log(), rf'the PAC file pac\+http://{re.escape(B_GATEWAY)}:8080/proxy.pac says '
                                        rf'https://{re.escape(PUBLIC)}/ -> "PROXY {re.escape(B_GATEWAY)}:9999; PROXY')

    def test_wpad_is_found_through_the_search_domain(self):
        # ip netns exec lays /etc/netns/<ns>/{resolv.conf,hosts} over /etc:
        # B's search domain is corp.test, and wpad.corp.test is its gateway.
        with DiscoveryWorld(self) as f:
            etc = f"/etc/netns/{f.n.b}"
            os.makedirs(etc)
            try:
                with open(os.path.join(etc, "resolv.conf"), "w") as fh:
                    fh.write("search corp.test\nnameserver 127.0.0.1\n")
                with open(os.path.join(etc, "hosts"), "w") as fh:
                    fh.write(f"127.0.0.1 localhost\n{B_GATEWAY} wpad.corp.test\n")
                f.company_a_servers()
                f.company_b_gateway()
                f.middle()
                f.pac_server(80, {"wpad.dat": PAC})
                f.end("srv", "server", f.n.a, f"{PUBLIC}:7000")
                cli = f.client("auto")
                f.crossed(self, cli)
                self.assertRegex(cli.log(), r"the PAC file pac\+http://wpad\.corp\.test/wpad\.dat says")
            finally:
                shutil.rmtree(etc, ignore_errors=True)

    def test_a_pac_file_that_loops_is_a_clear_error_not_a_hang(self):
        with DiscoveryWorld(self) as f:
            f.middle()
            loop = f.w._write("loop.pac", "function FindProxyForURL(url, host) { while (true) {} }\n")
            cli = f.client(f"pac+file:{loop}")
            cli.wait_for_log(r"no usable PAC file; the PAC file pac\+file:.*loop\.pac is unusable: FindProxyForURL "
                             r"did not return within 3000 ms", timeout=20)
            # The end goes on (by the environment, here nothing): it still
            # answers its SOCKS port.
            self.assertIsNone(cli.proc.poll())


if __name__ == "__main__":
    unittest.main()
