"""Real clients through the tunnel (issue 4, point 6): OpenSSH through
`ProxyCommand nc -X 5 -x ...`, and proxychains4 wrapping a program that knows
nothing of SOCKS."""
import getpass
import os
import shutil
import subprocess
import unittest

from lstp_world import World, free_port, wait_for_port


def need(*tools):
    missing = [t for t in tools if not shutil.which(t)]
    return unittest.skipIf(missing, f"needs {', '.join(missing)} (tools/install-deps.sh installs them)")


class ClientsTest(unittest.TestCase):
    @need("sshd", "ssh", "ssh-keygen", "nc")
    def test_ssh_through_proxycommand_nc(self):
        with World() as w:
            for name in ("host", "client"):
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(w.dir, name)],
                               check=True)
            port = free_port()
            cfg = w._write("sshd_config", "\n".join([
                f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {w.dir}/host",
                f"AuthorizedKeysFile {w.dir}/client.pub", "PasswordAuthentication no",
                "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password", "StrictModes no",
                "UsePAM no", f"PidFile {w.dir}/sshd.pid", ""]))
            os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
            w.third_party_process("sshd", [shutil.which("sshd"), "-D", "-e", "-f", cfg])
            wait_for_port(port)
            sport = w.tunnel()
            r = subprocess.run(
                ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                 "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-i", os.path.join(w.dir, "client"),
                 "-p", str(port), "-o", f"ProxyCommand=nc -X 5 -x 127.0.0.1:{sport} %h %p",
                 f"{getpass.getuser()}@localhost", "echo over the tunnel; uname -s"],
                capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "over the tunnel\nLinux\n")
            # The name went through the tunnel: the server end resolved it.
            w.c.wait_for_log(rf"\(localhost:{port}\): SOCKS5 CONNECT from .* ok")

    @need("proxychains4")
    def test_proxychains_wraps_a_program_that_knows_no_socks(self):
        with World() as w:
            d = os.path.join(w.dir, "www")
            os.makedirs(d)
            with open(os.path.join(d, "f.txt"), "wb") as f:
                f.write(b"no socks here\n")
            web = w.servers.http_dir(d)
            sport = w.tunnel()
            conf = w._write("proxychains.conf", "strict_chain\nquiet_mode\nproxy_dns\ntcp_read_time_out 15000\n"
                                                "tcp_connect_time_out 8000\n[ProxyList]\n"
                                                f"socks5 127.0.0.1 {sport}\n")
            program = ("import urllib.request;"
                       f"print(urllib.request.urlopen('http://127.0.0.1:{web}/f.txt', timeout=20).read().decode(), end='')")
            env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
            r = subprocess.run(["proxychains4", "-f", conf, "python3", "-c", program], capture_output=True, text=True,
                               timeout=60, env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "no socks here\n")
            # It really went through the tunnel.
            w.c.wait_for_log(rf"\(127\.0\.0\.1:{web}\): SOCKS5 CONNECT from .* ok")


if __name__ == "__main__":
    unittest.main()
