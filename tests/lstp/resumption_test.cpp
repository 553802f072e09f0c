// Resumption (PROTOCOL.md 3.8) in the sans-I/O core: a tunnel whose hop is
// lost goes on over a new one, every reliable frame handled exactly once.
#include <catch2/catch.hpp>

#include "lstp/tunnel_harness.hpp"

using namespace lstp_test;

namespace {

tunnel_limits resuming() {
  tunnel_limits l;
  l.resumption = true;
  return l;
}

bytes pattern(std::size_t n, std::uint8_t seed) {
  bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 31 + seed + i / 257);
  return b;
}

// The apps take whatever arrives, so credit keeps flowing.
void take_all(tunnel_pair& p, std::uint32_t id) {
  if (p.client->buffered(id)) p.client->consumed(id, p.client->buffered(id), p.now);
  if (p.server->buffered(id)) p.server->consumed(id, p.server->buffered(id), p.now);
}

// The server end lost its hop to a record the middle altered, the tunnel
// itself goes on; the client hears its hop end when the server drops it,
// both dial anew, and the tunnel resumes.
void server_hop_lost_then_resumed(tunnel_pair& p) {
  REQUIRE(p.server_events.hops_lost.size() == 1);
  CHECK_FALSE(p.server_events.closed);
  p.cut();
  p.pump();
  REQUIRE(p.server_events.resumed.size() == 1);
}

}  // namespace

TEST_CASE("resumption: a cut hop is replaced and the channel's bytes arrive once, in order",
          "[lstp][tunnel][resume]") {
  tunnel_pair p(resuming());
  p.pump();
  REQUIRE(p.both_up());
  auto id = p.open_and_begin();
  const auto up = pattern(200 * 1024, 1), down = pattern(150 * 1024, 2);
  CHECK(p.client->send_data(id, byte_view(up).first(100 * 1024)) == 100 * 1024);
  CHECK(p.server->send_data(id, down, true) == down.size());
  // Half of it crosses, then the middle dies with the rest in flight.
  bytes c2s, s2c;
  std::swap(c2s, p.client->output());
  std::swap(s2c, p.server->output());
  p.give(*p.server, bytes(c2s.begin(), c2s.begin() + static_cast<std::ptrdiff_t>(c2s.size() / 2)));
  p.cut();
  CHECK(p.client->resuming());
  CHECK(p.client_events.hops_lost.size() == 1);
  CHECK_FALSE(p.client_events.closed);
  // The app keeps writing meanwhile: kept for the new hop.
  CHECK(p.client->send_data(id, byte_view(up).subspan(100 * 1024), true) == 100 * 1024);
  p.pump();
  REQUIRE(p.client_events.resumed.size() == 1);
  REQUIRE(p.server_events.resumed.size() == 1);
  CHECK(p.client_events.resumed[0] > 0);  // what the server lacked was sent again
  CHECK_FALSE(p.client->resuming());
  p.settle();
  take_all(p, id);
  p.settle();
  CHECK(p.server_events.data[id] == up);
  CHECK(p.client_events.data[id] == down);
  CHECK(p.server_events.fins == std::vector<std::uint32_t>{id});
  CHECK(p.client_events.fins == std::vector<std::uint32_t>{id});
  CHECK(p.client->state() == tunnel_state::up);
  CHECK(p.client->resumptions() == 1);
  CHECK(p.client->reliable_acked() == p.client->reliable_sent());
}

