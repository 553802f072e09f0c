"""Firewall traversal in a real firewalled world (issue 3, point 5): network
namespaces, veth links and nftables (see netns_world.py). Company B reaches
a web server inside company A through the tunnel, over every way out of B,
the adaptive choice finds the way that works and reuses it, and the tunnel
survives a restarted middle proxy and a link cut for 30 seconds.

Skips, saying why, where namespaces cannot be made (not root, no nft)."""
import getpass
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import unittest

import netns_world
from netns_world import A_HOST, B_GATEWAY, PUBLIC, Namespaces
from lstp_world import SECRET, World, Proc

HERE = os.path.dirname(os.path.abspath(__file__))
PAGE = b"hello from inside company A\n"

ECHO_SERVER = """
import socket, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("%s", 9000)); srv.listen(64)
def serve(c):
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
""" % A_HOST

# Runs inside B as ssh's ProxyCommand: a SOCKS5 CONNECT through the client
# end, then the bytes both ways.
SOCKS_PROXY_COMMAND = """
import os, select, socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"\\x05\\x01\\x00"); assert s.recv(2) == b"\\x05\\x00"
s.sendall(b"\\x05\\x01\\x00\\x01" + socket.inet_aton(sys.argv[2]) + struct.pack("!H", int(sys.argv[3])))
r = b""
while len(r) < 10: r += s.recv(10 - len(r))
assert r[1] == 0, r
while True:
    ready, _, _ = select.select([0, s], [], [])
    if 0 in ready:
        d = os.read(0, 65536)
        if not d: s.shutdown(socket.SHUT_WR)
        else: s.sendall(d)
    if s in ready:
        d = s.recv(65536)
        if not d: break
        os.write(1, d)
"""


