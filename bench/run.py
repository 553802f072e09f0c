#!/usr/bin/env python3
"""The benchmark suite (issue 5): the same transfers and round trips with no
proxy, through OpenSSH two hops (ssh -J jump -D), and through lstp with one
and with three middle proxies, side by side in one run on loopback.

  python3 bench/run.py                      full run; writes bench/RESULTS.md
  python3 bench/run.py --smoke              small sizes, seconds; proves it works (CI)
  python3 bench/run.py --rounds 3           repeat every scenario, report medians
  python3 bench/run.py --scenarios direct,lstp-1 --out /tmp/r.md
  python3 bench/run.py --reference /tmp/old/build/bin   the same run with an older build beside
  python3 bench/run.py --scenarios lstp-1-resumption-on,lstp-1-resumption-off --only-throughput --rounds 5
                                            the cost of resumption's acknowledgements

Every scenario starts its own processes (binaries from build/bin, sshd and
ssh from Debian with throwaway keys), bounds its loops and stops what it
started. Each prints `metric=value` lines; the driver writes a Markdown
table with the date, the machine and one row per scenario, then the targets
of issue 5 as ratios of this run. Tests never assert on these numbers.

Load clients are small Python programs (one process; threads for parallel
streams), the same for every scenario, so their own cost is in every row and
the direct row shows their floor.
"""
import argparse
import datetime
import getpass
import os
import platform
import re
import resource
import selectors
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import lstp_world  # noqa: E402
from lstp_world import World, free_port, recv_exact, socks_connect, wait_for_port  # noqa: E402

# 10,000 streams take 20,000 descriptors here (both sides) and 10,000 in
# each tunnel process: raise the limit where we may (root), for the children too.
try:
    resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536))
except (ValueError, OSError):
    pass

MIB = 1024 * 1024
GIB = 1024 * MIB


# ------------------------------------------------------------ measuring

def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            v = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pids):
    """The processes and all their children (sshd forks one per connection)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], list(pids)
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


# ------------------------------------------------------------ local servers (the far side)

class ThreadedServer:
    """A blocking server, one thread per connection: `handle(conn)`."""

    def __init__(self, handle):
        self.handle = handle
        self.lsn = socket.socket()
        self.lsn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsn.bind(("127.0.0.1", 0))
        self.lsn.listen(1024)
        self.port = self.lsn.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.lsn.accept()
            except OSError:
                return
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self.run_one, args=(c,), daemon=True).start()

    def run_one(self, c):
        try:
            self.handle(c)
        except OSError:
            pass
        finally:
            c.close()


class FileServer:
    """Sends `size` zero bytes (a sparse file, from the page cache with
    sendfile) to whoever connects, then closes."""

    def __init__(self, directory, size):
        self.path = os.path.join(directory, f"payload-{size}.bin")
        with open(self.path, "wb") as f:
            f.truncate(size)
        self.size = size
        self.port = ThreadedServer(self.send_file).port

    def send_file(self, c):
        with open(self.path, "rb") as f:
            c.sendfile(f)


def echo_handler(c):
    while True:
        d = c.recv(65536)
        if not d:
            return
        c.sendall(d)


def firehose_handler(c):
    """Sends zeros until the other side goes away."""
    block = bytes(1 << 20)
    while True:
        c.sendall(block)


def request_response_handler(c):
    """Reads a 1 KiB request, answers 1 KiB, closes."""
    recv_exact(c, 1024)
    c.sendall(b"r" * 1024)


class EofWatcher:
    """Echoes the first byte, then notes when EOF arrives."""

    def __init__(self):
        self.times = []
        self.server = ThreadedServer(self.handle)
        self.port = self.server.port

    def handle(self, c):
        c.sendall(c.recv(1))
        while c.recv(4096):
            pass
        self.times.append(time.perf_counter())


IDLE_HOLDER = r"""
import selectors, socket, sys, resource
try:
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
except (ValueError, OSError):
    pass
lsn = socket.socket()
lsn.bind(("127.0.0.1", 0))
lsn.listen(4096)
lsn.setblocking(False)
print(lsn.getsockname()[1], flush=True)
sel = selectors.DefaultSelector()
sel.register(lsn, selectors.EVENT_READ)
held = []
while True:
    for _ in sel.select():
        while True:
            try:
                held.append(lsn.accept()[0])
            except (BlockingIOError, OSError):
                break
