"""No free relay (issue 6 point 4, PROTOCOL.md 3.6): a middle with an access
list serves only hops that prove a listed credential, per hop in a cascade;
a replayed setup is refused; no token ever reaches a log."""
import os
import socket
import struct
import threading
import time
import unittest

from lstp_world import Relay, World, echo_once, recv_exact

ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdef0123"
M1_FOR_M2 = "m1-credential-for-m2-0123456789"
WRONG = "not-alices-token-0123456789ab"
TOKENS = (ALICE, BOB, M1_FOR_M2, WRONG)


def access_list(w, *names_tokens):
    text = "access:\n"
    for name, token in names_tokens:
        text += f"  - {{name: {name}, token_file: {w._write(name + '.token', token + chr(10))}}}\n"
    return text


def credential(w, key, name, token, indent="  "):
    path = w._write(f"{name}-{abs(hash(token))}.tok", token + "\n")
    return f"{indent}{key}:\n{indent}  name: {name}\n{indent}  token_file: {path}\n"


def assert_no_token_logged(test, w):
    for p in w.procs:
        for t in TOKENS:
            test.assertNotIn(t, p.log(), f"{p.name} logged a token")


def first_frames(data, count):
    """The first `count` LSTP frames of a hop (12-byte header, length at 8)."""
    pos = 0
    for _ in range(count):
        length = struct.unpack(">I", data[pos + 8:pos + 12])[0]
        pos += 12 + length
    return data[:pos]


def read_error(sock):
    """The ERROR frame a middle answers a refused setup with: (code, reason)."""
    sock.settimeout(10)
    head = recv_exact(sock, 12)
    assert head[0] == 0x31, head
    payload = recv_exact(sock, struct.unpack(">I", head[8:12])[0])
    code, n = struct.unpack(">HH", payload[:4])
    return code, payload[4:4 + n].decode()


def frame(ftype, payload):
    return struct.pack(">BBHII", ftype, 0, 0, 0, len(payload)) + payload


def stranger_setup():
    """A well-formed setup (no ACCESS) with a fresh random pairing id and nonce."""
    name = b"stranger"
    info = (b"LSTP" + bytes([1]) + os.urandom(32) + os.urandom(16) + bytes([1]) + bytes([len(name)]) + name +
            bytes([0]) + os.urandom(16) + struct.pack(">I", 0))
    topo = bytes([1, 1, len(name)]) + name + bytes([0])
    return frame(0x01, info) + frame(0x02, topo)


