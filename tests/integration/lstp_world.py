"""A hermetic lstp world on loopback for integration tests.

Starts real `middleproxy` and `endproxy` binaries with generated configs on
free ports, plus local destination servers (echo, sink, firehose, HTTP) in a
background asyncio loop. Everything it starts it stops, by PID, on exit.
"""
import asyncio
import hashlib
import http.server
import os
import re
import resource
import shutil
import signal
import random
import socket
import struct
import subprocess
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("LSTP_BIN", os.path.join(REPO, "build", "bin"))
# A generated key (endproxy --new-secret): public, for tests only. Keys skip
# the Argon2id a passphrase costs at every start.
SECRET = "lstp-secret-c9M9LxeXOUGpFrxECt49_3vhPwT3WOJiznPbPF1QjjRpAWCA"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
# Set by CMake when the binaries are built with sanitizers (slower, bigger).
SANITIZED = os.environ.get("LSTP_SANITIZED") == "1"

# Many concurrent channels need many descriptors, here and in the children.
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(65536, _hard), _hard))


# Ports handed to the processes under test come from below the kernel's
# ephemeral range: a port the kernel picked (bind to 0) is free only until
# another test's outgoing connection takes it as its source port, which made
# a middle fail to listen ("Address already in use") when tests ran in
# parallel. Random, so parallel test processes rarely pick the same one;
# checked free, and never handed out twice by this process.
_PORT_RANGE = (20000, 32000)
_handed_out = set()


# Test modules run side by side (ctest -j3): a port one process found free
# may be taken by another's process before its own binds it. Ports handed
# out are recorded, with the PID they went to, in a file all of them share
# (under a lock); a dead process's ports are free again.
_CLAIMS = os.path.join(tempfile.gettempdir(), "lstp-it-ports")