TEST_CASE("resumption: the hop lost at every point of an exchange, each byte arrives exactly once",
          "[lstp][tunnel][resume]") {
  // One scripted exchange, its byte stream toward the server cut after k
  // bytes (before, inside and after each frame and record), for every k in
  // steps; the other direction cut at the same fraction.
  const auto up = pattern(70 * 1024, 3), down = pattern(20 * 1024, 4);
  std::size_t total = 0;
  {
    tunnel_pair probe(resuming());
    probe.pump();
    auto id = probe.open_and_begin();
    probe.client->send_data(id, up, true);
    total = probe.client->output().size();
  }
  REQUIRE(total > 70 * 1024);
  std::size_t checked = 0;
  for (std::size_t k = 0; k <= total; k += k < 200 ? 7 : 997) {
    INFO("cut after " << k << " of " << total << " bytes");
    tunnel_pair p(resuming());
    p.pump();
    auto id = p.open_and_begin();
    p.client->send_data(id, up, true);
    p.server->send_data(id, down);
    bytes c2s, s2c;
    std::swap(c2s, p.client->output());
    std::swap(s2c, p.server->output());
    p.give(*p.server, bytes(c2s.begin(), c2s.begin() + static_cast<std::ptrdiff_t>(std::min(k, c2s.size()))));
    const auto back = s2c.size() * k / total;
    p.give(*p.client, bytes(s2c.begin(), s2c.begin() + static_cast<std::ptrdiff_t>(std::min(back, s2c.size()))));
    p.dispatch();
    p.cut();
    p.pump();
    REQUIRE(p.client_events.resumed.size() == 1);
    p.server->send_data(id, {}, true);
    p.settle();
    take_all(p, id);
    p.settle();
    CHECK(p.server_events.data[id] == up);
    CHECK(p.client_events.data[id] == down);
    CHECK(p.server_events.fins.size() == 1);
    CHECK(p.client_events.fins.size() == 1);
    CHECK_FALSE(p.client_events.closed);
    CHECK_FALSE(p.server_events.closed);
    ++checked;
  }
  CHECK(checked > 30);
}

TEST_CASE("resumption: channels opened and freed across a cut keep their state", "[lstp][tunnel][resume]") {
  tunnel_pair p(resuming());
  p.pump();
  auto a = p.open_and_begin();
  p.cut();
  // Opened while no hop carries the tunnel: no new channel until it resumes.
  CHECK_FALSE(p.client->open_channel({}));
  p.client->free_channel(a, {wire_error::general, "the app went away"});
  p.pump();
  REQUIRE(p.client_events.resumed.size() == 1);
  // The FREE sent while the hop was down arrived with the replay.
  REQUIRE(p.server_events.freed.count(a));
  CHECK(p.server_events.freed[a].reason == "the app went away");
  // A new channel after the resumption keeps the first election's parity.
  auto b = p.open_and_begin();
  CHECK(b % 2 == a % 2);
  CHECK(b > a);
  p.client->send_data(b, bytes{1, 2, 3}, true);
  p.pump();
  CHECK(p.server_events.data[b] == bytes{1, 2, 3});
}

TEST_CASE("resumption: two cuts in a row, the second during the first resumption", "[lstp][tunnel][resume]") {
  tunnel_pair p(resuming());
  p.pump();
  auto id = p.open_and_begin();
  const auto up = pattern(50 * 1024, 5);
  p.client->send_data(id, up, true);
  p.cut();
  // The new hop's setups pair, then it is cut again before TLS is done.
  p.pump(2);
  p.cut();
  p.pump();
  REQUIRE(p.client_events.resumed.size() == 1);
  CHECK(p.client_events.hops_lost.size() == 2);
  p.settle();
  CHECK(p.server_events.data[id] == up);
}

TEST_CASE("resumption: a record altered on the way costs the hop, never the data", "[lstp][tunnel][resume]") {
  tunnel_pair p(resuming());
  p.pump();
  auto id = p.open_and_begin();
  bool flipped = false;
  p.tamper = [&](bytes& b, bool to_server) {
    if (flipped) return b.clear();  // then the middle is gone
    if (to_server && b.size() > 100) {
      b[b.size() / 2] ^= 0x40;
      flipped = true;
    }
  };
  const auto up = pattern(30 * 1024, 6);
  p.client->send_data(id, up, true);
  p.pump();
  REQUIRE(flipped);
  p.tamper = nullptr;
  // The server saw the forged record: its hop is lost, not the tunnel.
  server_hop_lost_then_resumed(p);
  p.settle();
  CHECK(p.server_events.data[id] == up);
  CHECK(p.server_events.fins.size() == 1);
}

