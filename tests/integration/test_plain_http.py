"""Only plain HTTP out (issue 17 points 1 and 5): company B's proxy forwards
ordinary requests and refuses CONNECT (tinyproxy with ConnectPort 0, squid
with http_access deny CONNECT). The client end finds the `http` carrier
last in its adaptive plan and carries curl, a 64 MiB download, 100 parallel
downloads and an ssh session through it; a proxy of our own that drops
every fifth request (half of them before forwarding, half after, so the
middle sees repeats) costs no byte. Needs root (namespaces)."""
import hashlib
import os
import re
import subprocess
import sys
import threading
import time
import unittest

import netns_world
from netns_world import A_HOST, B_GATEWAY, PUBLIC
import test_firewalls
from test_firewalls import PAGE, Firewalled
from test_proxy_logins import SquidWorld

# A forward proxy for plain requests (absolute-form targets, keep-alive)
# that loses every fifth request: odd fifths before forwarding it, even
# fifths after (the answer is lost: the client sends the request again and
# the middle sees it twice). Counts what it did on stderr.
DROPPING_PROXY = r"""
import socket, sys, threading
count = 0
lock = threading.Lock()

def read_head(s, buf):
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return None, buf
        buf += d
    i = buf.index(b"\r\n\r\n") + 4
    return buf[:i], buf[i:]

def length(head):
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            return int(v.strip())
    return 0

def read_body(s, buf, n):
    while len(buf) < n:
        d = s.recv(65536)
        if not d:
            return None, buf
        buf += d
    return buf[:n], buf[n:]

def serve(c):
    global count
    buf, up, ubuf = b"", None, b""
    try:
        while True:
            head, buf = read_head(c, buf)
            if head is None:
                return
            body, buf = read_body(c, buf, length(head))
            if body is None:
                return
            with lock:
                count += 1
                n = count
            if n % 10 == 5:
                print("dropped request", n, file=sys.stderr, flush=True)
                return
            line, rest = head.split(b"\r\n", 1)
            method, target, version = line.split(b" ")
            assert target.startswith(b"http://"), target
            hostport, _, path = target[7:].partition(b"/")
            host, _, port = hostport.partition(b":")
            if up is None:
                up = socket.create_connection((host.decode(), int(port or 80)))
            up.sendall(method + b" /" + path + b" " + version + b"\r\n" + rest + body)
            rhead, ubuf = read_head(up, ubuf)
            if rhead is None:
                return
            rbody, ubuf = read_body(up, ubuf, length(rhead))
            if rbody is None:
                return
            if n % 10 == 0:
                print("dropped answer", n, file=sys.stderr, flush=True)
                return
            c.sendall(rhead + rbody)
    except OSError:
        pass
    finally:
        c.close()
        if up is not None:
            up.close()

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2])))
srv.listen(128)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

# Through the tunnel to A's echo server: sends random bytes, reads them
# back, prints the digest of both.
ECHO_CLIENT = r"""
import hashlib, os, socket, struct, sys, threading
s = socket.create_connection(("127.0.0.1", 1080))
s.sendall(b"\x05\x01\x00"); assert s.recv(2) == b"\x05\x00"
s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(sys.argv[1]) + struct.pack("!H", 9000))
r = b""
while len(r) < 10: r += s.recv(10 - len(r))
assert r[1] == 0, r
data = os.urandom(int(sys.argv[2]))
def send():
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send); t.start()
got = hashlib.sha256()
n = 0
while True:
    d = s.recv(1 << 20)
    if not d: break
    got.update(d); n += len(d)