"""


class IdleHolder:
    """Accepts and holds many connections, in a process of its own (the
    descriptors of 10,000 streams on both sides would not fit in one)."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", IDLE_HOLDER], stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())

    def close(self):
        self.proc.kill()
        self.proc.wait()


# ------------------------------------------------------------ scenarios

class Scenario:
    """How an app reaches the far side: `connect(host, port)` gives a socket
    already through the proxy; `pids()` the processes to account."""
    name = "?"

    def connect(self, host, port):
        raise NotImplementedError

    def pids(self):
        return []

    def setup_ms(self):
        return None


class Direct(Scenario):
    name = "direct"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def connect(self, host, port):
        s = socket.create_connection((host, port), timeout=60)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s


def first_byte_through(sport, echo_port, t0, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            s, _ = socks_connect(sport, "127.0.0.1", echo_port, timeout=5)
            s.sendall(b"x")
            recv_exact(s, 1)
            s.close()
            return (time.perf_counter() - t0) * 1000
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.005)
    raise RuntimeError("the tunnel did not carry a byte within 60 s")


class Lstp(Scenario):
    """`bin_dir`: the binaries to run (default build/bin); a reference build
    runs as lstp-N-ref beside the current one."""

    def __init__(self, middles, echo_port, bin_dir=None, resumption=None):
        self.middles = middles
        self.name = (f"lstp-{middles}" + (f"-resumption-{resumption}" if resumption else "")
                     + ("-ref" if bin_dir else ""))
        self.echo_port = echo_port
        self.bin_dir = bin_dir
        self.resumption = resumption

    def __enter__(self):
        self.saved_bin = lstp_world.BIN
        if self.bin_dir:
            lstp_world.BIN = self.bin_dir
        try:
            return self._start()
        finally:
            lstp_world.BIN = self.saved_bin

    def _start(self):
        self.w = World().__enter__()
        ports, nxt = [], None
        t0 = time.perf_counter()
        for i in reversed(range(self.middles)):
            port, _, _ = self.w.middle(f"m{i + 1}", next_hop=nxt, log="info",
                                       extra="limits:\n  max_connections: 40000\n")
            ports.insert(0, port)
            nxt = port
        limits = "limits:\n  max_connections: 40000\n"
        if self.resumption:
            limits += f"  resumption: {self.resumption}\n"
        self.w.end("srv", "server", ports[-1], log="warn", tunnel_extra="  ways: tcp\n", extra=limits)
        self.sport, _, _ = self.w.end("cli", "client", ports[0], log="warn", tunnel_extra="  ways: tcp\n",
                                      extra=limits)
        self._setup = first_byte_through(self.sport, self.echo_port, t0)
        return self

    def __exit__(self, *exc):
        return self.w.__exit__(*exc)

    def setup_ms(self):
        return self._setup

    def connect(self, host, port):
        s, _ = socks_connect(self.sport, host, port, timeout=60)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def pids(self):
        return [p.proc.pid for p in self.w.procs]


