"""Cascades of middle proxies: the real binaries, chained with next_hop."""
import os
import unittest

from lstp_world import World, socks_connect, recv_exact, free_port


def echo_through(test, w, sport):
    echo = w.servers.echo()
    s, _ = socks_connect(sport, "localhost", echo)
    payload = os.urandom(3 * 1024 * 1024)
    import threading
    threading.Thread(target=s.sendall, args=(payload,), daemon=True).start()
    test.assertEqual(recv_exact(s, len(payload)), payload)
    s.close()


class CascadeTest(unittest.TestCase):
    def test_three_middles_client_to_m1_server_to_m3(self):
        with World() as w:
            p3, m3, _ = w.middle("m3")
            p2, m2, _ = w.middle("m2", next_hop=p3)
            p1, m1, _ = w.middle("m1", next_hop=p2)
            _, srv, _ = w.end("srv", "server", p3)
            sport, cli, _ = w.end("cli", "client", p1)
            cli.wait_for_log("tunnel it up")
            srv.wait_for_log("tunnel it up")
            path = (f'client-end "cli" -> middle "m1" (127.0.0.1:{p1}) -> middle "m2" (127.0.0.1:{p2}) '
                    f'-> middle "m3" (127.0.0.1:{p3}) -> server-end "srv"')
            self.assertIn(path, cli.log())
            self.assertIn(path, srv.log())
            m1.wait_for_log("setup forwarded to next hop")
            m2.wait_for_log("setup forwarded to next hop")
            m3.wait_for_log("paired")
            echo_through(self, w, sport)

    def test_server_first_then_client_through_the_chain(self):
        with World() as w:
            p2, _, _ = w.middle("m2")
            p1, _, _ = w.middle("m1", next_hop=p2)
            # The server end joins the first middle, the client end the last.
            _, srv, _ = w.end("srv", "server", p1)
            sport, cli, _ = w.end("cli", "client", p2)
            cli.wait_for_log("tunnel it up")
            self.assertIn(f'client-end "cli" -> middle "m2" (127.0.0.1:{p2}) -> middle "m1" (127.0.0.1:{p1}) '
                          f'-> server-end "srv"', cli.log())
            echo_through(self, w, sport)

    def test_both_ends_on_the_same_middle_pair_there(self):
        with World() as w:
            p2, m2, _ = w.middle("m2")
            p1, m1, _ = w.middle("m1", next_hop=p2)
            _, srv, _ = w.end("srv", "server", p1)
            m2.wait_for_log("waits for its partner")  # the first setup went on to m2
            sport, cli, _ = w.end("cli", "client", p1)
            cli.wait_for_log("tunnel it up")
            self.assertIn(f'client-end "cli" -> middle "m1" (127.0.0.1:{p1}) -> server-end "srv"', cli.log())
            m2.wait_for_log("left before its partner came")  # m1 dropped the forwarded setup
            echo_through(self, w, sport)

    def test_a_next_hop_that_starts_late_is_tried_again(self):
        # The setup reaches m1 before m2 listens (a cascade started in any
        # order, or m2 restarting): m1 keeps trying m2 while the setup waits,
        # and the tunnel forms well inside the 10-minute waiting timeout.
        with World() as w:
            p2 = free_port()
            p1, m1, _ = w.middle("m1", next_hop=p2)
            sport, cli, _ = w.end("cli", "client", p1)
            m1.wait_for_log("next hop .* unreachable .*trying it again")
            w.middle("m2", port=p2)
            _, srv, _ = w.end("srv", "server", p2)
            cli.wait_for_log("tunnel it up", timeout=15)
            m1.wait_for_log("setup forwarded to next hop")
            echo_through(self, w, sport)

    def test_a_loop_of_middles_is_refused(self):
        with World() as w:
            p1 = free_port()
            p2, m2, _ = w.middle("m2", next_hop=p1)
            _, m1, _ = w.middle("m1", port=p1, next_hop=p2)
            _, srv, _ = w.end("srv", "server", p1)
            m1.wait_for_log("topology loop|already passed middle")
            srv.wait_for_log("refused the setup.*already passed middle")
            # The refusal ends only that setup: both middles are still running.
            self.assertIsNone(m1.proc.poll())
            self.assertIsNone(m2.proc.poll())

if __name__ == "__main__":
    unittest.main()
