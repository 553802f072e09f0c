"""Proxy logins (issue 17 point 2): company B's only way out is a squid that
wants a login (Digest, NTLM or Negotiate/Kerberos); the client end logs in
as the proxy asks and the tunnel carries curl to a web server in company A.
Needs root and squid, MIT krb5 (tools/install-deps.sh installs them)."""
import os
import pwd
import re
import shutil
import subprocess
import time
import unittest

import netns_world
from netns_world import A_HOST, B_GATEWAY, PUBLIC
from test_firewalls import PAGE, Firewalled

SQUID = "/usr/sbin/squid"
HELPERS = "/usr/lib/squid"
REALM = "CORP.TEST"


class SquidWorld(Firewalled):
    """Firewalled, with squid on B's gateway as B's only way out."""

    LOGIN_REQUIRED = """acl authed proxy_auth REQUIRED
acl CONNECT method CONNECT
acl SSL_ports port 443
http_access deny CONNECT !SSL_ports
http_access allow authed
http_access deny all
"""

    def squid(self, auth_lines, access=LOGIN_REQUIRED):
        d = os.path.join(self.w.dir, "squid")
        os.makedirs(d)
        proxy = pwd.getpwnam("proxy")
        os.chmod(self.w.dir, 0o755)
        os.chown(d, proxy.pw_uid, proxy.pw_gid)
        conf = os.path.join(d, "squid.conf")
        with open(conf, "w") as f:
            f.write(f"""http_port {B_GATEWAY}:3128
pid_filename {d}/squid.pid
cache_log {d}/cache.log
access_log stdio:{d}/access.log squid
logformat squid %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %un %Sh/%<a %mt
cache deny all
cache_mem 8 MB
coredump_dir {d}
shutdown_lifetime 1 seconds
dns_nameservers 127.0.0.1
{auth_lines}
{access}""")
        self.squid_dir = d
        self.third_party("squid-B", self.n.gw, [SQUID, "-N", "-f", conf])
        self.wait_until(self.n.b, ["bash", "-c", f"exec 3<>/dev/tcp/{B_GATEWAY}/3128"])
        return d

    def access_log(self):
        p = os.path.join(self.squid_dir, "access.log")
        return open(p).read() if os.path.exists(p) else ""

    def logged_tunnel(self, tc, pattern):
        """squid logs a CONNECT when it ends: wait for the line."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not re.search(pattern, self.access_log()):
            time.sleep(0.1)
        tc.assertRegex(self.access_log(), pattern)

    def client_through(self, proxy_url, env=None):
        srv, _ = self.end("srv", "server", self.n.a, f"{PUBLIC}:7000")
        cli, _ = self.end("cli", "client", self.n.b, f"{PUBLIC}:443",
                          tunnel_extra=f"  ways: '{'tcp via ' + proxy_url}'\n", env=env)
        return srv, cli


class ProxyLoginTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        why = netns_world.unavailable()
        if why:
            raise unittest.SkipTest(why)
        if not os.path.exists(SQUID):
            raise AssertionError("squid is missing: tools/install-deps.sh installs it")

    def crossed(self, f, cli, password=None):
        try:
            cli.wait_for_log("tunnel t up", timeout=30)
        except AssertionError as e:
            with open(os.path.join(f.squid_dir, "cache.log")) as log:
                raise AssertionError(f"{e}\n----- squid's cache.log -----\n{log.read()[-4000:]}\n"
                                     f"----- squid's access.log -----\n{f.access_log()[-2000:]}") from None
        r = f.curl_from_b()
        self.assertEqual((r.returncode, r.stdout.encode()), (0, PAGE), r.stderr)
        if password:
            for p in f.w.procs:
                self.assertNotIn(password, p.log(), f"{p.name} logged the password")

    def test_digest(self):
        with SquidWorld(self) as f:
            f.company_a_servers()
            pw = os.path.join(f.w.dir, "digest.pw")
            with open(pw, "w") as fh:
                fh.write("alice:digest-secret-17\n")
            os.chmod(pw, 0o644)
            f.squid(f"auth_param digest program {HELPERS}/digest_file_auth {pw}\n"
                    "auth_param digest realm corp\nauth_param digest children 2")
            f.middle()
            _, cli = f.client_through(f"http://alice:digest-secret-17@{B_GATEWAY}:3128")
            self.crossed(f, cli, "digest-secret-17")
            self.assertEqual(cli.stop(), [])
            f.logged_tunnel(self, rf"TCP_TUNNEL/200 \d+ CONNECT {re.escape(PUBLIC)}:443 alice ")
            # A wrong password is refused with the scheme named.
            bad, _ = f.end("bad", "client", f.n.b, f"{PUBLIC}:443",
                           tunnel_extra=f"  ways: 'tcp via http://alice:wrong-password-0@{B_GATEWAY}:3128'\n",
                           socks_port=1081)
            bad.wait_for_log(r"407 Proxy Authentication Required: it refused the user name or password \(Digest\)",
                             timeout=20)
            self.assertNotIn("wrong-password-0", bad.log())

    def test_ntlm(self):
        with SquidWorld(self) as f:
            f.company_a_servers()
            f.squid(f"auth_param ntlm program {HELPERS}/ntlm_fake_auth\nauth_param ntlm children 2")
            f.middle()
            _, cli = f.client_through(f"http://CORP%5Calice:ntlm-secret-17@{B_GATEWAY}:3128")
            self.crossed(f, cli, "ntlm-secret-17")
            self.assertEqual(cli.stop(), [])
            # squid's test helper takes any password, and logs the domain
            # and user of our AUTHENTICATE message, read as 8-bit strings
            # (they are UTF-16: it keeps the first letter of each), with the
            # backslash escaped.
            f.logged_tunnel(self, rf"TCP_TUNNEL/200 \d+ CONNECT {re.escape(PUBLIC)}:443 C(ORP)?(\\){{1,2}}a(lice)? ")

    def test_negotiate_with_a_kerberos_ticket(self):
        with SquidWorld(self) as f:
            f.company_a_servers()
            kdc = Kdc(f)
            f.squid(f"auth_param negotiate program {HELPERS}/negotiate_kerberos_auth -k {kdc.keytab} "
                    f"-s HTTP/{B_GATEWAY}@{REALM}\nauth_param negotiate children 2")
            f.middle()
            ccache = kdc.ticket_in_b("alice", "kerberos-secret-17")
            env = dict(os.environ, KRB5_CONFIG=kdc.krb5_conf, KRB5CCNAME=ccache)
            _, cli = f.client_through(f"http://{B_GATEWAY}:3128", env=env)  # no password anywhere
            self.crossed(f, cli)
            self.assertEqual(cli.stop(), [])
            f.logged_tunnel(self, rf"TCP_TUNNEL/200 \d+ CONNECT {re.escape(PUBLIC)}:443 alice@{REALM} ")
            # Without a ticket the end says so, in Kerberos' words.
            os.unlink(ccache.removeprefix("FILE:"))
            bare, _ = f.end("bare", "client", f.n.b, f"{PUBLIC}:443",
                            tunnel_extra=f"  ways: 'tcp via http://{B_GATEWAY}:3128'\n", env=env, socks_port=1081)
            bare.wait_for_log(r'407 .*it wants a login by "negotiate" \(Kerberos: .*credentials', timeout=20)


class PlainRequestTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        why = netns_world.unavailable()
        if why:
            raise unittest.SkipTest(why)

    def test_websocket_as_a_plain_request_through_a_proxy_that_denies_connect(self):
        # squid refuses CONNECT but passes WebSocket upgrades of ordinary
        # requests (http_upgrade_request_protocols; the name is compared
        # as the client sends it): "ws via http://squid" is refused its
        # CONNECT and asks for ws://middle/lstp instead.
        with SquidWorld(self) as f:
            f.company_a_servers()
            f.squid("", access="http_upgrade_request_protocols websocket allow all\n"
                            "acl CONNECT method CONNECT\nhttp_access deny CONNECT\nhttp_access allow all\n")
            f.middle()
            f.end("srv", "server", f.n.a, f"{PUBLIC}:7000")
            cli, _ = f.end("cli", "client", f.n.b, f"{PUBLIC}:80",
                           tunnel_extra=f"  ways: 'ws via http://{B_GATEWAY}:3128'\n")
            ProxyLoginTest.crossed(self, f, cli)
            self.assertEqual(cli.stop(), [])
            f.logged_tunnel(self, rf"TCP_DENIED/403 \d+ CONNECT {re.escape(PUBLIC)}:80 ")
            f.logged_tunnel(self, rf"/101 \d+ GET http://{re.escape(PUBLIC)}/lstp ")


class Kdc:
    """A MIT KDC for CORP.TEST on B's gateway, with a user and the proxy's
    service key (HTTP/<gateway address>) in a keytab squid can read."""

    def __init__(self, f):
        self.f = f
        d = os.path.join(f.w.dir, "kdc")
        os.makedirs(d)
        os.chmod(d, 0o755)
        self.krb5_conf = os.path.join(d, "krb5.conf")
        with open(self.krb5_conf, "w") as fh:
            fh.write(f"""[libdefaults]
  default_realm = {REALM}
  dns_lookup_kdc = false
  dns_lookup_realm = false
  dns_canonicalize_hostname = false
  rdns = false