def _live(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def free_port():
    import fcntl
    with open(_CLAIMS + ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        claims = {}
        try:
            with open(_CLAIMS) as f:
                for line in f:
                    port, pid = line.split()
                    if int(pid) == os.getpid() or _live(int(pid)):
                        claims[int(port)] = int(pid)
        except (OSError, ValueError):
            claims = {}
        for _ in range(1000):
            port = random.randint(*_PORT_RANGE)
            if port in _handed_out or port in claims:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _handed_out.add(port)
            claims[port] = os.getpid()
            with open(_CLAIMS + ".tmp", "w") as f:
                f.writelines(f"{p} {pid}\n" for p, pid in claims.items())
            os.replace(_CLAIMS + ".tmp", _CLAIMS)
            return port
    raise RuntimeError("no free port below the ephemeral range")


def wait_for_port(port, host="127.0.0.1", timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {host}:{port} after {timeout}s")


def ipv6_loopback_works():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
            return True
    except OSError:
        return False


class Proc:
    def __init__(self, name, argv, log_path, env=None, ours=True):
        self.name = name
        self.ours = ours  # third-party programs (proxies) are not held to our exit rules
        self.log_path = log_path
        self.log_file = open(log_path, "wb")
        # A third-party server may leave children behind its main process
        # (Dante's io-children, squid's helpers): each starts a process
        # group of its own, which stop() ends whole.
        self.proc = subprocess.Popen(argv, stdout=self.log_file, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=not ours)

    def log(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()

    def wait_for_log(self, pattern, timeout=15.0, count=1):
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            if len(rx.findall(self.log())) >= count:
                return True
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        ended = "" if self.proc.poll() is None else f" (it exited with status {self.proc.returncode})"
        raise AssertionError(f"{self.name}: no log line matching {pattern!r} within {timeout}s{ended}; log:\n"
                             f"{self.log()}")

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        """Stops the process with SIGTERM; returns a list of problems seen
        (a slow or unclean exit, a sanitizer report in its log)."""
        problems = []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                problems.append(f"{self.name}: did not exit within 10 s of SIGTERM")
                self.proc.kill()
                self.proc.wait()
            else:
                if self.proc.returncode != 0 and self.ours:
                    problems.append(f"{self.name}: exited with status {self.proc.returncode} after SIGTERM")
        if not self.ours:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # what it left behind in its group
            except (ProcessLookupError, PermissionError):
                pass
        if not self.log_file.closed:
            self.log_file.close()
        for marker in SANITIZER_MARKERS:
            if marker in self.log():
                problems.append(f"{self.name}: sanitizer report ({marker})")
        return problems


class World:
    """Usage: with World() as w: m = w.middle("m1"); ..."""

    # Server ends here may reach loopback only, like the quickstart's.
    LOOPBACK_ONLY = "  allow:\n    - 127.0.0.0/8\n    - \"::1\"\n"

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="lstp-it-")
        self.procs = []
        self.servers = Servers()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        problems = []
        for p in reversed(self.procs):
            problems += p.stop()
        self.servers.close()
        if exc_type is not None or problems:
            for p in self.procs:
                print(f"----- {p.name} log -----\n{p.log()}")
            # Also when a test already failed: a process that died says why.
            for problem in problems:
                print(f"----- problem: {problem}")
        shutil.rmtree(self.dir, ignore_errors=True)
        if problems and exc_type is None:
            raise AssertionError("; ".join(problems))
        return False

    def _write(self, name, text):
        """A file in the world, readable by its owner only (as secret files
        must be)."""
        path = os.path.join(self.dir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path

    def middle(self, name, port=None, next_hop=None, extra="", start=True, log="debug"):
        port = port or free_port()
        text = f"name: {name}\nlisten: 127.0.0.1:{port}\nlog_level: {log}\n"
        if next_hop:
            text += f"next_hop: 127.0.0.1:{next_hop}\n"
        text += extra
        path = self._write(f"{name}.yaml", text)
        proc = None
        if start:
            proc = self.start(name, ["middleproxy", "-c", path])
            proc.wait_for_log("listening on")
        return port, proc, path

    def end(self, name, role, middle_port, secret=SECRET, socks_port=None, tunnel="it", extra="", start=True,
            log="debug", tunnel_extra="", env=None, server_extra=None):
        secret_path = self._write(f"{name}.secret", secret + "\n")
        # One middle port, or a list of them (a failover list).
        ports = middle_port if isinstance(middle_port, (list, tuple)) else [middle_port]
        middle_text = "[" + ", ".join(f"127.0.0.1:{p}" for p in ports) + "]"
        text = (f"name: {name}\nrole: {role}\ntunnel:\n  name: {tunnel}\n  secret_file: {secret_path}\n"
                f"  middle: {middle_text}\n  retry_interval: 200ms\n" + tunnel_extra)
        if role in ("client", "both"):
            socks_port = socks_port or free_port()
            text += f"socks:\n  listen: 127.0.0.1:{socks_port}\n  timeout: 3s\n"
        if role in ("server", "both"):
            text += "server:\n  connect_timeout: 3s\n" + (server_extra or self.LOOPBACK_ONLY)
        text += f"log_level: {log}\n" + extra
        path = self._write(f"{name}.yaml", text)
        proc = self.start(name, ["endproxy", "-c", path], env=env) if start else None
        return socks_port, proc, path

    def start(self, name, argv, env=None, ns=None):
        argv = [os.path.join(BIN, argv[0])] + argv[1:]
        if ns:
            argv = ["ip", "netns", "exec", ns] + argv
        # Ends remember their ways under XDG_STATE_HOME: keep that inside the
        # world, so runs never share state.
        env = dict(env if env is not None else os.environ, XDG_STATE_HOME=os.path.join(self.dir, "state"))
        env.pop("STATE_DIRECTORY", None)
        p = Proc(name, argv, os.path.join(self.dir, f"{name}.log"), env=env)
        self.procs.append(p)
        return p

    def third_party_process(self, name, argv, env=None):
        """A program that is not ours (held to no exit rules), stopped by PID."""
        p = Proc(name, argv, os.path.join(self.dir, f"{name}.log"), env=env, ours=False)
        self.procs.append(p)
        return p

    def tinyproxy(self, connect_ports=(), auth=None, port=None):
        """Debian's tinyproxy as an HTTP CONNECT proxy on loopback; CONNECT
        only to `connect_ports` when given. Returns its port."""
        port = port or free_port()
        text = (f"Port {port}\nListen 127.0.0.1\nTimeout 600\nAllow 127.0.0.1\nLogLevel Connect\n"
                f"MaxClients 200\n")
        text += "".join(f"ConnectPort {p}\n" for p in connect_ports)
        if auth:
            text += f"BasicAuth {auth[0]} {auth[1]}\n"
        path = self._write(f"tinyproxy-{port}.conf", text)
        p = Proc(f"tinyproxy-{port}", [shutil.which("tinyproxy") or "/usr/bin/tinyproxy", "-d", "-c", path],
                 os.path.join(self.dir, f"tinyproxy-{port}.log"), ours=False)
        self.procs.append(p)
        wait_for_port(port)
        return port, p

    def danted(self):
        """Debian's Dante as a SOCKS5/SOCKS4 proxy on loopback. Returns its port."""
        port = free_port()
        text = (f"logoutput: stderr\ninternal: 127.0.0.1 port = {port}\nexternal: 127.0.0.1\n"
                "socksmethod: none\nclientmethod: none\nuser.privileged: root\nuser.unprivileged: nobody\n"
                "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 log: connect }\n"
                "socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 log: connect }\n")
        path = self._write(f"danted-{port}.conf", text)
        p = Proc(f"danted-{port}", ["/usr/sbin/danted", "-f", path, "-N", "1", "-p",
                                    os.path.join(self.dir, f"danted-{port}.pid")],
                 os.path.join(self.dir, f"danted-{port}.log"), ours=False)
        self.procs.append(p)
        wait_for_port(port)
        return port, p

    def tunnel(self, secret_server=SECRET, extra=""):
        """A whole tunnel: middle, server end, client end (both ends get
        `extra` in their config). Returns the SOCKS port."""
        mport, mproc, _ = self.middle("m1")
        self.mport = mport
        _, sproc, _ = self.end("srv", "server", mport, secret=secret_server, extra=extra)
        sport, cproc, _ = self.end("cli", "client", mport, extra=extra)
        self.m, self.s, self.c = mproc, sproc, cproc
        if secret_server == SECRET:
            cproc.wait_for_log(r"tunnel it up")
            sproc.wait_for_log(r"tunnel it up")
        return sport


# ---------------------------------------------------------------- SOCKS5 client

class SocksError(Exception):
    def __init__(self, code):
        super().__init__(f"SOCKS reply {code}")
        self.code = code


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def read_socks5_reply(s):
    """One SOCKS5 reply: (REP, BND.ADDR as text, BND.PORT)."""
    ver, rep, rsv, at = recv_exact(s, 4)
    if at == 1:
        bhost = socket.inet_ntop(socket.AF_INET, recv_exact(s, 4))
    elif at == 4:
        bhost = socket.inet_ntop(socket.AF_INET6, recv_exact(s, 16))
    else:
        bhost = recv_exact(s, recv_exact(s, 1)[0]).decode()
    (bport,) = struct.unpack(">H", recv_exact(s, 2))
    return rep, bhost, bport


def socks_connect(socks_port, host, port, user=None, password=None, cmd=1, atyp=None, timeout=20.0):
    """SOCKS5 CONNECT (or `cmd`) through 127.0.0.1:socks_port. Returns (socket, bound (host, port)).
    Raises SocksError(code) on a refused request."""
    s = socket.create_connection(("127.0.0.1", socks_port), timeout=timeout)
    try:
        if user is None:
            s.sendall(b"\x05\x01\x00")
        else:
            s.sendall(b"\x05\x01\x02")
        ver, method = recv_exact(s, 2)
        if method == 0xFF:
            raise SocksError(-1)
        if method == 2:
            u, p = user.encode(), password.encode()
            s.sendall(b"\x01" + bytes([len(u)]) + u + bytes([len(p)]) + p)
            _, status = recv_exact(s, 2)
            if status != 0:
                raise SocksError(-2)
        if atyp is None:
            try:
                addr = b"\x01" + socket.inet_pton(socket.AF_INET, host)
            except OSError:
                try:
                    addr = b"\x04" + socket.inet_pton(socket.AF_INET6, host)
                except OSError:
                    addr = b"\x03" + bytes([len(host)]) + host.encode()
        else:
            addr = atyp
        s.sendall(b"\x05" + bytes([cmd]) + b"\x00" + addr + struct.pack(">H", port))
        rep, bhost, bport = read_socks5_reply(s)
        if rep != 0:
            raise SocksError(rep)
        return s, (bhost, bport)
    except BaseException:
        s.close()
        raise


# ------------------------------------------------------------ relays

def echo_once(test, w, socks_port, payload=b"ok", timeout=20.0):
    """One SOCKS connection to a fresh echo server behind the tunnel: the
    payload comes back whole, then the connection is closed."""
    echo = w.servers.echo()
    s, _ = socks_connect(socks_port, "127.0.0.1", echo, timeout=timeout)
    s.sendall(payload)
    test.assertEqual(recv_exact(s, len(payload)), payload)
    s.close()


class Relay:
    """A TCP relay on loopback in front of `target_port`, for hops that are
    not what they should be: `delay` holds every chunk that many seconds in
    each direction, in order (a long path; netem is not available here), and
    `tamper(to_target, offset, data)` may return altered bytes (a hostile
    middle). `offset` counts the bytes that went that way before `data`."""

    def __init__(self, target_port, delay=0.0, tamper=None):
        self.target_port, self.delay, self.tamper = target_port, delay, tamper
        # Set: nothing is read either way (a stalled path: TCP's windows
        # fill and the senders block, nothing is lost).
        self.hold = threading.Event()
        # Set: everything is read and kept, nothing passed on (a path that
        # swallows bytes, like a middle with deep buffers whose far side is
        # gone); cleared, what was kept goes on, in order.
        self.keep = threading.Event()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.sockets = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                a, _ = self.listener.accept()
            except OSError:
                return
            b = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [a, b]
            for src, dst, to_target in ((a, b, True), (b, a, False)):
                q, cond = [], threading.Condition()
                threading.Thread(target=self._read, args=(src, q, cond, to_target), daemon=True).start()
                threading.Thread(target=self._write, args=(dst, q, cond), daemon=True).start()

    def _read(self, src, q, cond, to_target):
        offset = 0
        while True:
            while self.hold.is_set():
                time.sleep(0.01)
            try:
                data = src.recv(1 << 20)
            except OSError:
                data = b""
            if data and self.tamper:
                n = len(data)
                data = self.tamper(to_target, offset, data)
                offset += n
            with cond:
                q.append((time.monotonic() + self.delay, data))
                cond.notify()
            if not data:
                return

    def _write(self, dst, q, cond):
        while True:
            while self.keep.is_set():
                time.sleep(0.01)
            with cond:
                while not q:
                    cond.wait()
                due, data = q.pop(0)
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
            except OSError:
                return

    def close(self):
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass


# ------------------------------------------------------------ local servers

class Servers:
    """Destination servers on 127.0.0.1 in one background asyncio loop."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._servers = []
        self.firehose_sent = {}
        self.http = None

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def _start(self, handler, host="127.0.0.1"):
        async def go():
            srv = await asyncio.start_server(handler, host, 0, limit=1 << 20)
            self._servers.append(srv)
            return srv.sockets[0].getsockname()[1]
        return self._run(go())

    def echo(self, host="127.0.0.1"):
        async def handle(r, w):
            try:
                while True:
                    data = await r.read(65536)
                    if not data:
                        break
                    w.write(data)
                    await w.drain()
                w.write_eof()
                await w.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                w.close()
        return self._start(handle, host)

    def sink(self):
        """Reads until EOF, then answers 'sha256-hex length' and closes (needs half-close)."""
        async def handle(r, w):
            h, n = hashlib.sha256(), 0
            try:
                while True:
                    data = await r.read(1 << 20)
                    if not data:
                        break
                    h.update(data)
                    n += len(data)
                w.write(f"{h.hexdigest()} {n}\n".encode())
                await w.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                w.close()
        return self._start(handle)

    def watcher(self, key):
        """Reads until its connection ends, then records it in self.closed[key]."""
        self.closed = getattr(self, "closed", {})
        self.closed[key] = threading.Event()
        async def handle(r, w):
            try:
                while await r.read(65536):
                    pass
            except (ConnectionError, OSError):
                pass
            finally:
                self.closed[key].set()
                w.close()
        return self._start(handle)

    def firehose(self, key):
        """Sends a counting byte pattern forever, as fast as it is taken."""
        self.firehose_sent[key] = 0
        async def handle(r, w):
            block = bytes(i % 251 for i in range(251 * 256))  # stream byte k is k % 251
            try:
                while True:
                    w.write(block)
                    await w.drain()
                    self.firehose_sent[key] += len(block)
            except (ConnectionError, OSError):
                pass
            finally:
                w.close()
        return self._start(handle)

    def http_dir(self, directory):
        handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=directory, **k)
        class Quiet(http.server.ThreadingHTTPServer):
            daemon_threads = True
            def handle_error(self, request, client_address):
                pass
        http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
        self.http = Quiet(("127.0.0.1", 0), handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        return self.http.server_address[1]

    def close(self):
        async def stop():
            for s in self._servers:
                s.close()
        try:
            self._run(stop())
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.loop.is_running():
            self.loop.close()
        if self.http:
            self.http.shutdown()
            self.http.server_close()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