TEST_CASE("resumption: a middle replaying an earlier resumption hop gets nowhere", "[lstp][tunnel][resume]") {
  // A middle keeps everything it passed to the server end on the first
  // resumption hop (setup, handshake, RESUME, replayed frames) and plays it
  // back after the second cut. The resumption pairing id is the same for
  // the tunnel's life, so the setup is accepted; the handshake is not (the
  // server's ECDHE share is fresh), so nothing of it is handled: no byte
  // delivered twice, the tunnel kept, and the real resumption goes on.
  tunnel_pair p(resuming());
  p.pump();
  auto id = p.open_and_begin();
  const auto up = pattern(40 * 1024, 8);
  p.client->send_data(id, byte_view(up).first(10 * 1024));
  p.settle();
  bytes first_resumption;
  p.cut();
  p.server_record = &first_resumption;
  p.client->send_data(id, byte_view(up).subspan(10 * 1024, 10 * 1024));
  p.pump();
  p.server_record = nullptr;
  REQUIRE(p.server_events.resumed.size() == 1);
  p.settle();
  REQUIRE(p.server_events.data[id] == bytes(up.begin(), up.begin() + 20 * 1024));

  p.cut();
  bytes client_setup;
  std::swap(client_setup, p.client->output());  // the real one waits
  p.server->output().clear();
  p.give(*p.server, first_resumption);
  p.dispatch();
  CHECK(p.server_events.resumed.size() == 1);  // not resumed by the replay
  INFO((p.server_events.closed ? p.server_events.closed->reason : std::string("not closed")));
  CHECK_FALSE(p.server_events.closed);
  CHECK(p.server->resuming());
  CHECK(p.server_events.data[id] == bytes(up.begin(), up.begin() + 20 * 1024));  // nothing twice
  // The replay cost the server that hop (its third lost); the real ends
  // then meet.
  REQUIRE(p.server_events.hops_lost.size() == 3);
  CHECK_THAT(p.server_events.hops_lost.back().reason, Catch::Contains("the resumption handshake failed"));
  p.server->output().clear();
  p.server->hop_lost("the middle closed the hop", p.now);
  bytes server_setup;
  std::swap(server_setup, p.server->output());
  p.repair();
  p.client->output() = client_setup;
  p.server->output() = server_setup;
  p.client->send_data(id, byte_view(up).subspan(20 * 1024), true);
  p.pump();
  REQUIRE(p.server_events.resumed.size() == 2);
  p.settle();
  take_all(p, id);
  p.settle();
  CHECK(p.server_events.data[id] == up);
  CHECK(p.server_events.fins.size() == 1);
}

TEST_CASE("resumption: no new hop within resume_window closes the tunnel", "[lstp][tunnel][resume]") {
  auto limits = resuming();
  limits.resume_window = std::chrono::seconds(60);
  tunnel_pair p(limits);
  p.pump();
  p.open_and_begin();
  p.client->hop_lost("the middle went away", p.now);
  p.dispatch();
  CHECK(p.client->next_deadline() <= p.now + std::chrono::seconds(60));
  p.now += std::chrono::seconds(59);
  p.client->on_timer(p.now);
  p.dispatch();
  CHECK_FALSE(p.client_events.closed);
  p.now += std::chrono::seconds(1);
  p.client->on_timer(p.now);
  p.dispatch();
  REQUIRE(p.client_events.closed);
  CHECK(p.client_events.closed->code == wire_error::timeout);
  CHECK(p.client_events.closed->reason == "the tunnel could not be resumed within 60 s");
}

TEST_CASE("resumption: a silent hop is lost, not the tunnel", "[lstp][tunnel][resume]") {
  auto limits = resuming();
  limits.keepalive = std::chrono::seconds(20);
  limits.dead_after = std::chrono::seconds(60);
  tunnel_pair p(limits);
  p.pump();
  p.now += std::chrono::seconds(61);
  p.client->on_timer(p.now);
  p.dispatch();
  CHECK_FALSE(p.client_events.closed);
  REQUIRE(p.client_events.hops_lost.size() == 1);
  CHECK(p.client->resuming());
}

TEST_CASE("without resumption a lost hop closes the tunnel as before", "[lstp][tunnel][resume]") {
  tunnel_limits without;
  without.resumption = false;
  tunnel_pair p(without);
  p.pump();
  p.open_and_begin();
  p.client->hop_lost("the hop to the middle proxy was closed", p.now);
  p.dispatch();
  REQUIRE(p.client_events.closed);
  CHECK(p.client_events.closed->reason == "the hop to the middle proxy was closed");
  CHECK(p.client_events.hops_lost.empty());
}