class AccessTest(unittest.TestCase):
    def test_only_ends_with_a_listed_credential_use_the_middle(self):
        with World() as w:
            mport, m, _ = w.middle("m1", extra=access_list(w, ("alice", ALICE), ("bob", BOB)))
            m.wait_for_log(r"hops must prove an access credential \(alice, bob; clock window 300 s\)")
            # These tokens are passphrases: the middle says how to make a key.
            for name in ("alice", "bob"):
                self.assertRegex(m.log(), rf'access credential "{name}": the token from .* is a passphrase, '
                                          r"stretched with Argon2id; .* middleproxy --new-token FILE")
            _, srv, _ = w.end("srv", "server", mport, tunnel_extra=credential(w, "access", "bob", BOB))
            sport, cli, _ = w.end("cli", "client", mport, tunnel_extra=credential(w, "access", "alice", ALICE))
            cli.wait_for_log("tunnel it up")
            m.wait_for_log(r"\(credential bob\) waits for its partner|\(credential alice\) waits for its partner")
            echo_once(self, w, sport)

            # An end without a credential is refused before the middle keeps
            # anything, and says why.
            _, bare, _ = w.end("bare", "client", mport, tunnel="other")
            bare.wait_for_log("the middle proxy refused the setup: this middle proxy requires an access credential")
            m.wait_for_log(r"refused: this middle proxy requires an access credential .* \(no ACCESS frame\)")
            # A wrong token and an unknown name get the same answer; the
            # middle's log says which.
            _, wrong, _ = w.end("wrong", "client", mport, tunnel="third",
                                tunnel_extra=credential(w, "access", "alice", WRONG))
            wrong.wait_for_log("access denied: unknown credential or wrong token")
            m.wait_for_log(r'\(wrong token for credential "alice"\)')
            _, unknown, _ = w.end("unknown", "server", mport, tunnel="fourth",
                                  tunnel_extra=credential(w, "access", "carol", ALICE))
            unknown.wait_for_log("access denied: unknown credential or wrong token")
            m.wait_for_log(r'\(unknown credential "carol"\)')
            for tunnel in ("other", "third", "fourth"):
                self.assertNotRegex(m.log(), rf"tunnel \w+: .*\"{tunnel}\".* waits for its partner")
            # The legitimate tunnel never noticed.
            echo_once(self, w, sport, b"still here")
            self.assertEqual(cli.log().count("tunnel it up"), 1)
            assert_no_token_logged(self, w)

    def test_every_carrier_carries_the_proof(self):
        # ACCESS is the first byte inside TLS and inside WebSocket too.
        with World() as w:
            mport, m, _ = w.middle("m1", extra=access_list(w, ("alice", ALICE), ("bob", BOB)))
            _, srv, _ = w.end("srv", "server", mport, tunnel_extra=credential(w, "access", "bob", BOB) + "  ways: wss\n")
            sport, cli, _ = w.end("cli", "client", mport,
                                  tunnel_extra=credential(w, "access", "alice", ALICE) + "  ways: tls\n")
            cli.wait_for_log(r"tunnel it up")
            # Whichever came first waited; both are named in the pairing.
            m.wait_for_log(r"\(credential (alice|bob)\) waits for its partner")
            m.wait_for_log(r"paired .*\(tls\+websocket\).* with .*\(tls\)\)|paired .*\(tls\)\) with .*\(tls\+websocket\)")
            echo_once(self, w, sport)
            self.assertNotIn("ACCESS", m.log())  # nothing refused or misread

    def test_strangers_setups_are_refused_with_few_log_lines(self):
        with World() as w:
            mport, m, _ = w.middle("m1", extra=access_list(w, ("alice", ALICE)), log="info")
            for _ in range(300):  # each a new tunnel id: per-tunnel log limits do not apply
                with socket.create_connection(("127.0.0.1", mport), timeout=10) as s:
                    s.sendall(stranger_setup())
                    code, _ = read_error(s)
                    self.assertEqual(code, 41)
            m.wait_for_log(r"more like it left out|refused: this middle proxy requires an access credential")
            warnings = m.log().count("refused: this middle proxy requires an access credential")
            self.assertLess(warnings, 10, m.log()[-2000:])
            # It still serves credentialed ends.
            _, srv, _ = w.end("srv", "server", mport, tunnel_extra=credential(w, "access", "alice", ALICE))
            sport, cli, _ = w.end("cli", "client", mport, tunnel_extra=credential(w, "access", "alice", ALICE))
            cli.wait_for_log("tunnel it up")
            echo_once(self, w, sport)

    def test_a_credential_limited_to_other_tunnels_is_refused(self):
        with World() as w:
            text = access_list(w, ("alice", ALICE)).replace("}\n", ", tunnels: [lab-c]}\n")
            mport, m, _ = w.middle("m1", extra=text)
            _, cli, _ = w.end("cli", "client", mport, tunnel="corp-a",
                              tunnel_extra=credential(w, "access", "alice", ALICE))
            cli.wait_for_log('access denied: credential "alice" may not serve this tunnel')

    def test_in_a_cascade_each_middle_checks_its_own_credential(self):
        with World() as w:
            p2, m2, _ = w.middle("m2", extra=access_list(w, ("m1", M1_FOR_M2), ("bob", BOB)))
            p1, m1, m1_path = w.middle("m1", next_hop=p2,
                                       extra=access_list(w, ("alice", ALICE)) +
                                       credential(w, "next_hop_access", "m1", M1_FOR_M2, indent=""))
            _, srv, _ = w.end("srv", "server", p2, tunnel_extra=credential(w, "access", "bob", BOB))
            sport, cli, _ = w.end("cli", "client", p1, tunnel_extra=credential(w, "access", "alice", ALICE))
            cli.wait_for_log("tunnel it up")
            srv.wait_for_log("tunnel it up")
            m1.wait_for_log(r"\(credential alice\) waits for its partner")
            m2.wait_for_log(r"\(credential m1\) waits for its partner|paired")
            self.assertNotIn("credential alice", m2.log())  # alice's proof stays at m1
            echo_once(self, w, sport)
            assert_no_token_logged(self, w)

    def test_a_middle_without_its_next_hop_credential_is_refused_there(self):
        with World() as w:
            p2, m2, _ = w.middle("m2", extra=access_list(w, ("m1", M1_FOR_M2)))
            p1, m1, _ = w.middle("m1", next_hop=p2)
            _, cli, _ = w.end("cli", "client", p1)
            cli.wait_for_log(r"next hop 127.0.0.1:\d+ refused: this middle proxy requires an access credential")
            m2.wait_for_log(r"\(no ACCESS frame\)")

    def test_a_replayed_setup_is_refused(self):
        with World() as w:
            mport, m, _ = w.middle("m1", extra=access_list(w, ("alice", ALICE), ("bob", BOB)))
            sent = bytearray()
            lock = threading.Lock()

            def record(to_target, offset, data):
                if to_target:
                    with lock:
                        sent.extend(data)
                return data

            relay = Relay(mport, tamper=record)
            try:
                _, srv, _ = w.end("srv", "server", mport, tunnel_extra=credential(w, "access", "bob", BOB))
                sport, cli, _ = w.end("cli", "client", relay.port,
                                      tunnel_extra=credential(w, "access", "alice", ALICE))
                cli.wait_for_log("tunnel it up")
                with lock:
                    setup = first_frames(bytes(sent), 3)  # ACCESS, COMMON_UNIQUE_INFO, TOPOLOGY_EXCHANGE
                self.assertEqual(setup[0], 0x04)
                # A captured setup sent again, byte for byte, while its tunnel
                # is up: refused, and the tunnel carries on.
                with socket.create_connection(("127.0.0.1", mport), timeout=10) as s:
                    s.sendall(setup)
                    code, reason = read_error(s)
                self.assertEqual(code, 41)
                self.assertEqual(reason, "access proof already used: a replayed setup")
                m.wait_for_log(r'\(replayed proof of credential "alice"\)')
                echo_once(self, w, sport)
                # The same after the end has gone (its pairing id free again):
                # the proof is still remembered.
                self.assertEqual(cli.stop(), [])
                m.wait_for_log("pair closed", timeout=20)
                with socket.create_connection(("127.0.0.1", mport), timeout=10) as s:
                    s.sendall(setup)
                    code, reason = read_error(s)
                self.assertEqual((code, reason), (41, "access proof already used: a replayed setup"))
            finally:
                relay.close()
            assert_no_token_logged(self, w)


if __name__ == "__main__":
    unittest.main()