class SshJump(Scenario):
    """OpenSSH two hops: ssh -J jump -D 127.0.0.1:PORT target, both sshd
    local with throwaway keys, cipher aes128-gcm@openssh.com."""
    name = "ssh-jump"

    def __init__(self, echo_port):
        self.echo_port = echo_port

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="lstp-bench-ssh-")
        self.procs = []
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self):
        d = self.dir
        for name in ("host", "client"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, name)], check=True)
        os.makedirs("/run/sshd", exist_ok=True)
        self.sshd_ports = []
        t0 = time.perf_counter()
        for name in ("jump", "target"):
            port = free_port()
            cfg = os.path.join(d, f"sshd_{name}")
            with open(cfg, "w") as f:
                f.write("\n".join([
                    f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d}/host",
                    f"AuthorizedKeysFile {d}/client.pub", "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password", "StrictModes no",
                    "UsePAM no", f"PidFile {d}/sshd_{name}.pid", "Ciphers aes128-gcm@openssh.com",
                    "AllowTcpForwarding yes", "MaxStartups 1000", "MaxSessions 1000", "LogLevel ERROR", ""]))
            log = open(os.path.join(d, f"sshd_{name}.log"), "wb")
            self.procs.append(subprocess.Popen([shutil.which("sshd"), "-D", "-e", "-f", cfg], stdout=log,
                                               stderr=subprocess.STDOUT))
            self.sshd_ports.append(port)
        for port in self.sshd_ports:
            wait_for_port(port)
        user = getpass.getuser()
        common = (f"  HostName 127.0.0.1\n  User {user}\n  IdentityFile {d}/client\n  IdentitiesOnly yes\n"
                  "  Ciphers aes128-gcm@openssh.com\n  Compression no\n  StrictHostKeyChecking no\n"
                  "  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  BatchMode yes\n")
        cfg = os.path.join(d, "ssh_config")
        with open(cfg, "w") as f:
            f.write(f"Host jump\n  Port {self.sshd_ports[0]}\n{common}"
                    f"Host target\n  Port {self.sshd_ports[1]}\n  ProxyJump jump\n{common}")
        self.dport = free_port()
        log = open(os.path.join(d, "ssh.log"), "wb")
        self.procs.append(subprocess.Popen(["ssh", "-F", cfg, "-N", "-D", f"127.0.0.1:{self.dport}", "target"],
                                           stdout=log, stderr=subprocess.STDOUT))
        self._setup = first_byte_through(self.dport, self.echo_port, t0)

    def __exit__(self, *exc):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
        return False

    def setup_ms(self):
        return self._setup

    def connect(self, host, port):
        s, _ = socks_connect(self.dport, host, port, timeout=60)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def pids(self):
        return descendants([p.pid for p in self.procs])


# ------------------------------------------------------------ metrics

def drain(s, limit=None):
    buf = bytearray(1 << 20)
    n = 0
    while limit is None or n < limit:
        k = s.recv_into(buf)
        if not k:
            break
        n += k
    return n


class Cpu:
    def __init__(self, scenario):
        self.scenario = scenario

    def __enter__(self):
        self.pids = self.scenario.pids()
        self.start = sum(cpu_seconds(p) for p in self.pids)
        return self

    def __exit__(self, *exc):
        pids = set(self.pids) | set(self.scenario.pids())
        self.used = sum(cpu_seconds(p) for p in pids) - self.start
        return False


def single_stream(sc, files, out):
    f = files["single"]
    speeds = []
    with Cpu(sc) as cpu:
        for _ in range(3):
            t0 = time.perf_counter()
            s = sc.connect("127.0.0.1", f.port)
            n = drain(s)
            dt = time.perf_counter() - t0
            s.close()
            if n != f.size:
                raise RuntimeError(f"single stream: got {n} of {f.size} bytes")
            speeds.append(n / dt / 1e6)
    out["single_MBps"] = statistics.median(speeds)
    out["_cpu_s"] = cpu.used
    out["_cpu_bytes"] = 3 * f.size


def parallel_streams(sc, files, out, streams):
    f = files["parallel"]
    got = [0] * streams
    socks = [sc.connect("127.0.0.1", f.port) for _ in range(streams)]

    def one(i):
        got[i] = drain(socks[i])
        socks[i].close()
    with Cpu(sc) as cpu:
        t0 = time.perf_counter()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        dt = time.perf_counter() - t0
    if sum(got) != streams * f.size:
        raise RuntimeError(f"parallel streams: got {sum(got)} of {streams * f.size} bytes")
    out["parallel_MBps"] = sum(got) / dt / 1e6
    out["_cpu_s"] += cpu.used
    out["_cpu_bytes"] += sum(got)
    if sc.pids():
        out["cpu_s_per_GiB"] = out["_cpu_s"] / (out["_cpu_bytes"] / GIB)


def connect_request_response(sc, rr_port, out, count):
    times = []
    req = b"q" * 1024
    for _ in range(count):
        t0 = time.perf_counter()
        s = sc.connect("127.0.0.1", rr_port)
        s.sendall(req)
        recv_exact(s, 1024)
        s.close()
        times.append((time.perf_counter() - t0) * 1000)
    out["connect_1KiB_p50_ms"] = percentile(times, 50)
    out["connect_1KiB_p99_ms"] = percentile(times, 99)


