"""A firewalled world built from network namespaces, veth links and
nftables, for the firewall-traversal tests (issue 3). Needs root.

    company A (10.1.0.2)  --a0|a1--  internet (middle on 198.51.100.10)
                                          |g1
    company B (10.2.0.2) --b0|b1-- B's gateway (10.2.0.1 / 10.3.0.2):
                                   tinyproxy (CONNECT to 80/443 only), Dante

A may open connections out but accepts none in (nftables input policy
drop). B reaches nothing but its gateway: no namespace forwards packets, so
B gets out only through the gateway's proxies. Everything is torn down on
exit; processes are stopped by PID before their namespaces go.
"""
import os
import secrets
import subprocess

PUBLIC = "198.51.100.10"  # the middle proxy's "internet" address
A_HOST = "10.1.0.2"
B_GATEWAY = "10.2.0.1"


def run(*argv, check=True):
    r = subprocess.run(list(argv), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {r.stderr.strip()}")
    return r


def unavailable():
    """Why namespaces cannot be used here, or None."""
    if os.geteuid() != 0:
        return "network namespace tests need root"
    for tool in ("ip", "nft"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            return f"network namespace tests need {tool} (tools/install-deps.sh installs it)"
    probe = "lstp-probe-" + secrets.token_hex(3)
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return "cannot create network namespaces here: " + r.stderr.strip()
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


class Namespaces:
    def __init__(self):
        tag = secrets.token_hex(2)
        self.tag = tag
        self.a = f"lstpA-{tag}"
        self.b = f"lstpB-{tag}"
        self.gw = f"lstpG-{tag}"
        self.inet = f"lstpI-{tag}"
        self.made = []
        self.links = {}

    def ns(self, name, *argv, check=True):
        return run("ip", "netns", "exec", name, *argv, check=check)

    def _veth(self, left_ns, left_ip, right_ns, right_ip, short):
        # veth names are per namespace, but are created in ours first: keep
        # them unique here (at most 15 characters).
        l, r = f"{short}0{self.tag}", f"{short}1{self.tag}"
        run("ip", "link", "add", l, "type", "veth", "peer", "name", r)
        run("ip", "link", "set", l, "netns", left_ns)
        run("ip", "link", "set", r, "netns", right_ns)
        self.ns(left_ns, "ip", "addr", "add", left_ip, "dev", l)
        self.ns(right_ns, "ip", "addr", "add", right_ip, "dev", r)
        self.ns(left_ns, "ip", "link", "set", l, "up")
        self.ns(right_ns, "ip", "link", "set", r, "up")
        self.links[short] = (l, r)

    def __enter__(self):
        try:
            for name in (self.a, self.b, self.gw, self.inet):
                run("ip", "netns", "add", name)
                self.made.append(name)
                self.ns(name, "ip", "link", "set", "lo", "up")
                # No namespace routes for another: each reaches only what it
                # is linked to, whatever the host's defaults are.
                self.ns(name, "sysctl", "-qw", "net.ipv4.ip_forward=0")
            self._veth(self.a, "10.1.0.2/24", self.inet, "10.1.0.1/24", "a")
            self._veth(self.gw, "10.3.0.2/24", self.inet, "10.3.0.1/24", "g")
            self._veth(self.b, "10.2.0.2/24", self.gw, "10.2.0.1/24", "b")
            self.ns(self.inet, "ip", "addr", "add", f"{PUBLIC}/32", "dev", "lo")
            self.ns(self.a, "ip", "route", "add", "default", "via", "10.1.0.1")
            self.ns(self.gw, "ip", "route", "add", "default", "via", "10.3.0.1")
            self.ns(self.b, "ip", "route", "add", "default", "via", "10.2.0.1")
            # Company A: out yes, in no.
            self.nft(self.a, """
table inet companyA {
  chain input {
    type filter hook input priority 0; policy drop;
    iif "lo" accept
    ct state established,related accept
  }
}""")
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def nft(self, ns, ruleset):
        r = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=ruleset, capture_output=True,
                           text=True)
        if r.returncode != 0:
            raise RuntimeError(f"nft in {ns}: {r.stderr.strip()}")

    def cut_internet_link_of_a(self):
        """Drops everything between company A and the internet, both ways."""
        l, r = self.links["a"]
        self.nft(self.inet, f"""
table inet cut {{
  chain input {{
    type filter hook input priority -10; policy accept;
    iifname "{r}" drop
  }}
  chain output {{
    type filter hook output priority -10; policy accept;
    oifname "{r}" drop
  }}
}}""")

    def restore_internet_link_of_a(self):
        self.ns(self.inet, "nft", "delete", "table", "inet", "cut", check=False)

    def __exit__(self, *exc):
        for name in reversed(self.made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        self.made = []
        return False