t.join()
print(hashlib.sha256(data).hexdigest(), got.hexdigest(), n)
"""


# A's web server for 100 downloads at once: python's http.server listens
# with a backlog of 5, and connections past it wait for SYN retries.
WEB_SERVER = r"""
import functools, http.server, sys
class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 512
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[3])
http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
Server((sys.argv[1], int(sys.argv[2])), handler).serve_forever()
"""


def big_file(f, name, size):
    data = os.urandom(size)
    with open(os.path.join(f.w.dir, "www", name), "wb") as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest()


def download(f, name, out, max_time=120):
    return f.n.ns(f.n.b, "curl", "-sS", "--max-time", str(max_time), "--socks5-hostname", "127.0.0.1:1080",
                  "-o", out, f"http://{A_HOST}:8080/{name}", check=False)


def sha_of(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


class PlainHttpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        why = netns_world.unavailable()
        if why:
            raise unittest.SkipTest(why)

    def test_tinyproxy_without_connect_crossed_by_the_http_carrier(self):
        with Firewalled(self) as f:
            f.company_a_servers()
            tp = f.w._write("tinyproxy.conf", f"Port 8888\nListen {B_GATEWAY}\nTimeout 600\nAllow 10.2.0.0/24\n"
                                                "LogLevel Info\nConnectPort 0\n")
            f.third_party("tinyproxy-B", f.n.gw, ["tinyproxy", "-d", "-c", tp])
            f.wait_until(f.n.b, ["bash", "-c", f"exec 3<>/dev/tcp/{B_GATEWAY}/8888"])
            f.middle()
            # CONNECT is refused; a plain request passes.
            r = f.n.ns(f.n.b, "curl", "-s", "-o", "/dev/null", "-w", "%{http_connect}", "--max-time", "5", "-p",
                       "-x", f"http://{B_GATEWAY}:8888", f"http://{PUBLIC}:80/", check=False)
            self.assertEqual(r.stdout, "403")
            f.end("srv", "server", f.n.a, f"{PUBLIC}:7000")
            # No ways given: the adaptive plan tries every byte stream first,
            # and the http carrier through the proxy last.
            t0 = time.monotonic()
            cli, _ = f.end("cli", "client", f.n.b, f"{PUBLIC}:80",
                           tunnel_extra=f"  proxy: http://{B_GATEWAY}:8888\n")
            cli.wait_for_log("tunnel t up", timeout=60)
            up_after = time.monotonic() - t0
            self.assertRegex(cli.log(), rf"by http via http://{B_GATEWAY}:8888 in")
            r = f.curl_from_b()
            self.assertEqual((r.returncode, r.stdout.encode()), (0, PAGE), r.stderr)

            # 64 MiB down, whole.
            want = big_file(f, "big.bin", 64 * 1024 * 1024)
            out = os.path.join(f.w.dir, "got.bin")
            t0 = time.monotonic()
            r = download(f, "big.bin", out)
            took = time.monotonic() - t0
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(sha_of(out), want)
            os.unlink(out)

            # 100 downloads at once, each whole, from a server that takes
            # them all at once.
            web = f.w._write("web_server.py", WEB_SERVER)
            f.third_party("web-A-8081", f.n.a, [sys.executable, web, A_HOST, "8081", os.path.join(f.w.dir, "www")])
            f.wait_until(f.n.a, ["curl", "-sf", "-o", "/dev/null", f"http://{A_HOST}:8081/hello.txt"])
            small = {i: big_file(f, f"s{i}.bin", 64 * 1024 + i) for i in range(100)}
            outs = os.path.join(f.w.dir, "many")
            os.makedirs(outs)
            script = " & ".join(
                f"curl -sS --max-time 120 --socks5-hostname 127.0.0.1:1080 -o {outs}/s{i}.bin "
                f"http://{A_HOST}:8081/s{i}.bin" for i in range(100)) + " & wait"
            t1 = time.monotonic()
            r = f.n.ns(f.n.b, "bash", "-c", script, check=False)
            many = time.monotonic() - t1
            for i, digest in small.items():
                self.assertEqual(sha_of(f"{outs}/s{i}.bin"), digest, f"download {i}")

            # An interactive ssh session.
            ssh = subprocess.Popen(test_firewalls.FirewallTest.sshd_in_a(self, f), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
            try:
                times = []
                for line in (b"first", b"second", b"third"):
                    t2 = time.monotonic()
                    ssh.stdin.write(line + b"\n")
                    ssh.stdin.flush()
                    got = []
                    th = threading.Thread(target=lambda: got.append(ssh.stdout.readline()), daemon=True)
                    th.start()
                    th.join(30)
                    self.assertEqual(got, [line + b"\n"], ssh.stderr.read1() if ssh.poll() is not None else "")
                    times.append(time.monotonic() - t2)
            finally:
                ssh.kill()
                ssh.wait()
                for pipe in (ssh.stdin, ssh.stdout, ssh.stderr):
                    pipe.close()
            print(f"\nhttp via tinyproxy (CONNECT denied): up after {up_after:.1f} s (adaptive), 64 MiB in "
                  f"{took:.1f} s ({64 / took:.1f} MiB/s), 100 parallel downloads in {many:.1f} s, ssh line echoed "
                  f"in {', '.join(f'{t * 1000:.0f}' for t in times)} ms", file=sys.stderr)
            self.assertEqual(cli.stop(), [])

    def test_squid_denying_connect_and_wanting_a_login_crossed_by_the_http_carrier(self):
        # squid refuses CONNECT and wants a Digest login for everything
        # else: every request of the carrier carries it (a count of its own
        # each), and no password reaches a log.
        with SquidWorld(self) as f:
            f.company_a_servers()
            pw = os.path.join(f.w.dir, "digest.pw")
            with open(pw, "w") as fh:
                fh.write("alice:plain-secret-17\n")
            os.chmod(pw, 0o644)
            f.squid(f"auth_param digest program /usr/lib/squid/digest_file_auth {pw}\n"
                    "auth_param digest realm corp\nauth_param digest children 2",
                    access="acl CONNECT method CONNECT\nacl authed proxy_auth REQUIRED\n"
                           "http_access deny CONNECT\nhttp_access allow authed\nhttp_access deny all\n")
            f.middle()
            f.end("srv", "server", f.n.a, f"{PUBLIC}:7000")
            proxy = f"http://alice:plain-secret-17@{B_GATEWAY}:3128"
            cli, _ = f.end("cli", "client", f.n.b, f"{PUBLIC}:80",
                           tunnel_extra=f"  ways: ['tcp via {proxy}', 'http via {proxy}']\n")
            cli.wait_for_log("tunnel t up", timeout=30)
            self.assertRegex(cli.log(), rf"by http via http://alice@{B_GATEWAY}:3128 in")
            r = f.curl_from_b()
            self.assertEqual((r.returncode, r.stdout.encode()), (0, PAGE), r.stderr)
            want = big_file(f, "big.bin", 16 * 1024 * 1024)
            out = os.path.join(f.w.dir, "got.bin")
            r = download(f, "big.bin", out)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(sha_of(out), want)
            self.assertEqual(cli.stop(), [])
            f.logged_tunnel(self, rf"TCP_DENIED/403 \d+ CONNECT {re.escape(PUBLIC)}:80 ")
            # The carrier's requests, as squid saw them: ordinary POSTs and GETs.
            # (squid logs them without their query)
            f.logged_tunnel(self, rf"TCP_MISS/204 \d+ POST http://{re.escape(PUBLIC)}/lstp/up\? alice ")
            f.logged_tunnel(self, rf"TCP_MISS/200 \d+ GET http://{re.escape(PUBLIC)}/lstp/down\? alice ")
            for p in f.w.procs:
                self.assertNotIn("plain-secret-17", p.log(), f"{p.name} logged the password")
            # A wrong password is refused, saying so.
            bad, _ = f.end("bad", "client", f.n.b, f"{PUBLIC}:80",
                           tunnel_extra=f"  ways: 'http via http://alice:wrong-secret-0@{B_GATEWAY}:3128'\n",
                           socks_port=1081)
            bad.wait_for_log(r"407 Proxy Authentication Required: it refused the user name or password \(Digest\)",
                             timeout=20)
            self.assertNotIn("wrong-secret-0", bad.log())

    def test_a_proxy_that_drops_every_fifth_request_costs_no_byte(self):
        with Firewalled(self) as f:
            f.company_a_servers()
            proxy = f.w._write("dropping_proxy.py", DROPPING_PROXY)
            dropper = f.third_party("dropper-B", f.n.gw, [sys.executable, proxy, B_GATEWAY, "8080"])
            f.wait_until(f.n.b, ["bash", "-c", f"exec 3<>/dev/tcp/{B_GATEWAY}/8080"])
            f.middle()
            f.end("srv", "server", f.n.a, f"{PUBLIC}:7000")
            cli, _ = f.end("cli", "client", f.n.b, f"{PUBLIC}:80",
                           tunnel_extra=f"  ways: 'http via http://{B_GATEWAY}:8080'\n")
            cli.wait_for_log("tunnel t up", timeout=30)
            # Both ways at once through the echo server, then a download.
            echo = f.w._write("echo_client.py", ECHO_CLIENT)
            r = f.n.ns(f.n.b, sys.executable, echo, A_HOST, str(8 * 1024 * 1024), check=False)
            self.assertEqual(r.returncode, 0, r.stderr)
            sent, got, n = r.stdout.split()
            self.assertEqual((got, int(n)), (sent, 8 * 1024 * 1024))
            want = big_file(f, "big.bin", 16 * 1024 * 1024)
            out = os.path.join(f.w.dir, "got.bin")
            r = download(f, "big.bin", out)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(sha_of(out), want)
            log = dropper.log()
            requests_lost, answers_lost = log.count("dropped request"), log.count("dropped answer")
            self.assertGreater(requests_lost, 5)
            self.assertGreater(answers_lost, 5)
            print(f"\ndropping proxy: {requests_lost} requests and {answers_lost} answers lost, "
                  "no byte lost or repeated", file=sys.stderr)
            # One tunnel all along: the carrier absorbed the losses.
            self.assertEqual(cli.log().count("tunnel t up ("), 1)
            self.assertNotIn("hop lost", cli.log())
            self.assertEqual(cli.stop(), [])


if __name__ == "__main__":
    unittest.main()
