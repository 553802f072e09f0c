"""The status pages in a real browser: Debian's headless Chromium, driven by
playwright-core (tests/browser/admin_page.mjs), loads each process's page
while a tunnel carries two curl downloads; clicking Close on one channel
resets that curl (exit code 56) while the other completes intact.
Screenshots go to build/screenshots (LSTP_SCREENSHOTS)."""
import hashlib
import http.server
import os
import subprocess
import threading
import time
import unittest

from lstp_world import REPO, World, free_port, wait_for_port
from test_admin import TOKEN, get_json

BROWSER_DIR = os.path.join(REPO, "tests", "browser")
SHOTS = os.environ.get("LSTP_SCREENSHOTS", os.path.join(REPO, "build", "screenshots"))


class SlowFileServer:
    """Serves one body at about 1.6 MB/s per download, so that it is still
    on its way through the tunnel when the page closes its channel (with a
    fast server and a rate-limited curl, the whole file sat in the socket
    buffers already, and the reset came after the last byte)."""

    def __init__(self, body):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for at in range(0, len(body), 64 * 1024):
                        self.wfile.write(body[at:at + 64 * 1024])
                        time.sleep(0.04)
                except OSError:
                    pass  # the closed channel's download

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class AdminPageTest(unittest.TestCase):
    def test_close_a_channel_from_the_page_while_curl_downloads(self):
        for need in ("/usr/bin/chromium", os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
            self.assertTrue(os.path.exists(need), f"{need} is missing: tools/install-deps.sh installs it")
        os.makedirs(SHOTS, exist_ok=True)
        with World() as w:
            token_path = w._write("admin.token", TOKEN + "\n")
            ma, sa, ca = free_port(), free_port(), free_port()
            mp, _, _ = w.middle("m1", extra=f"admin:\n  listen: 127.0.0.1:{ma}\n", log="info")
            w.end("srv", "server", mp, extra=f"admin:\n  listen: 127.0.0.1:{sa}\n", log="info")
            sport, cli, _ = w.end("cli", "client", mp, log="info",
                                  extra=f"admin:\n  listen: 127.0.0.1:{ca}\n  token_file: {token_path}\n")
            cli.wait_for_log("tunnel it up")
            for p in (ma, sa, ca):
                wait_for_port(p)

            data = os.urandom(12 * 1024 * 1024)
            server = SlowFileServer(data)
            web = server.port

            driver = subprocess.Popen(
                ["node", "admin_page.mjs", f"http://127.0.0.1:{ca}/", f"http://127.0.0.1:{sa}/",
                 f"http://127.0.0.1:{ma}/", TOKEN, SHOTS],
                cwd=BROWSER_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            curls = []
            try:
                def step(expect):
                    line = driver.stdout.readline().strip()
                    if not line.startswith(expect):
                        driver.kill()
                        self.fail(f"browser: expected {expect}, got {line!r}; {driver.stderr.read()}")
                    return line

                ready = step("READY")
                self.assertIn('middle \\"m1\\"', ready)
                # Two downloads of about 8 s each, long enough to close one
                # from the page while both run.
                victim_port = free_port()
                for i, local in enumerate((victim_port, None)):
                    out = os.path.join(w.dir, f"out{i}")
                    argv = ["curl", "-sS", "-o", out, "--max-time", "60",
                            "--socks5-hostname", f"127.0.0.1:{sport}", f"http://localhost:{web}/big.bin"]
                    if local:
                        argv[1:1] = ["--local-port", str(local)]
                    curls.append((subprocess.Popen(argv, stderr=subprocess.PIPE), out))
                    time.sleep(2.5)  # the page refreshes every second: it sees one, then two
                grew = step("GREW")
                self.assertIn("[0,1,2]", grew.replace(" ", ""))  # seen growing one by one

                channels = get_json(ca)["tunnels"][0]["channels"]
                (victim_id,) = [c["id"] for c in channels if c["app"] == f"127.0.0.1:{victim_port}"]
                driver.stdin.write(f"CLOSE {victim_id}\n")
                driver.stdin.flush()
                step("CLOSED")
                step("DONE")
                self.assertEqual(driver.wait(timeout=30), 0, driver.stderr.read())

                (victim, victim_out), (other, other_out) = curls
                self.assertEqual(victim.wait(timeout=30), 56, "the closed download must fail (reset), not end")
                self.assertEqual(other.wait(timeout=60), 0, other.stderr.read())
                with open(other_out, "rb") as f:
                    self.assertEqual(hashlib.sha256(f.read()).hexdigest(), hashlib.sha256(data).hexdigest())
                self.assertLess(os.path.getsize(victim_out), len(data))
                for shot in ("client-idle", "client-channels", "client-after-close", "server", "middle"):
                    self.assertGreater(os.path.getsize(os.path.join(SHOTS, shot + ".png")), 10000, shot)
            finally:
                server.close()
                if driver.poll() is None:
                    driver.kill()
                driver.wait()
                for stream in (driver.stdin, driver.stdout, driver.stderr):
                    stream.close()
                for c, _ in curls:
                    if c.poll() is None:
                        c.kill()
                    c.wait()
                    c.stderr.close()


if __name__ == "__main__":
    unittest.main()