namespace {
// Moves `up` from client to server and `down` back on channel `id`, the
// apps taking what arrives, until everything has crossed.
void transfer(tunnel_pair& p, std::uint32_t id, const bytes& up, const bytes& down) {
  std::size_t sent_up = 0, sent_down = 0;
  for (int round = 0; round < 10000 && (sent_up < up.size() || sent_down < down.size()); ++round) {
    if (sent_up < up.size())
      sent_up += p.client->send_data(id, byte_view(up).subspan(sent_up), false);
    if (sent_down < down.size())
      sent_down += p.server->send_data(id, byte_view(down).subspan(sent_down), false);
    p.pump();
    take_all(p, id);
  }
  p.settle();
  take_all(p, id);
  p.settle();
}
}  // namespace

TEST_CASE("key updates: a tiny threshold over a long transfer, every byte arrives", "[lstp][tunnel][keys]") {
  tunnel_limits l;
  l.key_update_bytes = 64 * 1024;
  tunnel_pair p(l);
  p.pump();
  REQUIRE(p.both_up());
  REQUIRE(p.client->key_updates_active());
  auto id = p.open_and_begin();
  const auto up = pattern(4 * 1024 * 1024, 3), down = pattern(2 * 1024 * 1024, 4);
  transfer(p, id, up, down);
  CHECK(p.server_events.data[id] == up);
  CHECK(p.client_events.data[id] == down);
  CHECK(p.client->key_updates_sent() >= 60);  // one per 64 KiB sealed
  CHECK(p.server->key_updates_sent() >= 30);
  CHECK(p.server->key_updates_received() == p.client->key_updates_sent());
  CHECK(p.client->key_updates_received() == p.server->key_updates_sent());
  CHECK_FALSE(p.client_events.closed);
  CHECK_FALSE(p.server_events.closed);
}

TEST_CASE("key updates: an idle tunnel updates its keys when the interval is over", "[lstp][tunnel][keys]") {
  tunnel_limits l;
  l.key_update_interval = std::chrono::seconds(30);
  l.keepalive = std::chrono::hours(2);
  l.dead_after = std::chrono::hours(3);
  tunnel_pair p(l);
  p.pump();
  REQUIRE(p.both_up());
  CHECK(p.client->next_deadline() <= p.now + std::chrono::seconds(30));
  p.now += std::chrono::seconds(30);
  p.client->on_timer(p.now);
  p.server->on_timer(p.now);
  p.pump();
  CHECK(p.client->key_updates_sent() == 1);
  CHECK(p.server->key_updates_received() == 1);
  CHECK(p.server->key_updates_sent() == 1);
  // The tunnel goes on under the new keys.
  auto id = p.open_and_begin();
  const auto up = pattern(100 * 1024, 5);
  transfer(p, id, up, {});
  CHECK(p.server_events.data[id] == up);
}

TEST_CASE("key updates: turned off, none are sent whatever the threshold", "[lstp][tunnel][keys]") {
  // The harness gives both ends the same limits: off on both sides, with a
  // threshold that would otherwise update every KiB. (Off on one side only
  // is the same negotiation: the feature bit is missing from one setup.)
  tunnel_limits off;
  off.key_updates = false;
  off.key_update_bytes = 1024;
  tunnel_pair p(off);
  p.pump();
  REQUIRE(p.both_up());
  CHECK_FALSE(p.client->key_updates_active());
  auto id = p.open_and_begin();
  transfer(p, id, pattern(64 * 1024, 1), {});
  CHECK(p.client->key_updates_sent() == 0);
  CHECK(p.server_events.data[id] == pattern(64 * 1024, 1));
}

