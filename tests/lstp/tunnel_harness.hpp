// Two lstp::tunnel ends joined through an in-memory middle proxy: each end's
// setup is read, the middle's entry appended and handed to the other side,
// then bytes pass through (optionally tampered with). No sockets, fake clock.
#pragma once

#include <botan/auto_rng.h>

#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "lstp/secrets.hpp"
#include "lstp/setup.hpp"
#include "lstp/tunnel.hpp"

namespace lstp_test {

using namespace lstp;

struct recorder : tunnel_handler {
  bool up = false;
  tunnel_info info;
  std::vector<std::pair<std::uint32_t, connection_request>> requests;
  std::map<std::uint32_t, address> accepted;
  std::map<std::uint32_t, error_info> rejected;
  std::map<std::uint32_t, address> bind_peers;
  std::vector<std::uint32_t> begun;
  std::map<std::uint32_t, bytes> data;
  std::map<std::uint32_t, int> data_frames;  // on_data calls: one per SERVICE_DATA frame
  std::vector<std::uint32_t> fins;
  std::vector<std::uint32_t> pauses, resumes;
  std::map<std::uint32_t, error_info> freed;
  std::optional<error_info> closed;
  std::vector<error_info> hops_lost;
  std::vector<std::uint64_t> resumed;  // bytes replayed, per resumption
  std::function<void(std::uint32_t, const connection_request&)> on_request;
  std::function<void(std::uint32_t)> on_pause_hook;  // called from on_pause

  void on_up(const tunnel_info& i) override { up = true, info = i; }
  void on_channel_request(std::uint32_t id, const connection_request& r) override {
    requests.emplace_back(id, r);
    if (on_request) on_request(id, r);
  }
  void on_channel_accepted(std::uint32_t id, const address& b) override { accepted[id] = b; }
  void on_channel_rejected(std::uint32_t id, const error_info& e) override { rejected[id] = e; }
  void on_bind_peer(std::uint32_t id, const address& peer) override { bind_peers[id] = peer; }
  void on_service_begin(std::uint32_t id) override { begun.push_back(id); }
  void on_data(std::uint32_t id, byte_view d) override {
    data[id].insert(data[id].end(), d.begin(), d.end());
    ++data_frames[id];
  }
  void on_peer_fin(std::uint32_t id) override { fins.push_back(id); }
  void on_pause(std::uint32_t id) override {
    pauses.push_back(id);
    if (on_pause_hook) on_pause_hook(id);
  }
  void on_resume(std::uint32_t id) override { resumes.push_back(id); }
  void on_channel_freed(std::uint32_t id, const error_info& e) override { freed[id] = e; }
  void on_hop_lost(const error_info& e) override { hops_lost.push_back(e); }
  void on_resumed(std::uint64_t replayed) override { resumed.push_back(replayed); }
  void on_closed(const error_info& e) override { closed = e; }
};

inline common_unique_info make_info(end_role role, std::string name, const tunnel_keys& k, std::uint8_t nonce_byte) {
  common_unique_info i;
  i.pairing = k.pairing_at(0);
  i.tag = k.tag;
  i.role = role;
  i.name = std::move(name);
  i.nonce.fill(nonce_byte);
  return i;
}

inline const tunnel_keys& test_keys() {
  static tunnel_keys k = derive_tunnel_keys("test", "a secret of enough length");
  return k;
}

// One client end "c" (nonce 1: master) and one server end "s", paired by a
// simulated middle "m" that copies bytes through `tamper` once paired.
struct tunnel_pair {
  Botan::AutoSeeded_RNG rng;
  recorder client_events, server_events;
  clock::time_point now = clock::time_point{} + std::chrono::hours(1);
  std::unique_ptr<tunnel> client, server;
  std::function<void(bytes&, bool to_server)> tamper;
  setup_reader from_client{setup_reader::access_frame::accepted}, from_server{setup_reader::access_frame::accepted};
  bool paired = false;
  // Non-zero: after pairing, bytes go in through receive_space()/received()
  // at most this many at a time, as the Asio driver reads a hop.
  std::size_t read_size = 0;
  // Set: every byte handed to the server end is appended here too (what a
  // middle sent it, setups included), for tests that replay it.
  bytes* server_record = nullptr;
  // How long each round of pump() takes on the clock (zero: time stands still).
  clock::duration step{};
  topology_entry middle{hop_kind::middle, "m", "192.0.2.1:443"};