[realms]
  {REALM} = {{
    kdc = {B_GATEWAY}:88
  }}
""")
        kdc_conf = os.path.join(d, "kdc.conf")
        with open(kdc_conf, "w") as fh:
            fh.write(f"""[kdcdefaults]
  kdc_listen = {B_GATEWAY}:88
  kdc_tcp_listen = {B_GATEWAY}:88
[realms]
  {REALM} = {{
    database_name = {d}/principal
    key_stash_file = {d}/stash
    acl_file = {d}/kadm5.acl
  }}
""")
        os.chmod(self.krb5_conf, 0o644)
        self.env = dict(os.environ, KRB5_CONFIG=self.krb5_conf, KRB5_KDC_PROFILE=kdc_conf)
        self.run(["kdb5_util", "create", "-s", "-r", REALM, "-P", "master-key-for-the-test"])
        self.keytab = os.path.join(d, "http.keytab")
        self.run(["kadmin.local", "-r", REALM, "-q", "addprinc -pw kerberos-secret-17 alice"])
        self.run(["kadmin.local", "-r", REALM, "-q", f"addprinc -randkey HTTP/{B_GATEWAY}"])
        self.run(["kadmin.local", "-r", REALM, "-q", f"ktadd -k {self.keytab} HTTP/{B_GATEWAY}"])
        proxy = pwd.getpwnam("proxy")
        os.chown(self.keytab, proxy.pw_uid, proxy.pw_gid)
        p = f.third_party("krb5kdc", f.n.gw, ["env", f"KRB5_CONFIG={self.krb5_conf}", f"KRB5_KDC_PROFILE={kdc_conf}",
                                              "krb5kdc", "-n", "-r", REALM])
        f.wait_until(f.n.b, ["bash", "-c", f"exec 3<>/dev/tcp/{B_GATEWAY}/88"])
        self.dir = d

    def run(self, argv):
        r = subprocess.run(argv, env=self.env, capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError(f"{' '.join(argv)}: {r.stderr}")

    def ticket_in_b(self, user, password):
        ccache = "FILE:" + os.path.join(self.dir, f"{user}.ccache")
        r = subprocess.run(["ip", "netns", "exec", self.f.n.b, "env", f"KRB5_CONFIG={self.krb5_conf}",
                            f"KRB5CCNAME={ccache}", "kinit", user], input=password + "\n", capture_output=True,
                           text=True)
        if r.returncode != 0:
            raise AssertionError(f"kinit: {r.stderr}")
        return ccache


if __name__ == "__main__":
    unittest.main()
