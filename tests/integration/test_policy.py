"""The server end's policy (issue 4, point 5): it connects only where its
config allows; a refused request gets SOCKS reply 0x02 and a log line naming
the rule; a server end without allow rules refuses everything."""
import unittest

from lstp_world import World, SocksError, socks_connect, recv_exact


def refusal(sport, host, port):
    try:
        s, _ = socks_connect(sport, host, port)
    except SocksError as e:
        return e.code
    s.close()
    return 0


class PolicyTest(unittest.TestCase):
    def test_allow_and_deny_rules(self):
        with World() as w:
            echo = w.servers.echo()
            other = w.servers.echo()
            mport, _, _ = w.middle("m1")
            policy = (f"  allow:\n    - 127.0.0.0/8:{echo}\n    - \"localhost:{other}\"\n"
                      f"  deny:\n    - 127.0.0.2\n    - blocked.invalid\n")
            _, srv, _ = w.end("srv", "server", mport, server_extra=policy)
            sport, cli, _ = w.end("cli", "client", mport)
            cli.wait_for_log("tunnel it up")
            srv.wait_for_log(rf"the far side may reach 127\.0\.0\.0/8:{echo}, localhost:{other}; "
                             r"never 127\.0\.0\.2, blocked\.invalid")
            # Allowed by network and port.
            s, _ = socks_connect(sport, "127.0.0.1", echo)
            s.sendall(b"ok")
            self.assertEqual(recv_exact(s, 2), b"ok")
            s.close()
            # Allowed by name and port, but the name resolves to loopback,
            # which only a network rule opens (here for another port).
            self.assertEqual(refusal(sport, "localhost", other), 2)
            srv.wait_for_log(rf"\(localhost:{other}\): refused by policy \(127\.0\.0\.1: loopback addresses are "
                             r"reached only where an allow rule names their network\)")
            # Another port: nothing allows it.
            self.assertEqual(refusal(sport, "127.0.0.1", other), 2)
            srv.wait_for_log(rf"channel \d+ \(127\.0\.0\.1:{other}\): refused by policy \(no allow rule matches\)")
            # Inside an allowed network but denied.
            self.assertEqual(refusal(sport, "127.0.0.2", echo), 2)
            srv.wait_for_log(r'refused by policy \(deny rule "127\.0\.0\.2"\)')
            # A denied name is refused before it is resolved.
            self.assertEqual(refusal(sport, "blocked.invalid", echo), 2)
            srv.wait_for_log(r'\(blocked\.invalid:\d+\): refused by policy \(deny rule "blocked\.invalid"\)')
            # A name no name rule covers on this port, whose address a network
            # rule allows: allowed.
            self.assertEqual(refusal(sport, "localhost", echo), 0)
            # The client end's log says why too.
            cli.wait_for_log(r"the server end's policy refuses 127\.0\.0\.2")

    def test_allow_everything_but_loopback_cannot_be_walked_around(self):
        # allow "*" with loopback denied: no other spelling of this host (or
        # of the far network's own services) gets through; reply 0x02 each.
        with World() as w:
            echo = w.servers.echo()  # listens on 127.0.0.1: what the spellings below would reach
            mport, _, _ = w.middle("m1")
            _, srv, _ = w.end("srv", "server", mport,
                              server_extra="  allow: \"*\"\n  deny:\n    - 127.0.0.0/8\n    - \"::1\"\n")
            sport, cli, _ = w.end("cli", "client", mport)
            cli.wait_for_log("tunnel it up")
            for host in ("0.0.0.0", "::", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1", "localhost",
                         "169.254.169.254", "127.0.0.1"):
                with self.subTest(host=host):
                    self.assertEqual(refusal(sport, host, echo), 2)
            log = srv.log()
            self.assertIn("unspecified (0.0.0.0/8) addresses are reached only where an allow rule names their "
                          "network", log)
            self.assertIn('deny rule "127.0.0.0/8" (embedded in the IPv6 address)', log)
            self.assertNotRegex(log, r"channel \d+ \([^)]*\): connected")

    def test_a_server_end_without_allow_rules_refuses_everything(self):
        with World() as w:
            echo = w.servers.echo()
            mport, _, _ = w.middle("m1")
            _, srv, _ = w.end("srv", "server", mport, server_extra="  allow: []\n")
            sport, cli, _ = w.end("cli", "client", mport)
            cli.wait_for_log("tunnel it up")
            srv.wait_for_log("the server end allows nothing yet")
            self.assertEqual(refusal(sport, "127.0.0.1", echo), 2)
            self.assertEqual(refusal(sport, "localhost", echo), 2)
            srv.wait_for_log(r"refused by policy \(no allow rule matches\)", count=2)


if __name__ == "__main__":
    unittest.main()