TEST_CASE("key updates: a middle that drops or replays the update costs the hop, never the data",
          "[lstp][tunnel][keys][resume][hostile]") {
  for (bool replay : {false, true}) {
    INFO((replay ? "replayed" : "dropped"));
    tunnel_limits l = resuming();
    l.key_update_bytes = 256 * 1024;
    tunnel_pair p(l);
    p.pump();
    REQUIRE(p.both_up());
    auto id = p.open_and_begin();
    // Splits what goes to the server into records (TLS ones first, then
    // LSTP ones: a 4-byte length under 2^24, so a first byte of 0) and
    // drops, or sends twice, the first KEY_UPDATE: the only record with an
    // empty frame (12 + 16 bytes) in the middle of a bulk transfer.
    bool done = false, after = false, gone = false;
    std::size_t seen = 0;
    p.tamper = [&](bytes& b, bool to_server) {
      if (gone) return b.clear();
      if (!to_server) return;
      bytes out;
      std::size_t pos = 0;
      while (pos + 5 <= b.size()) {
        std::size_t len = 0;
        if (b[pos] >= 0x14 && b[pos] <= 0x17 && b[pos + 1] == 3)
          len = 5 + (static_cast<std::size_t>(b[pos + 3]) << 8 | b[pos + 4]);
        else
          len = 4 + (static_cast<std::size_t>(b[pos + 1]) << 16 | static_cast<std::size_t>(b[pos + 2]) << 8 | b[pos + 3]);
        const auto rec = byte_view(b).subspan(pos, std::min(len, b.size() - pos));
        const bool key_update = !done && b[pos] == 0 && len == 4 + 12 + 16 && seen > 128 * 1024;
        if (done && !key_update) after = true;
        if (!key_update || replay) out.insert(out.end(), rec.begin(), rec.end());
        if (key_update) {
          if (replay) out.insert(out.end(), rec.begin(), rec.end());
          done = true;
        }
        seen += len;
        pos += len;
      }
      out.insert(out.end(), b.begin() + static_cast<std::ptrdiff_t>(std::min(pos, b.size())), b.end());
      b = std::move(out);
      // Once a record under the next keys went through, the rest of this hop
      // is lost with the middle.
      if (after) gone = true;
    };
    const auto up = pattern(2 * 1024 * 1024, 8);
    std::size_t sent = 0;
    for (int i = 0; i < 200 && !gone; ++i) {
      sent += p.client->send_data(id, byte_view(up).subspan(sent), false);
      p.pump();
      take_all(p, id);
    }
    REQUIRE(gone);
    p.tamper = nullptr;
    // The record after the update did not open: the server's hop is lost.
    // (The replay that follows holds more than key_update_bytes: a key
    // update must then wait for a frame boundary, which records of a replay
    // do not keep to.)
    server_hop_lost_then_resumed(p);
    for (int i = 0; i < 200 && sent < up.size(); ++i) {
      sent += p.client->send_data(id, byte_view(up).subspan(sent), false);
      p.pump();
      take_all(p, id);
    }
    p.settle();
    take_all(p, id);
    p.settle();
    INFO("sent " << sent << " of " << up.size() << ", arrived " << p.server_events.data[id].size());
    CHECK(p.server_events.data[id] == up);
    CHECK_FALSE(p.client_events.closed);
  }
}

TEST_CASE("resumption: a read that lands after its hop was lost is voided, and its buffer was still ours",
          "[lstp][tunnel][resume]") {
  tunnel_pair p(resuming());
  p.pump();
  REQUIRE(p.both_up());
  auto id = p.open_and_begin();
  const auto up = pattern(64 * 1024, 3);
  CHECK(p.client->send_data(id, up, true) == up.size());
  bytes c2s;
  std::swap(c2s, p.client->output());
  // The server end's driver has a read under way into the tunnel's space
  // (the record layer's buffer) when its writer finds the hop dead.
  auto space = p.server->receive_space(16 * 1024);
  p.cut();
  REQUIRE(p.server->resuming());
  // The read completes with bytes anyway (a TLS layer had them buffered):
  // written into the old space, which must still be allocated (ASan checks),
  // and taken by nobody.
  const auto n = std::min(space.size(), c2s.size());
  std::copy_n(c2s.begin(), n, space.begin());
  p.server->received(n, p.now);
  dispatch_events(*p.server, p.server_events);
  CHECK(p.server_events.data[id].empty());
  CHECK_FALSE(p.server_events.closed);
  // The resumption goes on and every byte arrives once.
  p.pump();
  REQUIRE(p.server_events.resumed.size() == 1);
  p.settle();
  take_all(p, id);
  p.settle();
  CHECK(p.server_events.data[id] == up);
}
