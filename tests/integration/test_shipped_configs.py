"""The configurations we ship run as they are: the quickstart tunnel and the
three-middle cascade, each serving SOCKS5 on 127.0.0.1:1080."""
import os
import re
import shutil
import socket
import subprocess
import time
import unittest

from lstp_world import BIN, REPO, World, sha256_file


def port_free(port):
    with socket.socket() as s:
        # As the binaries do: a port held only by TIME_WAIT connections is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class ShippedConfigTest(unittest.TestCase):
    def run_shape(self, folder, files, ports):
        busy = [p for p in ports if not port_free(p)]
        if busy:
            self.skipTest(f"ports {busy} are in use on this machine")
        with World() as w:
            # Keys are not shipped: make the ones the folder's files name, as
            # a user does, in a copy of the folder.
            here = os.path.join(w.dir, "conf")
            shutil.copytree(os.path.join(REPO, "conf", folder), here)
            names = set()
            for f in files:
                with open(os.path.join(here, f)) as text:
                    for line in text:
                        if line.lstrip().startswith("#"):
                            continue
                        names.update(re.findall(r"(secret|token)_file:\s*([^\s,}#]+)", line))
            for kind, name in sorted(names):
                if not os.path.exists(os.path.join(here, name)):
                    r = subprocess.run([os.path.join(BIN, "endproxy"), f"--new-{kind}", os.path.join(here, name)],
                                       capture_output=True, text=True)
                    self.assertEqual(r.returncode, 0, r.stderr)
            procs = []
            for f in files:
                binary = "middleproxy" if os.path.basename(f).startswith("middle") else "endproxy"
                procs.append(w.start(f, [binary, "-c", os.path.join(here, f)]))
            client = procs[-1]
            client.wait_for_log("up .*client-end")
            www = os.path.join(w.dir, "www")
            os.mkdir(www)
            with open(os.path.join(www, "file.bin"), "wb") as f:
                f.write(os.urandom(8 * 1024 * 1024))
            hport = w.servers.http_dir(www)
            out = os.path.join(w.dir, "out.bin")
            r = subprocess.run(["curl", "-sS", "--max-time", "60", "--socks5-hostname", "127.0.0.1:1080",
                                f"http://localhost:{hport}/file.bin", "-o", out], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(sha256_file(out), sha256_file(os.path.join(www, "file.bin")))
            return client.log()

    def test_quickstart(self):
        log = self.run_shape("quickstart", ["middle.yaml", "server.yaml", "client.yaml"], [7000, 1080])
        self.assertIn('client-end "quickstart-client" -> middle "quickstart-middle" (127.0.0.1:7000) '
                      '-> server-end "quickstart-server"', log)

    def test_cascade_example(self):
        log = self.run_shape("examples/cascade",
                             ["middle3.yaml", "middle2.yaml", "middle1.yaml", "server.yaml", "client.yaml"],
                             [7101, 7102, 7103, 1080])
        self.assertIn('client-end "b-laptop" -> middle "m1" (127.0.0.1:7101) -> middle "m2" (127.0.0.1:7102) '
                      '-> middle "m3" (127.0.0.1:7103) -> server-end "a-gw"', log)


if __name__ == "__main__":
    unittest.main()