  explicit tunnel_pair(tunnel_limits limits = {}, const tunnel_keys& server_keys = test_keys(),
                       std::uint8_t client_nonce = 1, std::uint8_t server_nonce = 2) {
    tunnel_params cp{make_info(end_role::client, "c", test_keys(), client_nonce), test_keys().psk, limits};
    tunnel_params sp{make_info(end_role::server, "s", server_keys, server_nonce), server_keys.psk, limits};
    sp.self.pairing = test_keys().pairing_at(0);  // the middle pairs them even if the secrets differ
    // Epoch 0 is "now" here: a notice with its hint is a fresh setup of the peer.
    cp.is_fresh_peer_setup = [](const pairing_hint& h) { return h == hint_of(test_keys().pairing_at(0)); };
    sp.is_fresh_peer_setup = [k = server_keys.pairing_at(0)](const pairing_hint& h) { return h == hint_of(k); };
    client = std::make_unique<tunnel>(cp, rng, now);
    server = std::make_unique<tunnel>(sp, rng, now);
  }

  // Hands each end's waiting events to its recorder, as a driver does after
  // every input and command.
  void dispatch() {
    dispatch_events(*client, client_events);
    dispatch_events(*server, server_events);
  }

  // Moves bytes until nothing moves any more. Returns the number of rounds.
  int pump(int max_rounds = 1000) {
    int rounds = 0;
    for (; rounds < max_rounds; ++rounds) {
      now += step;
      dispatch();
      bytes c2s, s2c;
      std::swap(c2s, client->output());
      std::swap(s2c, server->output());
      if (c2s.empty() && s2c.empty()) break;
      if (!paired) {
        from_client.feed(c2s);
        from_server.feed(s2c);
        if (from_client.next().state == setup_reader::status::done &&
            from_server.next().state == setup_reader::status::done) {
          paired = true;
          bytes to_server = relay_setup(from_client.setup(), middle);
          to_server.insert(to_server.end(), from_client.unread().begin(), from_client.unread().end());
          bytes to_client = relay_setup(from_server.setup(), middle);
          to_client.insert(to_client.end(), from_server.unread().begin(), from_server.unread().end());
          if (server_record) server_record->insert(server_record->end(), to_server.begin(), to_server.end());
          server->receive(to_server, now);
          client->receive(to_client, now);
          dispatch();
        }
        continue;
      }
      if (tamper) {
        tamper(c2s, true);
        tamper(s2c, false);
      }
      if (!c2s.empty()) give(*server, c2s);
      if (!s2c.empty()) give(*client, s2c);
      dispatch();
    }
    dispatch();
    return rounds;
  }

  void give(tunnel& t, const bytes& in) {
    auto& events = &t == client.get() ? client_events : server_events;
    if (server_record && &t == server.get()) server_record->insert(server_record->end(), in.begin(), in.end());
    if (read_size == 0) {
      t.receive(in, now);
      return dispatch_events(t, events);
    }
    for (std::size_t pos = 0; pos < in.size();) {
      auto space = t.receive_space(read_size);
      const auto n = std::min({space.size(), read_size, in.size() - pos});
      std::copy_n(in.begin() + static_cast<std::ptrdiff_t>(pos), n, space.begin());
      t.received(n, now);
      dispatch_events(t, events);  // a data event's bytes live until the next input
      pos += n;
    }
  }

  bool both_up() const { return client_events.up && server_events.up; }

  // The middle dies (PROTOCOL.md 3.8): what is in flight is lost, each end
  // hears its hop end, and the next pump pairs their new setups as a new
  // middle would.
  void cut() {
    client->output().clear();
    server->output().clear();
    client->hop_lost("the hop was cut", now);
    server->hop_lost("the hop was cut", now);
    repair();
  }
  // Forget the old pairing: the next setups pass through the middle anew.
  void repair() {
    paired = false;
    from_client = setup_reader{setup_reader::access_frame::accepted};
    from_server = setup_reader{setup_reader::access_frame::accepted};
    dispatch();
  }
  // Lets time pass so that deadlines (ACKs) fire, and moves what they send.
  void settle(int rounds = 3) {
    for (int i = 0; i < rounds; ++i) {
      now += ack_delay;
      client->on_timer(now);
      server->on_timer(now);
      pump();
    }
  }

  // Opens a channel from the client and accepts it at the server.
  std::uint32_t open_and_begin() {
    server_events.on_request = [this](std::uint32_t id, const connection_request&) {
      address bound;
      bound.ip = {10, 0, 0, 2};
      bound.port = 5555;
      server->accept_channel(id, bound);
    };
    connection_request req;
    req.destination.type = address::kind::domain;
    req.destination.host = "intranet";
    req.destination.port = 80;
    auto channel = client->open_channel(req);
    const auto id = channel.id();
    held.push_back(std::move(channel));
    pump();
    client->begin_service(id);
    pump();
    return id;
  }
  // Channels the tests opened, held as an application holds them.
  std::vector<channel_handle> held;
};

}  // namespace lstp_test