def close_to_eof(sc, watcher, out, count):
    delays = []
    for _ in range(count):
        s = sc.connect("127.0.0.1", watcher.port)
        s.sendall(b"x")
        recv_exact(s, 1)
        before = len(watcher.times)
        t0 = time.perf_counter()
        s.close()
        deadline = time.monotonic() + 10
        while len(watcher.times) == before and time.monotonic() < deadline:
            time.sleep(0)
        if len(watcher.times) == before:
            raise RuntimeError("close to EOF: the far side never saw EOF")
        delays.append((watcher.times[-1] - t0) * 1000)
    out["close_to_eof_p50_ms"] = percentile(delays, 50)


def echo_rtt(sc, echo_port, out, count):
    s = sc.connect("127.0.0.1", echo_port)
    msg = b"e" * 64
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        s.sendall(msg)
        recv_exact(s, 64)
        times.append((time.perf_counter() - t0) * 1e6)
    s.close()
    out["echo_rtt_p50_us"] = percentile(times, 50)


def interactive_under_bulk(sc, files, echo_port, out, count):
    """64-byte echoes on one stream while another stream of the same tunnel
    downloads as fast as it can."""
    bulk = sc.connect("127.0.0.1", files["firehose"].port)
    stop = threading.Event()
    moved = [0]

    def pull():
        buf = bytearray(1 << 20)
        while not stop.is_set():
            try:
                k = bulk.recv_into(buf)
            except OSError:
                return
            if not k:
                return
            moved[0] += k
    t = threading.Thread(target=pull)
    t.start()
    # Let the bulk stream fill every buffer on the way first.
    while moved[0] < 32 * MIB and t.is_alive():
        time.sleep(0.01)
    s = sc.connect("127.0.0.1", echo_port)
    msg = b"i" * 64
    times = []
    for _ in range(count):
        if not t.is_alive():
            break  # the bulk stream ended: what follows would not be "under bulk"
        t0 = time.perf_counter()
        s.sendall(msg)
        recv_exact(s, 64)
        times.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.002)
    s.close()
    stop.set()
    bulk.shutdown(socket.SHUT_RDWR)
    t.join()
    bulk.close()
    if len(times) < count:
        raise RuntimeError("interactive under bulk: the bulk stream ended early")
    out["interactive_under_bulk_p99_ms"] = percentile(times, 99)
    out["interactive_under_bulk_p50_ms"] = percentile(times, 50)


def idle_streams(sc, holder, out, count):
    pids = sc.pids()
    if not pids:
        holder.close()
        return
    base = sum(rss_kib(p) for p in pids)
    held = []
    try:
        for _ in range(count):
            held.append(sc.connect("127.0.0.1", holder.port))
        time.sleep(0.5)
        pids = sc.pids()
        now = sum(rss_kib(p) for p in pids)
        out["idle_streams_held"] = len(held)
        out["idle_KiB_per_stream"] = (now - base) / len(held)
    finally:
        for s in held:
            s.close()
        holder.close()


# ------------------------------------------------------------ the run

ACCOUNT_HEADING = "## What moved the numbers"

METRICS = [
    ("single_MBps", "1 stream MB/s", "{:.0f}"),
    ("parallel_MBps", "{streams} streams MB/s", "{:.0f}"),
    ("cpu_s_per_GiB", "CPU s/GiB", "{:.2f}"),
    ("connect_1KiB_p50_ms", "connect+1KiB p50 ms", "{:.3f}"),
    ("connect_1KiB_p99_ms", "connect+1KiB p99 ms", "{:.3f}"),
    ("close_to_eof_p50_ms", "close→EOF p50 ms", "{:.3f}"),
    ("echo_rtt_p50_us", "echo RTT p50 µs", "{:.0f}"),
    ("interactive_under_bulk_p99_ms", "interactive p99 under bulk ms", "{:.2f}"),
    ("idle_KiB_per_stream", "KiB per idle stream", "{:.2f}"),
    ("setup_ms", "setup ms", "{:.0f}"),
]


