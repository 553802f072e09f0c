// Two tunnel_drivers, a client end and a server end, each with a small
// application that accepts channels, takes what arrives (reporting it
// consumed, so credit flows) and sends a payload through a data_source.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "asio_layer/asio_world.hpp"
#include "lstp/asio/tunnel_driver.hpp"
#include "lstp/tunnel_harness.hpp"

namespace asio_test {

class test_end;

// Sends `payload` on channel `id`, as much as credit allows per turn, then FIN.
class bulk_source : public lstp::asio_edge::data_source {
 public:
  bulk_source(std::shared_ptr<lstp::asio_edge::tunnel_driver> d, std::uint32_t id, lstp::bytes payload)
      : driver_(std::move(d)), id_(id), payload_(std::move(payload)) {}
  void produce(lstp::tunnel& t) override {
    if (done() || !t.channel_exists(id_)) return;
    const auto chunk = std::min<std::size_t>(payload_.size() - pos_, 64 * 1024);
    const bool last = pos_ + chunk == payload_.size();
    pos_ += t.send_data(id_, lstp::byte_view(payload_.data() + pos_, chunk), last);
    if (!done() && t.send_allowance(id_) > 0) again();
  }
  void again() {
    if (auto d = driver_.lock()) d->schedule(shared_from());
  }
  bool done() const { return pos_ == payload_.size(); }
  std::weak_ptr<bulk_source> self;

 private:
  std::shared_ptr<bulk_source> shared_from() { return self.lock(); }
  std::weak_ptr<lstp::asio_edge::tunnel_driver> driver_;
  std::uint32_t id_;
  lstp::bytes payload_;
  std::size_t pos_ = 0;
};

class test_end : public lstp::tunnel_handler {
 public:
  test_end(world& w, transport::hop_ptr hop, lstp::tunnel_params params, std::string name)
      : w_(w), name_(std::move(name)) {
    driver = std::make_shared<lstp::asio_edge::tunnel_driver>(std::move(hop), std::move(params), rng_, *this,
                                                               "tunnel " + name_);
  }
  // The driver refers to this handler: it must have ended first.
  ~test_end() override {
    if (!finished && started) {
      driver->close({lstp::wire_error::general, "test over"});
      w_.run_until([this] { return finished; }, 5s);
    }
  }

  void start() {
    started = true;
    asio::co_spawn(w_.io, driver->run(), [this, d = driver](std::exception_ptr e) {
      finished = true;
      failed_by_exception = e != nullptr;
    });
  }

  // Opens a channel and begins its service once accepted.
  std::uint32_t open() {
    lstp::connection_request req;
    req.destination.type = lstp::address::kind::domain;
    req.destination.host = "intranet";
    req.destination.port = 80;
    auto channel = driver->proto().open_channel(req);
    REQUIRE(channel);
    const auto id = channel.id();
    held[id] = std::move(channel);
    return id;
  }
  void send(std::uint32_t id, lstp::bytes payload) {
    auto s = std::make_shared<bulk_source>(driver, id, std::move(payload));
    s->self = s;
    sources[id] = s;
    driver->schedule(s);
  }

  // lstp::tunnel_handler
  void on_up(const lstp::tunnel_info&) override { up = true; }
  void on_channel_request(std::uint32_t id, const lstp::connection_request&) override {
    asio::post(w_.io, [d = driver, id] {
      lstp::address bound;
      bound.ip = {10, 0, 0, 2};
      bound.port = 5555;
      d->proto().accept_channel(id, bound);
    });
  }
  void on_channel_accepted(std::uint32_t id, const lstp::address&) override {
    accepted[id] = true;
    asio::post(w_.io, [d = driver, id] {
      d->proto().begin_service(id);
    });
  }
  void on_bind_peer(std::uint32_t, const lstp::address&) override {}
  void on_channel_rejected(std::uint32_t id, const lstp::error_info&) override { accepted[id] = false; }
  void on_service_begin(std::uint32_t) override {}
  void on_data(std::uint32_t id, lstp::byte_view data) override {
    received[id].insert(received[id].end(), data.begin(), data.end());
    asio::post(w_.io, [d = driver, id, n = data.size()] {
      d->proto().consumed(id, n, lstp::clock::now());
    });
  }
  // Like an app that closes once it has read everything: FIN back.
  void on_peer_fin(std::uint32_t id) override {
    fins[id] = true;
    asio::post(w_.io, [d = driver, id] {
      d->proto().send_data(id, {}, true);
    });
  }
  void on_pause(std::uint32_t) override {}
  void on_resume(std::uint32_t id) override {
    if (auto it = sources.find(id); it != sources.end()) it->second->again();
  }
  void on_channel_freed(std::uint32_t id, const lstp::error_info&) override { freed[id] = true; }
  void on_closed(const lstp::error_info& why) override { closed = why; }

  std::shared_ptr<lstp::asio_edge::tunnel_driver> driver;
  bool up = false;
  bool started = false;
  bool finished = false;
  bool failed_by_exception = false;
  std::optional<lstp::error_info> closed;
  std::map<std::uint32_t, bool> accepted, fins, freed;
  std::map<std::uint32_t, lstp::bytes> received;
  std::map<std::uint32_t, std::shared_ptr<bulk_source>> sources;
  std::map<std::uint32_t, lstp::channel_handle> held;  // channels this end opened

 private:
  world& w_;
  std::string name_;
  Botan::AutoSeeded_RNG rng_;
};

inline lstp::tunnel_params params_for(lstp::end_role role, const lstp::tunnel_keys& keys, std::uint8_t nonce) {
  return {lstp_test::make_info(role, role == lstp::end_role::client ? "c" : "s", keys, nonce), keys.psk, {}};
}

inline lstp::bytes pattern(std::size_t n, std::uint8_t seed) {
  lstp::bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 131 + seed + i / 251);
  return b;
}

}  // namespace asio_test