class Firewalled:
    """The namespaces plus the lstp world running in them."""

    def __init__(self, tc):
        self.tc = tc

    def __enter__(self):
        self.n = Namespaces().__enter__()
        self.w = World().__enter__()
        return self

    def __exit__(self, *exc):
        try:
            self.w.__exit__(*exc)
        finally:
            self.n.__exit__(*exc)
        return False

    def third_party(self, name, ns, argv):
        p = Proc(name, ["ip", "netns", "exec", ns] + argv, os.path.join(self.w.dir, f"{name}.log"), ours=False)
        self.w.procs.append(p)
        return p

    def wait_until(self, ns, argv, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.n.ns(ns, *argv, check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError(f"{' '.join(argv)} in {ns} did not succeed within {timeout}s")

    def company_a_servers(self):
        www = os.path.join(self.w.dir, "www")
        os.makedirs(www)
        with open(os.path.join(www, "hello.txt"), "wb") as f:
            f.write(PAGE)
        self.third_party("web-A", self.n.a, [sys.executable, "-m", "http.server", "8080", "--bind", A_HOST,
                                             "--directory", www])
        echo = self.w._write("echo_server.py", ECHO_SERVER)
        self.third_party("echo-A", self.n.a, [sys.executable, echo])
        self.wait_until(self.n.a, ["curl", "-sf", "-o", "/dev/null", f"http://{A_HOST}:8080/hello.txt"])

    def company_b_gateway(self):
        tp = self.w._write("tinyproxy.conf", f"Port 8888\nListen {B_GATEWAY}\nTimeout 600\nAllow 10.2.0.0/24\n"
                                               "LogLevel Connect\nConnectPort 443\nConnectPort 80\n")
        self.tinyproxy = self.third_party("tinyproxy-B", self.n.gw, ["tinyproxy", "-d", "-c", tp])
        d = self.w._write("danted.conf", f"logoutput: stderr\ninternal: {B_GATEWAY} port = 1080\n"
                                           "external: 10.3.0.2\nsocksmethod: none\nclientmethod: none\n"
                                           "user.privileged: root\nuser.unprivileged: nobody\n"
                                           "client pass { from: 10.2.0.0/24 to: 0.0.0.0/0 }\n"
                                           "socks pass { from: 10.2.0.0/24 to: 0.0.0.0/0 }\n")
        self.third_party("danted-B", self.n.gw, ["/usr/sbin/danted", "-f", d, "-N", "1", "-p",
                                                 os.path.join(self.w.dir, "danted.pid")])
        self.wait_until(self.n.b, ["bash", "-c", f"exec 3<>/dev/tcp/{B_GATEWAY}/8888"])
        self.wait_until(self.n.b, ["bash", "-c", f"exec 3<>/dev/tcp/{B_GATEWAY}/1080"])

    def middle(self, name="m1"):
        path = self.w._write(f"{name}.yaml", f"name: {name}\nlisten:\n  - {PUBLIC}:80\n  - {PUBLIC}:443\n"
                                               f"  - {PUBLIC}:7000\nlog_level: debug\n")
        m = self.w.start(name, ["middleproxy", "-c", path], ns=self.n.inet)
        m.wait_for_log("listening on .*:7000")
        return m, path

    def end(self, name, role, ns, middle, tunnel_extra="", extra="", env=None, socks_port=1080):
        secret = self.w._write(f"{name}.secret", SECRET + "\n")
        text = (f"name: {name}\nrole: {role}\ntunnel:\n  name: t\n  secret_file: {secret}\n  middle: {middle}\n"
                f"  retry_interval: 200ms\n  retry_max: 3s\n  way_timeout: 2s\n" + tunnel_extra)
        if role == "client":
            text += f"socks:\n  listen: 127.0.0.1:{socks_port}\n"
        else:
            text += f"server:\n  connect_timeout: 3s\n  allow: \"{A_HOST}\"\n"
        text += "log_level: debug\n" + extra
        path = self.w._write(f"{name}.yaml", text)
        return self.w.start(name, ["endproxy", "-c", path], env=env, ns=ns), path

    def curl_from_b(self):
        return self.n.ns(self.n.b, "curl", "-sS", "--max-time", "20", "--socks5-hostname", "127.0.0.1:1080",
                         f"http://{A_HOST}:8080/hello.txt", check=False)


class FirewallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        why = netns_world.unavailable()
        if why:
            raise unittest.SkipTest(why)

    def test_direct_connections_across_the_firewalls_are_refused(self):
        with Firewalled(self) as f:
            f.company_a_servers()
            f.company_b_gateway()
            f.middle()
            quick = ["curl", "-s", "-o", "/dev/null", "--max-time", "2"]
            # Nothing gets into A, from the internet or from B.
            self.assertNotEqual(f.n.ns(f.n.inet, *quick, f"http://{A_HOST}:8080/", check=False).returncode, 0)
            self.assertNotEqual(f.n.ns(f.n.b, *quick, f"http://{A_HOST}:8080/", check=False).returncode, 0)
            # B reaches the internet only through its proxy, which CONNECTs
            # only to 80 and 443.
            self.assertNotEqual(f.n.ns(f.n.b, *quick, f"http://{PUBLIC}:80/", check=False).returncode, 0)
            r = f.n.ns(f.n.b, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "-x",
                       f"http://{B_GATEWAY}:8888", f"http://{PUBLIC}:80/", check=False)
            self.assertEqual(r.stdout, "404")  # the middle's answer to a web request
            r = f.n.ns(f.n.b, "curl", "-s", "-o", "/dev/null", "-w", "%{http_connect}", "--max-time", "5", "-p",
                       "-x", f"http://{B_GATEWAY}:8888", f"http://{PUBLIC}:7000/", check=False)
            self.assertEqual(r.stdout, "403")
            # A may go out.
            r = f.n.ns(f.n.a, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                       f"http://{PUBLIC}:80/", check=False)
            self.assertEqual(r.stdout, "404")

    def test_every_way_out_of_b_reaches_a_web_server_in_a(self):
        proxy = f"http://{B_GATEWAY}:8888"
        socks5 = f"socks5://{B_GATEWAY}:1080"
        socks4a = f"socks4a://{B_GATEWAY}:1080"
        cases = [
            (f"tcp via {proxy}", 443), (f"tls via {proxy}", 443), (f"ws via {proxy}", 80),
            (f"wss via {proxy}", 443), (f"tcp via {socks5}", 7000), (f"ws via {socks4a}", 80),
        ]
        with Firewalled(self) as f:
            f.company_a_servers()
            f.company_b_gateway()
            f.middle()
            # A goes out directly (automatic ways: plain TCP wins).
            srv, _ = f.end("srv", "server", f.n.a, f"{PUBLIC}:7000")
            for i, (way, port) in enumerate(cases):
                with self.subTest(way=way):
                    cli, _ = f.end(f"cli{i}", "client", f.n.b, f"{PUBLIC}:{port}",
                                   tunnel_extra=f"  ways: \"{way}\"\n")
                    cli.wait_for_log("tunnel t up", timeout=20)
                    self.assertRegex(cli.log(), re.escape(f"by {way} in"))
                    r = f.curl_from_b()
                    self.assertEqual((r.returncode, r.stdout.encode()), (0, PAGE), r.stderr)
                    self.assertEqual(cli.stop(), [])
            self.assertRegex(srv.log(), rf"connected to middle proxy {PUBLIC}:7000 by tcp in")

    def test_the_adaptive_choice_finds_the_way_and_reuses_it(self):
        with Firewalled(self) as f:
            f.company_a_servers()
            f.company_b_gateway()
            f.middle()
            f.end("srv", "server", f.n.a, f"{PUBLIC}:7000")
            state = os.path.join(f.w.dir, "b.state")
            extra = f"  proxy: http://{B_GATEWAY}:8888\n  state_file: {state}\n"
            t0 = time.monotonic()
            cli, path = f.end("cli", "client", f.n.b, f"{PUBLIC}:443", tunnel_extra=extra)
            # Direct TCP and TLS are dropped at B's gateway (each costs its
            # 2 s timeout, raced two at a time); TCP through the proxy works.
            cli.wait_for_log("tunnel t up", timeout=20)
            first = time.monotonic() - t0
            log = cli.log()
            self.assertRegex(log, rf"by tcp via http://{B_GATEWAY}:8888 in .*failed first; tcp to {PUBLIC}:443: "
                                  r"cannot connect to middle proxy .*timed out")
            self.assertEqual(f.curl_from_b().stdout.encode(), PAGE)
            with open(state) as fh:
                self.assertIn(f"{PUBLIC}:443 tcp via http://{B_GATEWAY}:8888\n", fh.read())
            self.assertEqual(cli.stop(), [])
            t1 = time.monotonic()
            again = f.w.start("cli-again", ["endproxy", "-c", path], ns=f.n.b)
            again.wait_for_log("tunnel t up", timeout=20)
            second = time.monotonic() - t1
            self.assertRegex(again.log(), rf"by tcp via http://{B_GATEWAY}:8888 in [0-9.]+ ms, waiting")
            print(f"\nadaptive choice: first start up in {first:.2f} s, second start (remembered) in {second:.2f} s",
                  file=sys.stderr)
            self.assertEqual(f.curl_from_b().stdout.encode(), PAGE)

    def test_the_client_ends_way_out_changes_mid_transfer(self):
        # B's client end goes out by tcp through the gateway's SOCKS proxy;
        # mid-download the gateway starts dropping SOCKS (both ways, the
        # connection in use included). The hop goes silent, is lost, and the
        # tunnel resumes by the next way, wss through the HTTP proxy: the
        # download completes intact.
        liveness = "limits:\n  keepalive: 1s\n  dead_after: 3s\n"
        with Firewalled(self) as f:
            f.company_a_servers()
            f.company_b_gateway()
            f.middle()
            payload = os.urandom(24 * 1024 * 1024)
            with open(os.path.join(f.w.dir, "www", "big.bin"), "wb") as fh:
                fh.write(payload)
            srv, _ = f.end("srv", "server", f.n.a, f"{PUBLIC}:443", extra=liveness)
            ways = f"  ways: [\"tcp via socks5://{B_GATEWAY}:1080\", \"wss via http://{B_GATEWAY}:8888\"]\n"
            cli, _ = f.end("cli", "client", f.n.b, f"{PUBLIC}:443", tunnel_extra=ways, extra=liveness)
            cli.wait_for_log("tunnel t up", timeout=20)
            self.assertRegex(cli.log(), rf"connected to middle proxy .* by tcp via socks5://{B_GATEWAY}:1080")
            out = os.path.join(f.w.dir, "got.bin")
            curl = subprocess.Popen(["ip", "netns", "exec", f.n.b, "curl", "-sS", "--max-time", "60", "--limit-rate",
                                     "8M", "--socks5-hostname", "127.0.0.1:1080", "-o", out,
                                     f"http://{A_HOST}:8080/big.bin"])
            try:
                time.sleep(1.0)
                self.assertIsNone(curl.poll(), "the download ended before the way was blocked")
                f.n.nft(f.n.gw, """
table inet block_socks {
  chain input { type filter hook input priority -10; policy accept; tcp dport 1080 drop; }
  chain output { type filter hook output priority -10; policy accept; tcp sport 1080 drop; }
}""")
                self.assertEqual(curl.wait(timeout=90), 0)
            finally:
                if curl.poll() is None:
                    curl.kill()
                    curl.wait()
            with open(out, "rb") as fh:
                self.assertTrue(fh.read() == payload, "the download arrived altered")
            resumed = re.findall(r"tunnel t resumed after .*", cli.log())
            self.assertTrue(resumed)
            self.assertRegex(resumed[-1], rf"by wss via http://{B_GATEWAY}:8888")
            print(f"\nway change: {resumed[-1]}", file=sys.stderr)
            self.assertEqual(cli.log().count("tunnel t up ("), 1)

    def sshd_in_a(self, f):
        """Debian's sshd on A_HOST:22 with throwaway keys; returns the ssh
        command line for B (through the tunnel, as ProxyCommand)."""
        d = f.w.dir
        for name in ("host", "client"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, name)], check=True)
        os.makedirs("/run/sshd", exist_ok=True)
        cfg = f.w._write("sshd_config", "\n".join([
            f"ListenAddress {A_HOST}:22", f"HostKey {d}/host", f"AuthorizedKeysFile {d}/client.pub",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
            "StrictModes no", "UsePAM no", f"PidFile {d}/sshd.pid", "LogLevel ERROR", ""]))
        f.third_party("sshd-A", f.n.a, [shutil.which("sshd"), "-D", "-e", "-f", cfg])
        f.wait_until(f.n.a, ["bash", "-c", f"exec 3<>/dev/tcp/{A_HOST}/22"])
        proxy = f.w._write("socks_proxy_command.py", SOCKS_PROXY_COMMAND)
        return ["ip", "netns", "exec", f.n.b, "ssh", "-T", "-i", f"{d}/client", "-o", "IdentitiesOnly=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                "-o", "LogLevel=ERROR", "-o", f"ProxyCommand={sys.executable} {proxy} 1080 %h %p",
                f"{getpass.getuser()}@{A_HOST}", "cat"]

    def test_a_restarted_middle_and_a_30_second_link_cut_are_survived(self):
        # Issue 14: the tunnel outlives its hops. The middle proxy restarts,
        # then A's link to the internet is cut for 30 s, under a live
        # interactive ssh session from B to A: it answers all the way, and
        # what was typed during the cut arrives after it.
        liveness = "limits:\n  keepalive: 2s\n  dead_after: 6s\n"
        with Firewalled(self) as f:
            f.company_a_servers()
            f.company_b_gateway()
            m, mpath = f.middle()
            srv, _ = f.end("srv", "server", f.n.a, f"{PUBLIC}:7000", extra=liveness)
            cli, _ = f.end("cli", "client", f.n.b, f"{PUBLIC}:443",
                           tunnel_extra=f"  ways: \"wss via http://{B_GATEWAY}:8888\"\n", extra=liveness)
            cli.wait_for_log("tunnel t up", timeout=20)
            self.assertEqual(f.curl_from_b().stdout.encode(), PAGE)
            ssh = subprocess.Popen(self.sshd_in_a(f), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
            try:
                def say(line):
                    ssh.stdin.write(line + b"\n")
                    ssh.stdin.flush()

                def hear(line, timeout):
                    got = []
                    t = threading.Thread(target=lambda: got.append(ssh.stdout.readline()), daemon=True)
                    t.start()
                    t.join(timeout)
                    self.assertEqual(got, [line + b"\n"], ssh.stderr.read1() if ssh.poll() is not None else "")

                say(b"before anything")
                hear(b"before anything", 20)

                # The middle proxy restarts under the live tunnel.
                self.assertEqual(m.stop(), [])
                f.w.procs.append(f.w.start("m1-again", ["middleproxy", "-c", mpath], ns=f.n.inet))
                cli.wait_for_log("tunnel t resumed after", timeout=30)
                srv.wait_for_log("tunnel t resumed after", timeout=30)
                say(b"after the restart")
                hear(b"after the restart", 20)

                # A's link is cut for 30 s: both ends lose the hop (silence
                # for dead_after), keep the tunnel, and resume once the link
                # is back.
                lost_before = cli.log().count("tunnel t: hop lost")
                f.n.cut_internet_link_of_a()
                cut_at = time.monotonic()
                try:
                    cli.wait_for_log("tunnel t: hop lost", count=lost_before + 1, timeout=20)
                    noticed = time.monotonic() - cut_at
                    say(b"typed during the cut")
                    time.sleep(max(0.0, 30 - (time.monotonic() - cut_at)))
                finally:
                    f.n.restore_internet_link_of_a()
                restored = time.monotonic()
                hear(b"typed during the cut", 40)
                back = time.monotonic() - restored
                say(b"after the cut")
                hear(b"after the cut", 20)
                self.assertIsNone(ssh.poll(), "the ssh session ended")
                cli.wait_for_log("tunnel t resumed after", count=2, timeout=10)
                resumed = re.findall(r"tunnel t resumed after .*", cli.log())[-1]
            finally:
                ssh.kill()
                ssh.wait()
                for pipe in (ssh.stdin, ssh.stdout, ssh.stderr):
                    pipe.close()
            print(f"\nlink cut: hop lost after {noticed:.1f} s, ssh answered {back:.1f} s after the link returned; "
                  f"client end: {resumed}", file=sys.stderr)
            # Resumed, never reconnected: one tunnel all along.
            self.assertEqual(cli.log().count("tunnel t up ("), 1)
            self.assertEqual(f.curl_from_b().stdout.encode(), PAGE)


if __name__ == "__main__":
    unittest.main()