def run_scenario(name, args, files, servers):
    echo, rr, watcher = servers["echo"], servers["rr"], servers["eof"]
    if name == "direct":
        sc = Direct()
    elif name == "ssh-jump":
        sc = SshJump(echo.port)
    elif (m := re.fullmatch(r"lstp-(\d+)(?:-resumption-(on|off))?(-ref)?", name)):
        sc = Lstp(int(m.group(1)), echo.port, args.reference if m.group(3) else None, m.group(2))
    else:
        raise SystemExit(f"unknown scenario {name}")
    out = {}
    with sc:
        if sc.setup_ms() is not None:
            out["setup_ms"] = sc.setup_ms()
        single_stream(sc, files, out)
        parallel_streams(sc, files, out, args.streams)
        if args.only_throughput:
            return {k: v for k, v in out.items() if not k.startswith("_")}
        connect_request_response(sc, rr.port, out, args.connects)
        close_to_eof(sc, watcher, out, args.closes)
        echo_rtt(sc, echo.port, out, args.echoes)
        interactive_under_bulk(sc, files, echo.port, out, args.interactive)
        idle_streams(sc, IdleHolder(), out, args.idle_ssh if name == "ssh-jump" else args.idle)
    return {k: v for k, v in out.items() if not k.startswith("_")}


def machine():
    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}"


def targets(results):
    """Issue 5's targets as checks on this run: (target, value, met)."""
    rows = []
    d, s, l1, l3 = (results.get(k) for k in ("direct", "ssh-jump", "lstp-1", "lstp-3"))

    def ratio(a, b, key):
        return a[key] / b[key] if a and b and a.get(key) and b.get(key) else None
    checks = [
        ("1 stream ≥ 2.5× ssh-jump", ratio(l1, s, "single_MBps"), lambda v: v >= 2.5, "{:.2f}×"),
        ("1 stream ≥ 50% of direct", ratio(l1, d, "single_MBps"), lambda v: v >= 0.5, "{:.0%}"),
        ("parallel ≥ 2.5× ssh-jump", ratio(l1, s, "parallel_MBps"), lambda v: v >= 2.5, "{:.2f}×"),
        ("CPU ≤ 2.0 s/GiB", l1 and l1.get("cpu_s_per_GiB"), lambda v: v <= 2.0, "{:.2f}"),
        ("connect+1KiB p50 ≤ 0.4 ms", l1 and l1.get("connect_1KiB_p50_ms"), lambda v: v <= 0.4, "{:.3f}"),
        ("connect+1KiB p99 ≤ 2 ms", l1 and l1.get("connect_1KiB_p99_ms"), lambda v: v <= 2.0, "{:.3f}"),
        ("close→EOF p50 ≤ 1 ms", l1 and l1.get("close_to_eof_p50_ms"), lambda v: v <= 1.0, "{:.3f}"),
        ("echo RTT p50 ≤ 200 µs", l1 and l1.get("echo_rtt_p50_us"), lambda v: v <= 200, "{:.0f}"),
        ("interactive p99 under bulk ≤ 2 ms", l1 and l1.get("interactive_under_bulk_p99_ms"), lambda v: v <= 2.0,
         "{:.2f}"),
        ("≤ 8 KiB per idle stream", l1 and l1.get("idle_KiB_per_stream"), lambda v: v <= 8.0, "{:.2f}"),
        ("lstp-3 ≥ 80% of lstp-1 (1 stream)", ratio(l3, l1, "single_MBps"), lambda v: v >= 0.8, "{:.0%}"),
    ]
    for what, value, ok, fmt in checks:
        if value is None:
            rows.append((what, "not measured", ""))
        else:
            rows.append((what, fmt.format(value), "yes" if ok(value) else "**no**"))
    return rows


def report(results, args, started):
    lines = [f"# Benchmark results ({'smoke' if args.smoke else 'full'} run)", "",
             f"- date: {started:%Y-%m-%d %H:%M} UTC", f"- machine: {machine()}",
             f"- command: `python3 bench/run.py {' '.join(sys.argv[1:])}`".replace("  ", " "),
             f"- sizes: 1 stream {args.single_mib} MiB (median of 3), {args.streams} × {args.parallel_mib} MiB in "
             f"parallel, {args.connects} connects, {args.closes} closes, {args.echoes} echoes, "
             f"{args.interactive} interactive echoes, {args.idle} idle streams ({args.idle_ssh} for ssh-jump); rounds {args.rounds} "
             f"(medians across rounds)", ""]
    header = ["scenario"] + [label.format(streams=args.streams) for _, label, _ in METRICS]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for name, r in results.items():
        cells = [name] + [fmt.format(r[k]) if k in r else "" for k, _, fmt in METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Targets (issue 5), from this run", "", "| target | lstp | met |", "|---|---|---|"]
    for what, value, ok in targets(results):
        lines.append(f"| {what} | {value} | {ok} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="small sizes: proves the suite works, in seconds")
    ap.add_argument("--scenarios", default="direct,ssh-jump,lstp-1,lstp-3")
    ap.add_argument("--rounds", type=int, default=1, help="run every scenario this many times (interleaved)")
    ap.add_argument("--reference", default=None, metavar="BIN_DIR",
                    help="also run each lstp-N scenario with the binaries in BIN_DIR (an older build), as lstp-N-ref, "
                         "interleaved with the current build's")
    ap.add_argument("--only-throughput", action="store_true",
                    help="measure 1 stream, parallel streams and CPU per GiB only (the cost of a feature)")
    ap.add_argument("--out", default=None, help="Markdown report (default bench/RESULTS.md; smoke: none)")
    ap.add_argument("--single-mib", type=int, default=1024)
    ap.add_argument("--parallel-mib", type=int, default=256)
    ap.add_argument("--streams", type=int, default=16)
    ap.add_argument("--connects", type=int, default=500)
    ap.add_argument("--closes", type=int, default=200)
    ap.add_argument("--echoes", type=int, default=2000)
    ap.add_argument("--interactive", type=int, default=500)
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--idle-ssh", type=int, default=2000,
                    help="idle streams for ssh-jump: ssh -D slows down as channels add up (10,000 took over 15 min)")
    args = ap.parse_args()
    if args.smoke:
        args.single_mib, args.parallel_mib, args.streams = 64, 4, 4
        args.connects, args.closes, args.echoes, args.interactive, args.idle = 20, 10, 50, 20, 100
        args.idle_ssh = 100
    out_path = args.out or (None if args.smoke else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                 "RESULTS.md"))
    names = args.scenarios.split(",")
    if args.reference:
        names = [m for n in names for m in ([n, n + "-ref"] if n.startswith("lstp-") else [n])]
    if "ssh-jump" in names and not (shutil.which("sshd") and shutil.which("ssh") and os.geteuid() == 0):
        print("note=ssh-jump needs sshd, ssh and root (for a throwaway sshd); skipped", flush=True)
        names.remove("ssh-jump")
    started = datetime.datetime.now(datetime.timezone.utc)
    print(f"machine={machine()!r} date={started:%Y-%m-%dT%H:%M:%SZ}", flush=True)
    rounds = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix="lstp-bench-") as d:
        files = {"single": FileServer(d, args.single_mib * MIB), "parallel": FileServer(d, args.parallel_mib * MIB),
                 "firehose": ThreadedServer(firehose_handler)}
        servers = {"echo": ThreadedServer(echo_handler), "rr": ThreadedServer(request_response_handler),
                   "eof": EofWatcher()}
        for r in range(args.rounds):
            for name in names:
                res = run_scenario(name, args, files, servers)
                rounds[name].append(res)
                print(f"scenario={name} round={r + 1} " + " ".join(f"{k}={v:.4g}" for k, v in res.items()),
                      flush=True)
    results = {}
    for name, rs in rounds.items():
        keys = set().union(*rs)
        results[name] = {k: statistics.median(r[k] for r in rs if k in r) for k in keys}
    text = report(results, args, started)
    print(text)
    if out_path:
        # The hand-written account of what moved the numbers stays.
        account = ""
        if os.path.exists(out_path):
            with open(out_path) as f:
                old = f.read()
            if ACCOUNT_HEADING in old:
                account = "\n" + old[old.index(ACCOUNT_HEADING):]
        with open(out_path, "w") as f:
            f.write(text + account)
        print(f"written to {out_path}")


if __name__ == "__main__":
    main()
